//! Catch-up benchmark: how fast a fresh member fetches and verifies a long chain from a peer.
//!
//! 1. Creates a real federation (deploy's key ceremony: SoftHSM tokens, keys generated inside them).
//! 2. Builds `--blocks` (default 10,000) blocks on its genesis with `chain::build_block`, and has `m` members'
//!    tokens sign every block's `chain::signing_digest`. The keys never leave the tokens: each member's signatures
//!    are made by a child process of this binary (`catchup-bench sign-digests`) that opens that member's token
//!    through `hsm::Pkcs11Signer` with the member's own SoftHSM config and PIN file (SoftHSM reads its config once
//!    per process, so one process per token). This bypasses the member's signer guard and journal: the blocks are
//!    fabricated for the bench, not agreed by consensus.
//! 3. Assembles the witnesses with `chain::attach_signatures`, re-validates a sample with
//!    `chain::validate_final_block`, and writes all blocks into member 0's RocksDB store through
//!    `functionary::storage::BlockStore`.
//! 4. Starts member 0 and, once it answers RPC, a fresh member 1 (empty data dir) with the real `functionaryd`;
//!    only two of n members run, fewer than m, so no new block is produced and the target height stays fixed.
//!    Times from the start of member 1 until its `getblockcount` reaches the chain height. Prints one JSON line
//!    `{"blocks", "seconds", "blocks_per_s", ...}`.
//!
//! ```text
//! cargo build --release -p functionary --bins && cargo build --release -p tests --bins
//! target/release/catchup-bench --blocks 10000
//! ```

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use deploy::{Binaries, FederationSpec};
use functionary::storage::BlockStore;
use tests::TestFederation;

#[derive(Parser)]
#[command(about = "Time a fresh member's catch-up over a long chain of valid final blocks")]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Number of blocks in the chain the fresh member fetches.
    #[arg(long, default_value_t = 10_000)]
    blocks: u32,
    /// Federation size n.
    #[arg(long, default_value_t = 4)]
    members: usize,
    /// Threshold m; must be above 2, so that the two running members can't produce blocks of their own.
    #[arg(long, default_value_t = 3)]
    threshold: usize,
    /// Give up waiting for the catch-up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
    /// Directory holding functionaryd and functionary-cli (default: next to this binary).
    #[arg(long)]
    bins: Option<PathBuf>,
    /// Keep the federation directory afterwards and print its path.
    #[arg(long)]
    keep: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Internal: sign every 32-byte digest in `--digests` with the block key of the member in `--datadir`
    /// (SOFTHSM2_CONF must point at its config); writes one DER+0x01 hex signature per line to `--out`.
    SignDigests {
        #[arg(long)]
        datadir: PathBuf,
        #[arg(long)]
        digests: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match &args.command {
        Some(Cmd::SignDigests {
            datadir,
            digests,
            out,
        }) => sign_digests(datadir, digests, out),
        None => run(&args),
    }
}

/// Child process: one member's token signs every digest.
fn sign_digests(datadir: &Path, digests: &Path, out: &Path) -> anyhow::Result<()> {
    let config = functionary::config::NodeConfig::load(&functionary::config::NodeArgs {
        datadir: datadir.to_path_buf(),
        ..Default::default()
    })?;
    let pin = hsm::Pin::from_file(&config.hsm.pin_file)?;
    let token = hsm::TokenConfig {
        module_path: config.hsm.module.clone(),
        token_label: config.hsm.token_label.clone(),
        key_label: config.hsm.key_label.clone(),
    };
    let mut signer = hsm::Pkcs11Signer::open(&token, &pin)?;
    let bytes = std::fs::read(digests).with_context(|| format!("reading {}", digests.display()))?;
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
    );
    for chunk in bytes.chunks_exact(32) {
        let mut digest = [0u8; 32];
        digest.copy_from_slice(chunk);
        let sig = hsm::DigestSigner::sign_digest(&mut signer, &digest)?;
        let mut der = sig.serialize_der().to_vec();
        der.push(0x01);
        writeln!(w, "{}", hex::encode(der))?;
    }
    w.flush()?;
    Ok(())
}

fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.threshold > 2,
        "--threshold must be above 2: the bench runs two members and they must not produce blocks"
    );
    let bins = Binaries::locate(args.bins.as_deref())?;
    let spec = FederationSpec::new(args.members, args.threshold, Duration::from_secs(1));
    let mut fed = TestFederation::create_with(&spec, bins, "catchup-bench-")?;
    let params = fed.params()?;
    let genesis = params.genesis_block();

    // Build the unsigned chain; block hashes exclude the signblock witness, so digests are final now.
    let t_build = Instant::now();
    let mut blocks = Vec::with_capacity(args.blocks as usize);
    let mut parent = genesis.header.clone();
    for _ in 0..args.blocks {
        let block = chain::build_block(&params, &parent, params.genesis_time());
        parent = block.header.clone();
        blocks.push(block);
    }
    let digests: Vec<u8> = blocks
        .iter()
        .flat_map(|b| chain::signing_digest(&b.header))
        .collect();
    let digests_file = fed.layout.dir.join("catchup-digests.bin");
    std::fs::write(&digests_file, &digests)?;

    // m members' tokens sign every digest, in parallel child processes.
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for i in 0..args.threshold {
        let datadir = fed.layout.datadir(i);
        let out = fed.layout.dir.join(format!("catchup-sigs-{i}.txt"));
        let child = Command::new(&exe)
            .arg("sign-digests")
            .arg("--datadir")
            .arg(&datadir)
            .arg("--digests")
            .arg(&digests_file)
            .arg("--out")
            .arg(&out)
            .env("SOFTHSM2_CONF", datadir.join("softhsm2.conf"))
            .stdin(Stdio::null())
            .spawn()
            .context("starting a sign-digests child")?;
        let key = &fed.layout.members[i].block_pubkey;
        let key_index = params
            .sorted_keys()
            .iter()
            .position(|k| k.to_string() == *key)
            .with_context(|| format!("member {i}'s key {key} is not in the federation params"))?;
        children.push((i, key_index, child, out));
    }
    let mut signatures: Vec<Vec<(usize, Vec<u8>)>> = vec![Vec::new(); blocks.len()];
    for (i, key_index, mut child, out) in children {
        let status = child.wait()?;
        if !status.success() {
            bail!("sign-digests for member {i} exited with {status}");
        }
        let file = std::fs::File::open(&out)?;
        let mut n = 0;
        for (line, slot) in std::io::BufReader::new(file)
            .lines()
            .zip(signatures.iter_mut())
        {
            slot.push((key_index, hex::decode(line?.trim())?));
            n += 1;
        }
        anyhow::ensure!(
            n == blocks.len(),
            "member {i} signed {n} of {} digests",
            blocks.len()
        );
    }
    for (block, sigs) in blocks.iter_mut().zip(&signatures) {
        chain::attach_signatures(&params, &mut block.header, sigs).map_err(|e| {
            anyhow::anyhow!(
                "attaching signatures at height {}: {e}",
                block.header.height
            )
        })?;
    }
    // Re-validate a sample (first, last and every 997th) with the full m-of-n proof.
    let mut parent = genesis.header.clone();
    for (k, block) in blocks.iter().enumerate() {
        if k == 0 || k + 1 == blocks.len() || k % 997 == 0 {
            chain::validate_final_block(&params, &parent, block).map_err(|e| {
                anyhow::anyhow!(
                    "bench block at height {} is invalid: {e}",
                    block.header.height
                )
            })?;
        }
        parent = block.header.clone();
    }
    let prepare_s = t_build.elapsed().as_secs_f64();

    // Member 0's store holds the chain.
    {
        let path = fed.layout.datadir(0).join("blocks");
        let store =
            BlockStore::open(&path).with_context(|| format!("block store {}", path.display()))?;
        store.init_genesis(&genesis)?;
        for block in &blocks {
            store.put_block(block)?;
        }
        let (tip, _) = store.tip()?;
        anyhow::ensure!(
            tip == args.blocks,
            "member 0's store tip is {tip}, expected {}",
            args.blocks
        );
    }

    fed.start(0)?;
    fed.wait_height(&[0], u64::from(args.blocks), Duration::from_secs(60))?;
    let t0 = Instant::now();
    fed.start(1)?;
    let target = u64::from(args.blocks);
    let deadline = t0 + Duration::from_secs(args.timeout_s);
    loop {
        if fed.height(1).is_some_and(|h| h >= target) {
            break;
        }
        if Instant::now() >= deadline {
            let at = fed.height(1);
            if args.keep {
                eprintln!("kept {:?}", fed.keep_files());
            }
            bail!(
                "fresh member at height {at:?} after {}s, target {target}",
                args.timeout_s
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let seconds = t0.elapsed().as_secs_f64();
    // The fetched chain is the one we built.
    let last = blocks
        .last()
        .map(|b| b.block_hash().to_string())
        .unwrap_or_default();
    let got = fed.rpc(1, "getblockhash", &[serde_json::json!(target)])?;
    anyhow::ensure!(
        got.as_str() == Some(last.as_str()),
        "fresh member's block {target} is {got}, expected {last}"
    );
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "{}",
        serde_json::json!({
            "blocks": args.blocks,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "blocks_per_s": (f64::from(args.blocks) / seconds).round(),
            "members": args.members,
            "threshold": args.threshold,
            "prepare_seconds": (prepare_s * 1000.0).round() / 1000.0,
            "profile": profile,
        })
    );
    fed.stop(0)?;
    fed.stop(1)?;
    if args.keep {
        eprintln!("kept {:?}", fed.keep_files());
    }
    Ok(())
}
