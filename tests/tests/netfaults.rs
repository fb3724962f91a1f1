//! Network faults between real member processes: each test runs its federation inside its own network namespace
//! (`tests::netns`), cuts links with nftables and adds latency with netem (`tests::link_faults`).
//!
//! Needs root, iproute2 (`ip`, `tc`) and nftables (`nft`); without them every test prints `SKIPPED: <reason>` and
//! passes without checking anything. The delay test also needs the kernel's `sch_netem`.
//!
//! ```text
//! cargo build -p functionary --bins && cargo test -p tests --test netfaults -- --nocapture
//! ```

use std::time::Duration;

use tests::delay_proxy::DelayProxy;
use tests::link_faults::{nft_unavailable_reason, LinkFaults};
use tests::netns::{unavailable_reason, NetNs};
use tests::TestFederation;

const FAST: Duration = Duration::from_millis(200);
const DEADLINE: Duration = Duration::from_secs(90);

/// Why these tests can't run here, printed as a skip.
fn skip_reason() -> Option<String> {
    unavailable_reason().or_else(nft_unavailable_reason)
}

fn p2p_ports(fed: &TestFederation) -> Vec<u16> {
    fed.layout.members.iter().map(|m| m.p2p_port).collect()
}

fn max_height(fed: &TestFederation, members: &[usize]) -> u64 {
    members
        .iter()
        .filter_map(|i| fed.height(*i))
        .max()
        .unwrap_or(0)
}

/// Creates an n-of-m federation in `ns` whose connections `LinkFaults` can cut: the marking rules are installed
/// before the members start, through their gid prefixes, and the running daemons are checked to carry their gids.
fn start_cuttable<'a>(
    ns: &'a NetNs,
    n: usize,
    m: usize,
    interval: Duration,
) -> anyhow::Result<(TestFederation, LinkFaults<'a>)> {
    let mut fed = TestFederation::create(n, m, interval)?;
    let faults = LinkFaults::new(ns, p2p_ports(&fed))?;
    fed.launch_prefix = (0..n).map(LinkFaults::launch_prefix).collect();
    fed.start_all()?;
    let pids: Vec<(usize, u32)> = fed
        .procs
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.as_ref().map(|p| (i, p.pid())))
        .collect();
    faults.check_member_gids(&pids)?;
    Ok((fed, faults))
}

#[test]
fn isolated_minority_does_not_stop_the_majority() -> anyhow::Result<()> {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return Ok(());
    }
    let ns = NetNs::create("fnet-minority")?;
    let _inside = ns.enter()?;
    let (fed, mut faults) = start_cuttable(&ns, 4, 3, FAST)?;
    fed.wait_height(&[0, 1, 2, 3], 3, DEADLINE)?;

    // Member 3 alone (n - m = 1) on one side.
    faults.partition(&[3], &[0, 1, 2])?;
    let at_cut = max_height(&fed, &[0, 1, 2, 3]);
    fed.wait_height(&[0, 1, 2], at_cut + 10, DEADLINE)?;
    let isolated = fed.height(3).unwrap_or(0);
    assert!(
        isolated <= at_cut + 1,
        "isolated member 3 reached {isolated}, but only {at_cut} (+1 in flight) existed when it was cut off"
    );
    let majority = fed.height(0).unwrap_or(0);
    fed.assert_same_chain(&[0, 1, 2], majority)?;
    fed.assert_same_chain(&[0, 1, 2, 3], isolated)?;

    // Heal: member 3 catches up, one chain.
    faults.heal_all()?;
    let target = max_height(&fed, &[0, 1, 2]) + 5;
    fed.wait_height(&[0, 1, 2, 3], target, DEADLINE)?;
    fed.assert_same_chain(&[0, 1, 2, 3], target)?;
    fed.verify_chain(3, target)?;
    println!("minority: cut at {at_cut}, majority reached {majority} while member 3 stayed at {isolated}; healed to {target}");
    Ok(())
}

#[test]
fn split_without_a_threshold_side_halts_without_fork_and_resumes() -> anyhow::Result<()> {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return Ok(());
    }
    let ns = NetNs::create("fnet-split")?;
    let _inside = ns.enter()?;
    let (fed, mut faults) = start_cuttable(&ns, 4, 3, FAST)?;
    let all = [0, 1, 2, 3];
    fed.wait_height(&all, 3, DEADLINE)?;

    // 2 | 2: neither side has m = 3.
    faults.partition(&[0, 1], &[2, 3])?;
    std::thread::sleep(Duration::from_secs(1)); // blocks in flight settle
    let frozen: Vec<Option<u64>> = all.iter().map(|i| fed.height(*i)).collect();
    std::thread::sleep(FAST * 20);
    let later: Vec<Option<u64>> = all.iter().map(|i| fed.height(*i)).collect();
    assert_eq!(
        frozen, later,
        "a block was finalised while no side of the partition had m members"
    );
    let low = later.iter().flatten().copied().min().unwrap_or(0);
    fed.assert_same_chain(&all, low)?;
    for i in all {
        let h = fed.height(i).unwrap_or(0);
        fed.verify_chain(i, h)?;
    }

    // Heal: production resumes and everyone agrees.
    faults.heal_all()?;
    let high = later.iter().flatten().copied().max().unwrap_or(0);
    fed.wait_height(&all, high + 5, DEADLINE)?;
    fed.assert_same_chain(&all, high + 5)?;
    fed.verify_chain(0, high + 5)?;
    println!("split: halted at {later:?}, resumed past {}", high + 5);
    Ok(())
}

#[test]
fn fifty_ms_one_way_delay_still_finalises_identical_chains() -> anyhow::Result<()> {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return Ok(());
    }
    let ns = NetNs::create("fnet-delay")?;
    let _inside = ns.enter()?;
    let mut fed = TestFederation::create(4, 3, FAST)?;
    // netem where the kernel has it; otherwise the delaying proxy (same one-way delay, at byte level).
    let faults = LinkFaults::new(&ns, p2p_ports(&fed))?;
    let proxy = match faults.set_delay(50) {
        Ok(()) => {
            println!("delay: netem 50 ms on lo");
            None
        }
        Err(e) => {
            println!("delay: no netem ({e:#}); using the delaying proxy, 50 ms each way");
            Some(DelayProxy::start(
                &ns,
                &p2p_ports(&fed),
                Duration::from_millis(50),
            )?)
        }
    };
    fed.launch_prefix = (0..4).map(LinkFaults::launch_prefix).collect();
    fed.start_all()?;
    let all = [0, 1, 2, 3];
    let started = std::time::Instant::now();
    fed.wait_height(&all, 15, Duration::from_secs(120))?;
    let took = started.elapsed();
    fed.assert_same_chain(&all, 15)?;
    for i in all {
        fed.verify_chain(i, 15)?;
    }
    if let Some(proxy) = &proxy {
        // Every pair's traffic went through the proxy: each of the 6 pairs is connected at least once.
        assert!(
            proxy.connections() >= 6,
            "only {} member connections went through the delay proxy",
            proxy.connections()
        );
        println!(
            "delay: 15 blocks in {took:.1?} through {} delayed connections, {} bytes",
            proxy.connections(),
            proxy.bytes()
        );
    }
    Ok(())
}
