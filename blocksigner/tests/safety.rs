//! Safety under faults: restarts with a signer journal, random message drops, duplicates and delays.
//! The simulator asserts on every stored block that no height ever has two different final blocks (across all
//! members) and that no member's signer signs two hashes at one height.

mod common;

use blocksigner::{ConsensusEvent, ConsensusMessage, Rejection};
use common::{Links, Net, GENESIS_TIME};

#[test]
fn member_restarted_with_a_journal_lock_never_precommits_or_signs_another_block_at_that_height() {
    let mut net = Net::new(4, 3, 11);
    // A height-1 block nobody will propose (proposals use the slot time, far after genesis).
    let locked = chain::build_block(
        net.fixture.params(),
        &net.fixture.genesis().header,
        GENESIS_TIME + 1,
    );
    let locked_hash = locked.block_hash();
    net.restart_with(0, Some((1, locked_hash)));
    assert!(net.run_until_height(&net.all(), 6, 20));
    net.assert_consistent();

    let precommits_at_1: Vec<_> = net
        .sent
        .iter()
        .filter_map(|(member, message)| match message {
            ConsensusMessage::Precommit(p) if *member == 0 && p.height == 1 => Some(p.block_hash),
            _ => None,
        })
        .collect();
    assert!(
        precommits_at_1.iter().all(|hash| *hash == locked_hash),
        "{precommits_at_1:?}"
    );
    assert!(
        precommits_at_1.is_empty(),
        "the locked block was never proposed"
    );
    assert!(!net
        .sign_requests
        .iter()
        .any(|(member, height, _)| *member == 0 && *height == 1));
    let block1 = &net.members[1].chain[1];
    let signers = chain::block_signers(net.fixture.params(), &block1.header).expect("signed");
    assert!(!signers.contains(&0));
    // The locked member learned block 1 from the others and signs again from height 2 on.
    assert!(net
        .sign_requests
        .iter()
        .any(|(member, height, _)| *member == 0 && *height >= 2));
}

#[test]
fn member_crashing_right_after_asking_to_sign_resumes_locked_and_the_chain_continues() {
    let mut net = Net::new(4, 3, 12);
    let end = net.now_ms + 20 * common::INTERVAL_MS;
    let crashed = net.run_until(end, |net| {
        net.sign_requests.iter().any(|(m, h, _)| *m == 2 && *h >= 3)
    });
    assert!(crashed);
    let (_, height, hash) = *net
        .sign_requests
        .iter()
        .rev()
        .find(|(m, _, _)| *m == 2)
        .expect("request");
    net.restart(2);
    assert_eq!(net.members[2].consensus.last_signed(), Some((height, hash)));
    assert_eq!(net.members[2].consensus.status().locked, Some(hash));
    let sent_at_crash = net.sent.len();
    let requests_at_crash = net.sign_requests.len();
    let target = net.members[0].height().max(height) + 5;
    assert!(net.run_until_height(&net.all(), target, 20));
    net.assert_consistent();
    // What member 2 asked to sign at that height is what became final there (3-of-4, everyone online).
    assert_eq!(net.finalized.get(&height), Some(&hash));
    // After the restart, member 2 precommitted and asked to sign nothing else at that height.
    let other_precommits: Vec<_> = net.sent[sent_at_crash..]
        .iter()
        .filter(|(member, message)| {
            matches!(message, ConsensusMessage::Precommit(p) if *member == 2 && p.height == height && p.block_hash != hash)
        })
        .collect();
    assert!(other_precommits.is_empty(), "{other_precommits:?}");
    assert!(!net.sign_requests[requests_at_crash..]
        .iter()
        .any(|(m, h, x)| *m == 2 && *h == height && *x != hash));
}

/// Runs one faulty network and returns how many blocks were final (the simulator checks safety throughout).
fn faulty_run(n: usize, m: usize, seed: u64, slots: u64) -> (u32, u32) {
    let mut net = Net::new(n, m, seed);
    net.links = Links {
        latency_ms: 5,
        jitter_ms: 400,
        drop_rate: 0.2,
        duplicate_rate: 0.1,
    };
    // One member is also crash-restarted mid-run for some seeds.
    net.run_slots(slots / 2);
    if seed.is_multiple_of(3) {
        net.restart(usize::try_from(seed).unwrap_or(0) % n);
    }
    net.run_slots(slots - slots / 2);
    net.assert_consistent();
    let faulty_height = net.finalized.keys().max().copied().unwrap_or(0);
    // Heal the network: the chain resumes unless split locks stalled the height (a documented limitation).
    net.links = Links::default();
    net.run_slots(slots);
    net.assert_consistent();
    let healed_height = net.finalized.keys().max().copied().unwrap_or(0);
    for (_, _, reason) in net.rejections() {
        assert!(
            !matches!(
                reason,
                Rejection::BadPrecommitSignature { .. }
                    | Rejection::BadBlockSignature { .. }
                    | Rejection::InvalidFinalBlock { .. }
                    | Rejection::InvalidProposal(_)
                    | Rejection::ConflictingBlock { .. }
            ),
            "honest members never produce {reason:?}"
        );
    }
    assert!(!net
        .events
        .iter()
        .any(|(_, e)| matches!(e, ConsensusEvent::ConflictingTip { .. })));
    (faulty_height, healed_height)
}

#[test]
fn random_drops_duplicates_and_delays_never_fork() {
    let mut progressed_under_faults = 0;
    let mut resumed_after_healing = 0;
    let seeds = 50;
    for seed in 0..seeds {
        let (faulty, healed) = faulty_run(4, 3, 1000 + seed, 12);
        if faulty > 0 {
            progressed_under_faults += 1;
        }
        if healed > faulty {
            resumed_after_healing += 1;
        }
    }
    eprintln!("3-of-4: {progressed_under_faults}/{seeds} progressed under faults, {resumed_after_healing}/{seeds} resumed");
    assert!(
        progressed_under_faults >= seeds / 2,
        "the faults still let blocks through in most runs"
    );
    // Runs that do not resume are 2-2 split locks (members locked on two different certified blocks), the
    // limitation documented in `blocksigner::rules`; seeds 1023 and 1032 hit it.
    assert!(
        resumed_after_healing >= seeds * 9 / 10,
        "healing restores progress in nearly all runs"
    );
}

#[test]
fn random_faults_with_seven_members_never_fork() {
    for seed in 0..6 {
        faulty_run(7, 5, 2000 + seed, 10);
    }
}
