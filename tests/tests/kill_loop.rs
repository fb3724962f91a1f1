//! Kill loop: a 3-of-4 federation at a 200 ms interval; a random member is killed with SIGKILL at a random moment
//! and restarted after a random short pause, `KILL_LOOP_ITERATIONS` times (default 100). Then: no fork (every
//! member's chain identical by hash up to the common height, every block's 3-of-4 proof re-validated), no
//! double-signature in any member's signer journal (read through `hsm::SignerJournal`), no lost final block (a
//! member's height never goes backwards across restarts, and every (height, hash) seen final over RPC before a kill
//! is still in every member's chain), and progress.
//!
//! Seeded: the seed is printed; `KILL_LOOP_SEED=<n>` replays the same kill schedule (timing on a real machine
//! still varies). For 1,000+ iterations:
//!
//! ```text
//! cargo build --release -p functionary --bins
//! KILL_LOOP_ITERATIONS=1000 cargo test --release -p tests --test kill_loop -- --nocapture
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tests::journal_check::{assert_no_double_signature, display_hash};
use tests::TestFederation;

const MEMBERS: usize = 4;
const THRESHOLD: usize = 3;
const INTERVAL: Duration = Duration::from_millis(200);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// What the test saw over RPC: per member, the highest height it reported, and (height → hash) seen final.
#[derive(Default)]
struct Observed {
    max_height: Vec<u64>,
    seen: BTreeMap<u64, String>,
}

impl Observed {
    /// Samples member `i`: its height must not be below what it reported before (across restarts), and its tip
    /// hash must agree with any hash already seen final at that height.
    fn sample(&mut self, fed: &TestFederation, i: usize) -> anyhow::Result<()> {
        let Some(h) = fed.height(i) else {
            return Ok(()); // not answering yet (starting up)
        };
        anyhow::ensure!(
            h >= self.max_height[i],
            "LOST BLOCK: member {i} reports height {h} after having reported {}",
            self.max_height[i]
        );
        self.max_height[i] = h;
        if let Ok(v) = fed.rpc(i, "getblockhash", &[serde_json::json!(h)]) {
            if let Some(hash) = v.as_str() {
                if let Some(prev) = self.seen.get(&h) {
                    anyhow::ensure!(
                        prev == hash,
                        "FORK at height {h}: member {i} has {hash}, seen final before as {prev}"
                    );
                } else {
                    self.seen.insert(h, hash.to_string());
                }
            }
        }
        Ok(())
    }
}

/// Waits until member `i` answers RPC (its startup finished: store, journal and HSM opened).
fn wait_answering(fed: &TestFederation, i: usize, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while fed.height(i).is_none() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "member {i} did not answer RPC within {timeout:?} after a restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[test]
fn random_sigkills_never_fork_double_sign_or_lose_a_final_block() -> anyhow::Result<()> {
    let iterations = env_u64("KILL_LOOP_ITERATIONS").unwrap_or(100);
    let seed = env_u64("KILL_LOOP_SEED").unwrap_or_else(rand::random);
    println!("kill_loop: seed {seed} (KILL_LOOP_SEED={seed} replays the schedule), {iterations} iterations");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let mut fed = TestFederation::create(MEMBERS, THRESHOLD, INTERVAL)?;
    fed.start_all()?;
    let all: Vec<usize> = (0..MEMBERS).collect();
    fed.wait_height(&all, 3, Duration::from_secs(60))?;
    let start_height = fed.height(0).unwrap_or(0);

    let mut obs = Observed {
        max_height: vec![0; MEMBERS],
        ..Observed::default()
    };
    let started = Instant::now();
    for it in 0..iterations {
        // A random moment: anywhere within about two block intervals.
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..400)));
        for i in fed.running() {
            obs.sample(&fed, i)?;
        }
        let victim = rng.gen_range(0..MEMBERS);
        let pause = Duration::from_millis(rng.gen_range(0..300));
        fed.kill9(victim)?;
        std::thread::sleep(pause);
        fed.start(victim)?;
        wait_answering(&fed, victim, Duration::from_secs(30))?;
        obs.sample(&fed, victim)?;
        if (it + 1) % 25 == 0 {
            println!(
                "kill_loop: {} kills in {:.1?}, heights {:?}",
                it + 1,
                started.elapsed(),
                obs.max_height
            );
        }
    }

    // Progress, then convergence: every member reaches a common height a few blocks above the highest seen.
    let top = obs.max_height.iter().copied().max().unwrap_or(0);
    anyhow::ensure!(
        top > start_height,
        "no progress: height {top} after {iterations} kills, started at {start_height}"
    );
    fed.wait_height(&all, top + 3, Duration::from_secs(90))?;
    let common = all.iter().filter_map(|i| fed.height(*i)).min().unwrap_or(0);
    let chain = fed.assert_same_chain(&all, common)?;
    for (h, hash) in &obs.seen {
        let at = usize::try_from(*h)?;
        anyhow::ensure!(
            chain.get(at) == Some(hash),
            "LOST FINAL BLOCK: {hash} was final at height {h} before a kill, the chain now has {:?}",
            chain.get(at)
        );
    }
    let params = fed.params()?;
    // Members may hold the same block (same hash) with different signer subsets: keep the union per height.
    let mut signers_of: Vec<BTreeSet<usize>> = Vec::new();
    for i in &all {
        let signers = fed.verify_chain(*i, common)?;
        anyhow::ensure!(
            signers.iter().all(|s| s.len() >= THRESHOLD),
            "member {i}: a block with fewer than {THRESHOLD} signers"
        );
        signers_of.resize(signers.len(), BTreeSet::new());
        for (union, who) in signers_of.iter_mut().zip(signers) {
            union.extend(who);
        }
    }

    // Journals: stop everyone (the journal reader takes the file lock), then read every record.
    for i in &all {
        fed.kill9(*i)?;
    }
    let mut signed_total = 0;
    for i in &all {
        let member = &fed.layout.members[*i];
        let key_index = params
            .sorted_keys()
            .iter()
            .position(|k| k.to_string() == member.block_pubkey);
        let signed = assert_no_double_signature(&member.name, &fed.layout.datadir(*i))?;
        anyhow::ensure!(
            signed.records > 0,
            "member {}'s journal is empty after {common} blocks",
            member.name
        );
        // Where the member's signature is in a final block, its journal approved exactly that block's hash.
        for (h, block_signers) in (1..).zip(&signers_of) {
            if key_index.is_some_and(|k| block_signers.contains(&k)) {
                let in_chain = chain.get(usize::try_from(h)?).cloned().unwrap_or_default();
                let journaled: Vec<String> = signed
                    .by_height
                    .get(&h)
                    .into_iter()
                    .flatten()
                    .map(display_hash)
                    .collect();
                anyhow::ensure!(
                    journaled == [in_chain.clone()],
                    "member {} signed block {in_chain} at height {h} but its journal approves {journaled:?}",
                    member.name
                );
            }
        }
        signed_total += signed.by_height.len();
    }
    println!(
        "kill_loop: seed {seed}: {iterations} kills in {:.1?}; chain {start_height} -> {common}, {} final (height, hash) pairs checked, {signed_total} journaled signatures, no fork, no double-signature",
        started.elapsed(),
        obs.seen.len()
    );
    Ok(())
}
