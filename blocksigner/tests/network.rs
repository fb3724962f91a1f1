//! Liveness of whole simulated federations under protocol v3 (deterministic, no IO): happy paths, an offline
//! proposer, lossy links, crashes with restarts from the persisted record, catch-up, and Commit relaying.

mod common;

use std::collections::BTreeMap;

use blocksigner::rules::{next_slot_start, proposer_of};
use blocksigner::{ConsensusEvent, ConsensusMessage, FinalizedVia, VoteKind};
use common::{Links, Net, INTERVAL_MS, ROUND_TIMEOUT_MS};

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

/// R13: per height, at most one member broadcast `FinalBlock` (the deciding round's proposer).
fn assert_final_blocks_announced_at_most_once(net: &Net) {
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
}

/// The rounds in which `member` decided each height.
fn decided_rounds(net: &Net, member: usize) -> BTreeMap<u32, u32> {
    net.events_of(member)
        .filter_map(|e| match e {
            ConsensusEvent::Decided { height, round, .. } => Some((*height, *round)),
            _ => None,
        })
        .collect()
}

fn happy_path(n: usize, m: usize) {
    let mut net = Net::new(n, m, 1);
    assert!(
        net.run_until_height(&net.all(), 10, 14),
        "10 blocks within 14 slots"
    );
    net.assert_consistent();
    net.assert_honest_run();
    assert_no_misbehaviour_reported(&net);
    assert_final_blocks_announced_at_most_once(&net);
    for member in net.all() {
        assert_eq!(net.members[member].chain.len(), 11, "member {member}");
        // Every height is decided in round 0 by the height's round-0 proposer's block, one per slot.
        for (height, round) in decided_rounds(&net, member) {
            assert_eq!(
                round, 0,
                "member {member} decided height {height} in round 0"
            );
        }
        for pair in net.members[member].chain[1..].windows(2) {
            assert_eq!(
                pair[1].header.time,
                pair[0].header.time + 1,
                "one block per 1-second interval"
            );
        }
    }
    for height in 1..=10u32 {
        let proposer = proposer_of(height, 0, n);
        assert!(
            net.sent.iter().any(|(from, message)| matches!(
                message,
                ConsensusMessage::Proposal(p) if p.height == height && *from == proposer && p.round == 0
            )),
            "height {height} proposed by member {proposer}"
        );
        // Each member signed the final block at most once, and m members signed each height.
        let signers = net
            .signed
            .iter()
            .filter(|((_, h), hash)| *h == height && Some(*hash) == net.finalized.get(&height))
            .count();
        assert!(signers >= m, "height {height}: {signers} signers");
    }
}

#[test]
fn three_of_four_reaches_height_10_with_identical_chains() {
    happy_path(4, 3);
}

#[test]
fn five_of_seven_reaches_height_10_with_identical_chains() {
    happy_path(7, 5);
}

/// Time from the scheduled start of `height` (the slot after the parent became final at `member`) until it
/// was stored there, and the time from the parent to the block.
fn height_timing(net: &Net, member: usize, height: u32) -> (u64, u64) {
    let parent_at = net.stored_at[&(member, height - 1)];
    let stored_at = net.stored_at[&(member, height)];
    let scheduled = next_slot_start(parent_at, INTERVAL_MS);
    (stored_at - scheduled, stored_at - parent_at)
}

