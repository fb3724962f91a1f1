//! Liveness and catch-up of whole simulated federations (deterministic, no IO).

mod common;

use std::collections::BTreeMap;

use blocksigner::{ConsensusEvent, ConsensusMessage, FinalizedVia};
use common::Net;

fn assert_no_misbehaviour_reported(net: &Net) {
    let bad: Vec<_> = net
        .rejections()
        .into_iter()
        .filter(|(_, _, reason)| reason.is_misbehaviour())
        .collect();
    assert!(
        bad.is_empty(),
        "honest members reported misbehaviour: {bad:?}"
    );
}

/// R12: per height, at most one member broadcast `FinalBlock` (the accepting round's proposer), and for the
/// first `heights` heights of a loss-free run exactly one did.
fn assert_final_blocks_announced_at_most_once(net: &Net, heights: u32) {
    let mut announcers: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (member, message) in &net.sent {
        if let ConsensusMessage::FinalBlock(block) = message {
            announcers
                .entry(block.header.height)
                .or_default()
                .push(*member);
        }
    }
    for (height, members) in &announcers {
        assert_eq!(members.len(), 1, "height {height} announced by {members:?}");
    }
    for height in 1..=heights {
        assert!(
            announcers.contains_key(&height),
            "height {height} was announced by its proposer"
        );
    }
    let finalized_from_signatures = (0..net.n())
        .map(|m| net.finalized_via(m, FinalizedVia::Signatures).len())
        .sum::<usize>();
    let total: usize = announcers.values().map(Vec::len).sum();
    assert!(
        finalized_from_signatures > total,
        "most members finalised from their own signatures without announcing ({finalized_from_signatures} vs {total})"
    );
}

#[test]
fn three_of_four_finalizes_20_blocks() {
    let mut net = Net::new(4, 3, 1);
    assert!(
        net.run_until_height(&net.all(), 20, 30),
        "20 blocks within 30 slots"
    );
    net.assert_consistent();
    assert_no_misbehaviour_reported(&net);
    // Every block was assembled from signatures by at least one member, with exactly m signers.
    for event in net.events.iter().map(|(_, e)| e) {
        if let ConsensusEvent::Finalized { signers, .. } = event {
            assert_eq!(signers.len(), 3);
        }
    }
    // Every member proposed some blocks (round-robin).
    for member in 0..4 {
        assert!(
            net.events_of(member).any(|e| matches!(
                e,
                ConsensusEvent::Proposed {
                    reproposal: false,
                    ..
                }
            )),
            "member {member} proposed"
        );
    }
}

#[test]
fn eleven_of_fifteen_finalizes_20_blocks() {
    let mut net = Net::new(15, 11, 2);
    assert!(
        net.run_until_height(&net.all(), 20, 30),
        "20 blocks within 30 slots"
    );
    net.assert_consistent();
    assert_no_misbehaviour_reported(&net);
    assert_final_blocks_announced_at_most_once(&net, 20);
}

#[test]
fn one_member_offline_three_of_four_still_finalizes_20_blocks() {
    let mut net = Net::new(4, 3, 3);
    net.set_offline(2);
    assert!(
        net.run_until_height(&[0, 1, 3], 20, 40),
        "20 blocks within 40 slots"
    );
    net.assert_consistent();
    assert_eq!(
        net.members[2].height(),
        0,
        "the offline member stored nothing"
    );
    // The offline member's slots were skipped: nobody else proposed in them.
    let rounds_with_proposals: Vec<u64> = net
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            ConsensusEvent::Proposed { round, .. } => Some(*round),
            _ => None,
        })
        .collect();
    assert!(rounds_with_proposals.iter().all(|round| round % 4 != 2));
}

#[test]
fn too_many_offline_stalls_and_resumes_when_one_returns() {
    // 3-of-4: n - m + 1 = 2 members offline means no block can be final.
    let mut net = Net::new(4, 3, 4);
    net.set_offline(1);
    net.set_offline(3);
    net.run_slots(12);
    assert!(net.finalized.is_empty(), "no block without a quorum");
    assert!(
        net.sign_requests.is_empty(),
        "no certificate without a quorum"
    );
    for member in [0, 2] {
        assert_eq!(net.members[member].height(), 0);
    }
    net.set_online(3);
    assert!(
        net.run_until_height(&[0, 2, 3], 5, 15),
        "blocks resume once m members are online"
    );
    net.assert_consistent();
}

#[test]
fn lagging_member_catches_up_by_fetching_then_participates() {
    let mut net = Net::new(4, 3, 5);
    net.set_offline(3);
    assert!(net.run_until_height(&[0, 1, 2], 10, 30));
    assert_eq!(net.members[3].height(), 0);
    let behind_by = net.members[0].height();
    assert!(behind_by >= 10);

    net.set_online(3);
    assert!(
        net.run_until_height(&[3], behind_by, 5),
        "catch-up within a few slots"
    );
    let fetched = net.finalized_via(3, FinalizedVia::Fetch);
    assert!(
        fetched.len() >= 10,
        "the first 10+ blocks came from fetches: {fetched:?}"
    );
    assert_eq!(fetched[..10], (1..=10).collect::<Vec<u32>>()[..]);

    // Now take member 0 offline: 3-of-4 progress needs member 3's signatures.
    net.set_offline(0);
    let target = net.members[1].height() + 5;
    assert!(
        net.run_until_height(&[1, 2, 3], target, 25),
        "progress with the caught-up member"
    );
    net.assert_consistent();
    let last = net.members[3].chain.last().expect("blocks");
    let signers = chain::block_signers(net.fixture.params(), &last.header).expect("signed block");
    assert!(
        signers.contains(&3),
        "member 3 signed the latest block: {signers:?}"
    );
    assert!(net
        .events_of(3)
        .any(|e| matches!(e, ConsensusEvent::Signed { .. })));
}

#[test]
fn members_restarted_from_their_store_continue_the_chain() {
    let mut net = Net::new(4, 3, 6);
    assert!(net.run_until_height(&net.all(), 5, 10));
    for member in 0..4 {
        net.restart(member);
    }
    let target = net.members[0].height() + 5;
    assert!(net.run_until_height(&net.all(), target, 15));
    net.assert_consistent();
}
