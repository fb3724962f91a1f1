//! One member's state machine fed crafted inputs: invalid and forged messages are rejected (and not counted),
//! the signer journal's lock is honoured, catch-up validates what it stores.

mod common;

use blocksigner::rules::{proposer_of, round_at};
use blocksigner::{
    BlockSignature, Consensus, ConsensusEvent, ConsensusMessage, Effect, Input, Precommit,
    Proposal, Rejection, Status,
};
use common::{p2p_secret, sign_with, Fixture, INTERVAL_MS, START_MS};

const N: usize = 4;
const M: usize = 3;
const TIME: u32 = (START_MS / 1000) as u32;

/// A member under test, ticked at START_MS; the round's proposer is someone else (the next round's proposer is
/// the member under test).
struct Harness {
    fixture: Fixture,
    me: usize,
    consensus: Consensus,
    round: u64,
    proposer: usize,
}

impl Harness {
    fn new(last_signed: Option<(u32, elements::BlockHash)>) -> Self {
        let fixture = Fixture::new(N, M);
        let round = round_at(START_MS, INTERVAL_MS);
        let proposer = proposer_of(round, N);
        let me = (proposer + 1) % N;
        let mut consensus = fixture.consensus(me, fixture.genesis().header, last_signed);
        let effects = consensus.handle(Input::Tick { now_ms: START_MS });
        assert!(effects
            .iter()
            .any(|e| matches!(e, Effect::Broadcast(ConsensusMessage::Status(_)))));
        assert!(effects
            .iter()
            .any(|e| matches!(e, Effect::WakeAt { at_ms } if *at_ms == (round + 1) * INTERVAL_MS)));
        Harness {
            fixture,
            me,
            consensus,
            round,
            proposer,
        }
    }

    /// A valid child of genesis with block time `time`.
    fn block(&self, time: u32) -> elements::Block {
        chain::build_block(self.fixture.params(), &self.fixture.genesis().header, time)
    }

    /// A proposal for height 1 signed by `round`'s proposer.
    fn proposal(&self, round: u64, block: elements::Block) -> ConsensusMessage {
        ConsensusMessage::Proposal(self.signed_proposal(
            1,
            round,
            block,
            START_MS,
            proposer_of(round, N),
        ))
    }

    /// A proposal signed with `signer`'s p2p key.
    fn signed_proposal(
        &self,
        height: u32,
        round: u64,
        block: elements::Block,
        proposed_at_ms: u64,
        signer: usize,
    ) -> Proposal {
        let genesis = self.fixture.params().genesis_hash();
        Proposal::sign(
            &genesis,
            height,
            round,
            block,
            proposed_at_ms,
            &p2p_secret(signer),
        )
    }

    fn precommit(&self, member: usize, round: u64, hash: elements::BlockHash) -> Precommit {
        let genesis = self.fixture.params().genesis_hash();
        Precommit::sign(&genesis, 1, round, hash, member as u16, &p2p_secret(member))
    }

    fn send(&mut self, from: usize, message: ConsensusMessage) -> Vec<Effect> {
        self.consensus.handle(Input::Message { from, message })
    }

    /// The members other than me and the proposer.
    fn others(&self) -> Vec<usize> {
        (0..N)
            .filter(|m| *m != self.me && *m != self.proposer)
            .collect()
    }
}

fn rejections(effects: &[Effect]) -> Vec<(usize, Rejection)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Report(ConsensusEvent::Rejected { from, reason }) => {
                Some((*from, reason.clone()))
            }
            _ => None,
        })
        .collect()
}

fn precommits(effects: &[Effect]) -> Vec<Precommit> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Broadcast(ConsensusMessage::Precommit(p)) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

fn sign_requests(effects: &[Effect]) -> Vec<(u32, elements::BlockHash)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SignBlock { height, block_hash } => Some((*height, *block_hash)),
            _ => None,
        })
        .collect()
}