#[test]
fn an_offline_proposer_costs_one_round_timeout_not_an_interval() {
    let (n, m) = (4, 3);
    let mut net = Net::new(n, m, 7);
    let offline = 2;
    net.set_offline(offline);
    let online = net.online();
    assert!(net.run_until_height(&online, 8, 12), "8 blocks in 12 slots");
    net.assert_honest_run();
    assert_no_misbehaviour_reported(&net);
    let mut checked = 0;
    for height in 2..=8u32 {
        let proposer_down = proposer_of(height, 0, n) == offline;
        for &member in &online {
            let (in_slot, since_parent) = height_timing(&net, member, height);
            if proposer_down {
                assert!(
                    in_slot > ROUND_TIMEOUT_MS,
                    "height {height} at {member}: waited the propose timeout ({in_slot} ms)"
                );
                assert!(
                    in_slot < 2 * ROUND_TIMEOUT_MS,
                    "height {height} at {member}: took {in_slot} ms after its slot, more than 2 round timeouts"
                );
                assert!(
                    since_parent < INTERVAL_MS + 2 * ROUND_TIMEOUT_MS,
                    "height {height} at {member}: {since_parent} ms since the parent"
                );
                checked += 1;
            } else {
                assert!(
                    in_slot < ROUND_TIMEOUT_MS,
                    "height {height} at {member}: a healthy height took {in_slot} ms"
                );
            }
        }
        let rounds: Vec<u32> = online
            .iter()
            .filter_map(|member| decided_rounds(&net, *member).get(&height).copied())
            .collect();
        let expected_round = u32::from(proposer_down);
        assert!(
            rounds.iter().all(|round| *round == expected_round),
            "height {height} decided in rounds {rounds:?}"
        );
    }
    assert!(checked >= 3, "heights 2 and 6 have the offline proposer");
}

#[test]
fn lossy_duplicating_delaying_links_still_finalize_without_forks() {
    for seed in [3u64, 11, 29, 101] {
        let mut net = Net::new(4, 3, seed);
        net.links = Links {
            latency_ms: 5,
            jitter_ms: 60,
            drop_rate: 0.15,
            duplicate_rate: 0.2,
        };
        net.run_slots(20);
        let heights: Vec<u32> = net.members.iter().map(|m| m.height()).collect();
        // Heal the network: everyone catches up.
        net.links = Links::default();
        let target = heights.iter().copied().max().unwrap_or(0) + 2;
        assert!(
            net.run_until_height(&net.all(), target, 10),
            "seed {seed}: all reach {target} once the network heals (lossy phase reached {heights:?})"
        );
        assert!(
            heights.iter().copied().min().unwrap_or(0) >= 8,
            "seed {seed}: progress under 15% loss: {heights:?}"
        );
        net.assert_consistent();
        net.assert_honest_run();
        assert_no_misbehaviour_reported(&net);
    }
}