fn stored(effects: &[Effect]) -> Vec<elements::Block> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::StoreBlock(block) => Some(block.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn valid_proposal_is_precommitted_with_a_verifiable_signature() {
    let mut h = Harness::new(None);
    let block = h.block(TIME);
    let hash = block.block_hash();
    let effects = h.send(h.proposer, h.proposal(h.round, block));
    assert!(rejections(&effects).is_empty());
    let sent = precommits(&effects);
    assert_eq!(sent.len(), 1);
    let precommit = &sent[0];
    assert_eq!(
        (precommit.height, precommit.round, precommit.block_hash),
        (1, h.round, hash)
    );
    assert_eq!(usize::from(precommit.member), h.me);
    let genesis = h.fixture.params().genesis_hash();
    assert!(precommit.verify(&genesis, &p2p_secret(h.me).verifying_key()));
    assert!(!precommit.verify(&genesis, &p2p_secret(h.proposer).verifying_key()));
    // A duplicate delivery changes nothing.
    let again = h.send(h.proposer, h.proposal(h.round, h.block(TIME)));
    assert!(again.is_empty(), "duplicate proposal ignored: {again:?}");
}

#[test]
fn proposals_without_the_proposers_signature_are_rejected() {
    let mut h = Harness::new(None);
    let proposer = h.proposer;
    let bad_signature = |h: &Harness| Rejection::BadProposalSignature {
        round: h.round,
        proposer: h.proposer,
    };
    let valid = h.signed_proposal(1, h.round, h.block(TIME), START_MS, proposer);

    // Garbage and a flipped bit.
    let mut garbage = valid.clone();
    garbage.signature = [7u8; 64];
    let mut flipped = valid.clone();
    flipped.signature[10] ^= 1;
    // Signed by another member's key (the sender is still the round's proposer).
    let foreign = h.signed_proposal(1, h.round, h.block(TIME), START_MS, h.others()[0]);
    // Valid signatures replayed with a changed round, height or proposed_at_ms.
    let mut other_round = valid.clone();
    other_round.round = h.round + u64::try_from(N).expect("small");
    assert_eq!(proposer_of(other_round.round, N), proposer);
    let mut other_time = valid.clone();
    other_time.proposed_at_ms += 1;
    let mut other_height = h.signed_proposal(2, h.round, h.block(TIME), START_MS, proposer);
    other_height.height = 1;
    // A valid signature moved onto another block.
    let mut other_block = valid.clone();
    other_block.block = h.block(TIME + 1);

    for (what, proposal) in [
        ("garbage", garbage),
        ("flipped bit", flipped),
        ("foreign key", foreign),
        ("other round", other_round.clone()),
        ("other proposed_at_ms", other_time),
        ("other height", other_height),
        ("other block", other_block),
    ] {
        let round = proposal.round;
        let effects = h.send(proposer, ConsensusMessage::Proposal(proposal));
        if round == h.round {
            assert_eq!(
                rejections(&effects),
                vec![(proposer, bad_signature(&h))],
                "{what}"
            );
        } else {
            // Replayed into a later round: rejected by the clock window before its signature is checked,
            // and once that round is current, by its signature.
            assert!(
                matches!(
                    rejections(&effects)[..],
                    [(_, Rejection::RoundOutOfWindow { .. })]
                ),
                "{what}: {effects:?}"
            );
        }
        assert!(precommits(&effects).is_empty(), "{what}: not precommitted");
        assert_eq!(h.consensus.status().proposals, 0, "{what}: not held");
        assert!(rejections(&effects)
            .iter()
            .all(|(_, r)| r.is_misbehaviour() || matches!(r, Rejection::RoundOutOfWindow { .. })));
    }

    // The round replay once that round is current (a tick into it): rejected by its signature.
    let later = other_round.round;
    let mut replay_harness = Harness::new(None);
    replay_harness.consensus.handle(Input::Tick {
        now_ms: later * INTERVAL_MS + 1,
    });
    let effects = replay_harness.send(proposer, ConsensusMessage::Proposal(other_round));
    assert_eq!(
        rejections(&effects),
        vec![(
            proposer,
            Rejection::BadProposalSignature {
                round: later,
                proposer
            }
        )]
    );
    assert!(precommits(&effects).is_empty());

    // The correctly signed original is accepted and precommitted.
    let effects = h.send(proposer, ConsensusMessage::Proposal(valid));
    assert!(rejections(&effects).is_empty(), "{effects:?}");
    assert_eq!(precommits(&effects).len(), 1);
    assert_eq!(h.consensus.status().proposals, 1);
}

#[test]
fn proposal_from_the_wrong_proposer_is_rejected() {
    let mut h = Harness::new(None);
    let wrong = h.others()[0];
    let effects = h.send(wrong, h.proposal(h.round, h.block(TIME)));
    assert_eq!(
        rejections(&effects),
        vec![(
            wrong,
            Rejection::WrongProposer {
                round: h.round,
                expected: h.proposer,
                from: wrong
            }
        )]
    );
    assert!(precommits(&effects).is_empty());
    assert_eq!(h.consensus.status().proposals, 0);
}

#[test]
fn proposals_outside_the_rules_are_rejected() {
    let mut h = Harness::new(None);
    // Two rounds ahead: outside the clock-skew window (sent by that round's proposer).
    let far = h.round + 2;
    let effects = h.send(proposer_of(far, N), h.proposal(far, h.block(TIME)));
    assert_eq!(
        rejections(&effects),
        vec![(
            proposer_of(far, N),
            Rejection::RoundOutOfWindow {
                round: far,
                current: h.round
            }
        )]
    );

    // A block on another parent.
    let mut other_parent = h.fixture.genesis().header;
    other_parent.time += 1;
    let orphan = chain::build_block(h.fixture.params(), &other_parent, TIME);
    let effects = h.send(h.proposer, h.proposal(h.round, orphan));
    assert!(
        matches!(
            rejections(&effects)[..],
            [(_, Rejection::WrongParent { .. })]
        ),
        "{effects:?}"
    );

    // A block chain::validate_proposal refuses (time before the parent's).
    let early = h.block(common::GENESIS_TIME - 1);
    let effects = h.send(h.proposer, h.proposal(h.round, early));
    assert!(
        matches!(
            rejections(&effects)[..],
            [(_, Rejection::InvalidProposal(_))]
        ),
        "{effects:?}"
    );

    // A message height that does not match the block's.
    let mut wrong_height = h.block(TIME);
    wrong_height.header.height = 2;
    let effects = h.send(h.proposer, h.proposal(h.round, wrong_height));
    assert_eq!(
        rejections(&effects)[0].1,
        Rejection::HeightMismatch {
            message_height: 1,
            block_height: 2
        }
    );
    assert_eq!(h.consensus.status().proposals, 0);
    assert_eq!(h.consensus.status().best_precommit_count, 0);

    // Equivocation: a second, different block in the same round.
    let effects = h.send(h.proposer, h.proposal(h.round, h.block(TIME)));
    assert_eq!(precommits(&effects).len(), 1);
    let effects = h.send(h.proposer, h.proposal(h.round, h.block(TIME + 1)));
    assert_eq!(
        rejections(&effects),
        vec![(
            h.proposer,
            Rejection::EquivocatingProposal { round: h.round }
        )]
    );
    assert!(precommits(&effects).is_empty());

    // An unknown sender index.
    let effects = h.send(N + 3, h.proposal(h.round, h.block(TIME)));
    assert_eq!(
        rejections(&effects),
        vec![(N + 3, Rejection::UnknownSender { from: N + 3 })]
    );
}

#[test]
fn bad_and_forged_precommits_are_rejected_and_not_counted() {
    let mut h = Harness::new(None);
    let block = h.block(TIME);
    let hash = block.block_hash();
    let effects = h.send(h.proposer, h.proposal(h.round, block));
    assert_eq!(precommits(&effects).len(), 1, "own precommit: count 1");
    let [a, b] = h.others()[..] else {
        panic!("two other members")
    };

    // Bad signature: a flipped bit.
    let mut bad = h.precommit(a, h.round, hash);
    bad.signature[10] ^= 1;
    let effects = h.send(a, ConsensusMessage::Precommit(bad));
    assert_eq!(
        rejections(&effects),
        vec![(a, Rejection::BadPrecommitSignature { member: a as u16 })]
    );

    // Bad signature: made with another member's key.
    let mut wrong_key = h.precommit(b, h.round, hash);
    wrong_key.member = a as u16;
    let effects = h.send(a, ConsensusMessage::Precommit(wrong_key));
    assert_eq!(
        rejections(&effects),
        vec![(a, Rejection::BadPrecommitSignature { member: a as u16 })]
    );

    // Forged member index: b's valid precommit sent by a.
    let forged = h.precommit(b, h.round, hash);
    let effects = h.send(a, ConsensusMessage::Precommit(forged));
    assert_eq!(
        rejections(&effects),
        vec![(
            a,
            Rejection::MemberMismatch {
                member: b as u16,
                from: a
            }
        )]
    );

    // Member index out of range.
    let mut out_of_range = h.precommit(a, h.round, hash);
    out_of_range.member = 9;
    let effects = h.send(a, ConsensusMessage::Precommit(out_of_range));
    assert_eq!(
        rejections(&effects),
        vec![(a, Rejection::MemberOutOfRange { member: 9 })]
    );

    // None of these counted: still only our own precommit.
    assert_eq!(h.consensus.status().best_precommit_count, 1);

    // One valid precommit: 2 of 3, no certificate yet.
    let effects = h.send(
        a,
        ConsensusMessage::Precommit(h.precommit(a, h.round, hash)),
    );
    assert!(sign_requests(&effects).is_empty());
    assert_eq!(h.consensus.status().best_precommit_count, 2);
    // Equivocation by a: another block in the same round is not counted.
    let other = h.block(TIME + 5).block_hash();
    let effects = h.send(
        a,
        ConsensusMessage::Precommit(h.precommit(a, h.round, other)),
    );
    assert_eq!(
        rejections(&effects),
        vec![(
            a,
            Rejection::EquivocatingPrecommit {
                member: a as u16,
                round: h.round
            }
        )]
    );
    // The third valid precommit makes the certificate: sign once, locked.
    let effects = h.send(
        b,
        ConsensusMessage::Precommit(h.precommit(b, h.round, hash)),
    );
    assert_eq!(sign_requests(&effects), vec![(1, hash)]);
    assert_eq!(h.consensus.status().locked, Some(hash));
    assert_eq!(h.consensus.last_signed(), Some((1, hash)));
    let effects = h.send(
        h.proposer,
        ConsensusMessage::Precommit(h.precommit(h.proposer, h.round, hash)),
    );
    assert!(
        sign_requests(&effects).is_empty(),
        "SignBlock is emitted once"
    );
}

#[test]
fn block_signatures_by_non_members_or_for_others_are_rejected() {
    let mut h = Harness::new(None);
    let block = h.block(TIME);
    let hash = block.block_hash();
    h.send(h.proposer, h.proposal(h.round, block.clone()));
    let [a, b] = h.others()[..] else {
        panic!("two other members")
    };

    // A key outside the federation.
    let outsider = secp256k1::SecretKey::from_slice(&[0x77; 32]).expect("key");
    let signature = sign_with(&outsider, &block.header);
    let message = BlockSignature {
        height: 1,
        block_hash: hash,
        member: a as u16,
        signature,
    };
    let effects = h.send(a, ConsensusMessage::BlockSignature(message));
    assert!(
        matches!(&rejections(&effects)[..], [(from, Rejection::BadBlockSignature { member, .. })] if *from == a && usize::from(*member) == a),
        "{effects:?}"
    );

    // Member b's real signature claimed by a.
    let signature = h.fixture.sign(b, &block.header);
    let message = BlockSignature {
        height: 1,
        block_hash: hash,
        member: a as u16,
        signature: signature.clone(),
    };
    let effects = h.send(a, ConsensusMessage::BlockSignature(message));
    assert!(
        matches!(
            &rejections(&effects)[..],
            [(_, Rejection::BadBlockSignature { .. })]
        ),
        "{effects:?}"
    );

    // b's signature relayed by a with b's index: forged sender.
    let message = BlockSignature {
        height: 1,
        block_hash: hash,
        member: b as u16,
        signature: signature.clone(),
    };
    let effects = h.send(a, ConsensusMessage::BlockSignature(message));
    assert_eq!(
        rejections(&effects),
        vec![(
            a,
            Rejection::MemberMismatch {
                member: b as u16,
                from: a
            }
        )]
    );
    assert_eq!(
        h.consensus.status().best_signature_count,
        0,
        "nothing counted"
    );

    // The real thing counts.
    let message = BlockSignature {
        height: 1,
        block_hash: hash,
        member: b as u16,
        signature,
    };
    let effects = h.send(b, ConsensusMessage::BlockSignature(message));
    assert!(rejections(&effects).is_empty());
    assert_eq!(h.consensus.status().best_signature_count, 1);
}

#[test]
fn signatures_before_the_block_are_buffered_and_m_of_them_finalize() {
    let mut h = Harness::new(None);
    let block = h.block(TIME);
    let hash = block.block_hash();
    let signers: Vec<usize> = (0..N).filter(|m| *m != h.me).collect();
    for member in &signers {
        let signature = h.fixture.sign(*member, &block.header);
        let message = BlockSignature {
            height: 1,
            block_hash: hash,
            member: *member as u16,
            signature,
        };
        let effects = h.send(*member, ConsensusMessage::BlockSignature(message));
        assert!(effects.is_empty(), "buffered quietly: {effects:?}");
    }
    let effects = h.send(h.proposer, h.proposal(h.round, block));
    let final_blocks = stored(&effects);
    assert_eq!(
        final_blocks.len(),
        1,
        "m buffered signatures + block = final"
    );
    let signers = chain::validate_final_block(
        h.fixture.params(),
        &h.fixture.genesis().header,
        &final_blocks[0],
    )
    .expect("valid final block");
    assert_eq!(signers.len(), M);
    // R12: we are not the proposer of the round the block was accepted in, so we only store it.
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Broadcast(ConsensusMessage::FinalBlock(_)))),
        "only the round's proposer announces the final block: {effects:?}"
    );
    assert_eq!(h.consensus.tip().block_hash(), hash);
    assert_eq!(h.consensus.status().height, 2);
}

#[test]
fn the_rounds_proposer_announces_the_block_it_finalized_from_signatures() {
    let fixture = Fixture::new(N, M);
    let round = round_at(START_MS, INTERVAL_MS);
    let proposer = proposer_of(round, N);
    let mut consensus = fixture.consensus(proposer, fixture.genesis().header, None);
    let effects = consensus.handle(Input::Tick { now_ms: START_MS });
    let proposal = effects
        .iter()
        .find_map(|e| match e {
            Effect::Broadcast(ConsensusMessage::Proposal(p)) => Some(p.clone()),
            _ => None,
        })
        .expect("the proposer proposes in its slot");
    let genesis = fixture.params().genesis_hash();
    assert!(proposal.verify(&genesis, &p2p_secret(proposer).verifying_key()));
    assert!(!proposal.verify(&genesis, &p2p_secret((proposer + 1) % N).verifying_key()));
    let hash = proposal.block.block_hash();
    let mut effects = Vec::new();
    for member in (0..N).filter(|m| *m != proposer).take(M) {
        let message = BlockSignature {
            height: 1,
            block_hash: hash,
            member: member as u16,
            signature: fixture.sign(member, &proposal.block.header),
        };
        effects = consensus.handle(Input::Message {
            from: member,
            message: ConsensusMessage::BlockSignature(message),
        });
    }
    assert_eq!(stored(&effects).len(), 1, "{effects:?}");
    let announced: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Broadcast(ConsensusMessage::FinalBlock(b)) => Some(b.block_hash()),
            _ => None,
        })
        .collect();
    assert_eq!(announced, vec![hash]);
    assert_eq!(consensus.tip().block_hash(), hash);
}