#[test]
fn crashed_members_restart_from_their_record_and_the_chain_continues() {
    let mut net = Net::new(4, 3, 5);
    net.links.jitter_ms = 20;
    // Crash members one after the other, each time right after it broadcast a vote.
    for crash in 0..12usize {
        let member = crash % 4;
        let votes_before = net
            .sent
            .iter()
            .filter(|(from, msg)| *from == member && matches!(msg, ConsensusMessage::Vote(_)))
            .count();
        let end = net.now_ms + 3 * INTERVAL_MS;
        let crashed = net.run_until(end, |net| {
            net.sent
                .iter()
                .filter(|(from, msg)| *from == member && matches!(msg, ConsensusMessage::Vote(_)))
                .count()
                > votes_before
        });
        assert!(crashed, "member {member} voted within 3 slots");
        let record = net.members[member].record.clone().expect("persisted");
        net.restart(member);
        assert_eq!(net.members[member].consensus.record(), record);
    }
    let kinds: std::collections::BTreeSet<VoteKind> = net
        .sent
        .iter()
        .filter_map(|(_, message)| match message {
            ConsensusMessage::Vote(vote) => Some(vote.kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds.len(),
        2,
        "crashes after prevotes and after precommits"
    );
    let target = net.members.iter().map(|m| m.height()).max().unwrap_or(0) + 3;
    assert!(net.run_until_height(&net.all(), target, 6));
    net.assert_consistent();
    net.assert_honest_run();
    assert_no_misbehaviour_reported(&net);
}

#[test]
fn lagging_member_catches_up_by_fetching_then_participates() {
    let mut net = Net::new(4, 3, 9);
    net.set_offline(3);
    assert!(net.run_until_height(&[0, 1, 2], 6, 10));
    net.set_online(3);
    assert!(net.run_until_height(&net.all(), 10, 8));
    net.assert_consistent();
    net.assert_honest_run();
    let fetched = net.finalized_via(3, FinalizedVia::Fetch);
    assert!(
        fetched.len() >= 5,
        "member 3 fetched the missed heights: {fetched:?}"
    );
    // After catching up it takes part again: it signs later heights.
    assert!(
        (7..=10u32).any(|height| net.signed.contains_key(&(3, height))),
        "member 3 signs again"
    );
}

#[test]
fn commit_relay_lets_a_member_that_missed_all_precommits_decide_and_sign() {
    let mut net = Net::new(4, 3, 13);
    // Member 3 is down, so every height needs member 0's signature; member 0 never receives a precommit.
    net.set_offline(3);
    net.filter = Some(Box::new(|_, to, message| {
        !(to == 0 && matches!(message, ConsensusMessage::Vote(v) if v.kind == VoteKind::Precommit))
    }));
    assert!(net.run_until_height(&[0, 1, 2], 3, 10), "3 heights");
    net.assert_consistent();
    net.assert_honest_run();
    assert_no_misbehaviour_reported(&net);
    for height in 1..=3u32 {
        let hash = net.finalized[&height];
        assert_eq!(
            net.signed.get(&(0, height)),
            Some(&hash),
            "member 0 signed height {height}"
        );
        let signers = net.members[1].chain[height as usize].header.clone();
        let signers = chain::block_signers(net.fixture.params(), &signers).expect("signed");
        assert!(signers.contains(&0), "height {height} needed member 0");
        // Member 0 decided with a certificate of precommits it never received: a relayed Commit.
        let request = net
            .sign_requests
            .iter()
            .find(|(member, h, _, _)| *member == 0 && *h == height)
            .expect("member 0 asked to sign");
        let certificate = request.3.as_ref().expect("with certificate");
        assert!(
            certificate.precommits.iter().any(|(voter, _)| *voter != 0),
            "the certificate holds others' precommits"
        );
    }
    assert!(
        net.sent
            .iter()
            .any(|(_, message)| matches!(message, ConsensusMessage::Commit(_))),
        "a Commit was relayed"
    );
}

#[test]
fn crashes_right_after_each_synced_write_lose_nothing_that_matters() {
    for seed in [41u64, 42, 43] {
        let mut net = Net::new(4, 3, seed);
        net.links.jitter_ms = 15;
        net.links.drop_rate = 0.05;
        net.crash_after_persist_rate = 0.2;
        net.run_slots(15);
        net.crash_after_persist_rate = 0.0;
        net.links = Links::default();
        let target = net.members.iter().map(|m| m.height()).max().unwrap_or(0) + 2;
        assert!(
            net.run_until_height(&net.all(), target, 10),
            "seed {seed}: all reach {target} after the crashes"
        );
        assert!(
            net.crashes_after_persist >= 10,
            "seed {seed}: {} crashes",
            net.crashes_after_persist
        );
        assert!(
            target >= 8,
            "seed {seed}: progress while crashing ({target})"
        );
        net.assert_consistent();
        net.assert_honest_run();
        assert_no_misbehaviour_reported(&net);
    }
}

#[test]
fn five_of_seven_with_lossy_links_finalizes_without_forks() {
    for seed in [5u64, 6] {
        let mut net = Net::new(7, 5, seed);
        net.links = Links {
            latency_ms: 5,
            jitter_ms: 40,
            drop_rate: 0.1,
            duplicate_rate: 0.1,
        };
        net.run_slots(12);
        let reached = net.members.iter().map(|m| m.height()).min().unwrap_or(0);
        assert!(reached >= 6, "seed {seed}: {reached}");
        net.links = Links::default();
        assert!(net.run_until_height(&net.all(), reached + 2, 6));
        net.assert_consistent();
        net.assert_honest_run();
        assert_no_misbehaviour_reported(&net);
    }
}