#[test]
fn restarted_member_stays_locked_on_its_journal_hash() {
    let probe = Harness::new(None);
    let locked_block = probe.block(TIME + 100);
    let locked = locked_block.block_hash();
    let mut h = Harness::new(Some((1, locked)));
    assert_eq!(h.consensus.status().locked, Some(locked));

    // A different block at height 1: no precommit, and even with a certificate for it no SignBlock.
    let other = h.block(TIME);
    let other_hash = other.block_hash();
    let effects = h.send(h.proposer, h.proposal(h.round, other));
    assert!(
        precommits(&effects).is_empty(),
        "locked: no precommit for another block"
    );
    let me = h.me;
    for member in (0..N).filter(|m| *m != me) {
        let effects = h.send(
            member,
            ConsensusMessage::Precommit(h.precommit(member, h.round, other_hash)),
        );
        assert!(
            sign_requests(&effects).is_empty(),
            "locked: never sign another block"
        );
    }
    assert!(h.consensus.status().best_precommit_count >= M);
    assert_eq!(h.consensus.last_signed(), Some((1, locked)));

    // Two rounds later (the next round is ours and we do not hold the locked block), that round's proposer
    // re-proposes the locked hash: it is precommitted and signed again.
    let later = h.round + 2;
    let effects = h.consensus.handle(Input::Tick {
        now_ms: START_MS + 2 * INTERVAL_MS,
    });
    assert!(sign_requests(&effects).is_empty());
    let effects = h.send(proposer_of(later, N), h.proposal(later, locked_block));
    let sent = precommits(&effects);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].block_hash, locked);
    let mut requested = Vec::new();
    for member in (0..N).filter(|m| *m != me).take(M - 1) {
        let effects = h.send(
            member,
            ConsensusMessage::Precommit(h.precommit(member, later, locked)),
        );
        requested.extend(sign_requests(&effects));
    }
    assert_eq!(
        requested,
        vec![(1, locked)],
        "the journal allows re-signing the same hash"
    );
}

#[test]
fn proposer_locked_on_a_block_it_does_not_hold_skips_its_slot() {
    let probe = Harness::new(None);
    let locked = probe.block(TIME + 100).block_hash();
    let fixture = Fixture::new(N, M);
    let round = round_at(START_MS, INTERVAL_MS);
    let proposer = proposer_of(round, N);
    let mut consensus = fixture.consensus(proposer, fixture.genesis().header, Some((1, locked)));
    let effects = consensus.handle(Input::Tick { now_ms: START_MS });
    assert!(!effects
        .iter()
        .any(|e| matches!(e, Effect::Broadcast(ConsensusMessage::Proposal(_)))));
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Report(ConsensusEvent::ProposalSkipped { locked: l, .. }) if *l == locked)));
}

#[test]
fn unexpected_signer_results_are_rejected() {
    let mut h = Harness::new(None);
    let hash = h.block(TIME).block_hash();
    let effects = h.consensus.handle(Input::BlockSigned {
        height: 1,
        block_hash: hash,
        signature: vec![1, 2, 3],
    });
    assert_eq!(
        rejections(&effects),
        vec![(
            h.me,
            Rejection::UnexpectedSignerResult {
                height: 1,
                block_hash: hash
            }
        )]
    );
    assert!(!effects.iter().any(|e| matches!(e, Effect::Broadcast(_))));
}

/// A chain of `count` final blocks on genesis, signed by the first m members.
fn signed_chain(fixture: &Fixture, count: u32) -> Vec<elements::Block> {
    let mut parent = fixture.genesis().header;
    let mut blocks = Vec::new();
    for i in 0..count {
        let mut block = chain::build_block(fixture.params(), &parent, TIME + i);
        let signatures: Vec<(usize, Vec<u8>)> = (0..M)
            .map(|m| (m, fixture.sign(m, &block.header)))
            .collect();
        chain::attach_signatures(fixture.params(), &mut block.header, &signatures).expect("attach");
        parent = block.header.clone();
        blocks.push(block);
    }
    blocks
}

#[test]
fn final_blocks_and_fetches_are_validated_before_storing() {
    let mut h = Harness::new(None);
    let blocks = signed_chain(&h.fixture, 6);

    // A final block without its witness is refused.
    let mut unsigned = blocks[0].clone();
    unsigned.header.clear_witness();
    let effects = h.send(h.proposer, ConsensusMessage::FinalBlock(unsigned));
    assert!(
        matches!(
            &rejections(&effects)[..],
            [(_, Rejection::InvalidFinalBlock { height: 1, .. })]
        ),
        "{effects:?}"
    );
    assert!(stored(&effects).is_empty());

    // A status from a peer ahead triggers one fetch; a second status does not (one outstanding).
    let peer = h.proposer;
    let status = Status {
        height: 6,
        tip_hash: blocks[5].block_hash(),
    };
    let effects = h.send(peer, ConsensusMessage::Status(status.clone()));
    assert!(
        effects.contains(&Effect::FetchBlocks {
            from: peer,
            start_height: 1,
            count: 6
        }),
        "{effects:?}"
    );
    let effects = h.send(peer, ConsensusMessage::Status(status));
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::FetchBlocks { .. })),
        "rate-limited"
    );

    // The answer has a corrupted block 4: blocks 1..=3 are stored, the rest refused.
    let mut answer = blocks.clone();
    if let elements::BlockExtData::Dynafed {
        signblock_witness, ..
    } = &mut answer[3].header.ext
    {
        signblock_witness[1][8] ^= 1;
    }
    let effects = h.consensus.handle(Input::BlocksFetched {
        from: peer,
        blocks: answer,
    });
    let got: Vec<u32> = stored(&effects).iter().map(|b| b.header.height).collect();
    assert_eq!(got, vec![1, 2, 3]);
    assert!(
        matches!(&rejections(&effects)[..], [(p, Rejection::InvalidFinalBlock { height: 4, .. })] if *p == peer),
        "{effects:?}"
    );
    assert_eq!(h.consensus.tip().height, 3);
    // Progress was made and the peer is still ahead: the next batch is fetched.
    assert!(
        effects.contains(&Effect::FetchBlocks {
            from: peer,
            start_height: 4,
            count: 3
        }),
        "{effects:?}"
    );

    // A batch with a gap is refused at the gap.
    let effects = h.consensus.handle(Input::BlocksFetched {
        from: peer,
        blocks: blocks[4..].to_vec(),
    });
    assert!(matches!(
        &rejections(&effects)[..],
        [(
            _,
            Rejection::FetchedBlockGap {
                expected: 4,
                got: 5
            }
        )]
    ));
    // The correct rest is stored; already-known blocks at the start are skipped.
    let effects = h.consensus.handle(Input::BlocksFetched {
        from: peer,
        blocks: blocks.clone(),
    });
    let got: Vec<u32> = stored(&effects).iter().map(|b| b.header.height).collect();
    assert_eq!(got, vec![4, 5, 6]);
    assert!(rejections(&effects).is_empty());
    assert_eq!(h.consensus.tip().block_hash(), blocks[5].block_hash());
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::FetchBlocks { .. })),
        "caught up"
    );

    // A valid FinalBlock for the next height is stored directly, without a re-broadcast.
    let mut more = chain::build_block(h.fixture.params(), &blocks[5].header, TIME + 10);
    let signatures: Vec<(usize, Vec<u8>)> = (1..=M)
        .map(|m| (m, h.fixture.sign(m, &more.header)))
        .collect();
    chain::attach_signatures(h.fixture.params(), &mut more.header, &signatures).expect("attach");
    let effects = h.send(peer, ConsensusMessage::FinalBlock(more.clone()));
    assert_eq!(stored(&effects), vec![more]);
    assert!(!effects.iter().any(|e| matches!(e, Effect::Broadcast(_))));
}

#[test]
fn next_height_messages_are_buffered_and_replayed() {
    let mut h = Harness::new(None);
    let blocks = signed_chain(&h.fixture, 1);
    // The previous round's proposer (within the clock-skew window) already has block 1 and proposes block 2.
    let round = h.round - 1;
    let block2 = chain::build_block(h.fixture.params(), &blocks[0].header, TIME + 1);
    let proposal =
        ConsensusMessage::Proposal(h.signed_proposal(2, round, block2, 0, proposer_of(round, N)));
    let effects = h.send(proposer_of(round, N), proposal);
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::FetchBlocks {
                start_height: 1,
                ..
            }
        )),
        "{effects:?}"
    );
    assert!(precommits(&effects).is_empty());
    // Block 1 arrives: the buffered proposal is replayed and precommitted.
    let effects = h.send(h.proposer, ConsensusMessage::FinalBlock(blocks[0].clone()));
    assert_eq!(stored(&effects).len(), 1);
    let sent = precommits(&effects);
    assert_eq!(sent.len(), 1, "{effects:?}");
    assert_eq!((sent[0].height, sent[0].round), (2, round));
}
