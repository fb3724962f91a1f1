//! One member's state machine fed crafted inputs: every `Rejection` protocol v3 can produce is triggered by
//! its offending input and reported exactly (reason and blamed sender), rejected inputs are not counted,
//! and the signer journal's hash is the only one signed at its height.

mod common;

use blocksigner::rules::{
    proposer_of, MAX_FUTURE_MESSAGES_PER_MEMBER, MAX_PENDING_SIGNATURES_PER_MEMBER,
};
use blocksigner::{
    BlockSignature, CertificateSignature, Commit, CommitCertificate, Consensus, ConsensusEvent,
    ConsensusMessage, Effect, Input, Proposal, Rejection, Status, Vote, VoteKind,
};
use common::{p2p_secret, Fixture, GENESIS_TIME, START_MS};

const N: usize = 4;
const M: usize = 3;
/// The member under test: not the proposer of round 0 at height 1 (member 1).
const ME: usize = 0;
/// The block time of height 1 for a member whose first tick is START_MS (the next slot boundary, in seconds).
const TIME: u32 = (START_MS / 1000 + 1) as u32;

struct Harness {
    fixture: Fixture,
    consensus: Consensus,
}

impl Harness {
    fn new() -> Self {
        Self::with_journal(None)
    }

    fn with_journal(last_signed: Option<(u32, elements::BlockHash)>) -> Self {
        let fixture = Fixture::new(N, M);
        let mut consensus = fixture.consensus(ME, fixture.genesis().header, None, last_signed);
        let effects = consensus.handle(Input::Tick { now_ms: START_MS });
        assert!(effects
            .iter()
            .any(|e| matches!(e, Effect::Broadcast(ConsensusMessage::Status(_)))));
        assert_eq!(proposer_of(1, 0, N), 1);
        Harness { fixture, consensus }
    }

    fn genesis_hash(&self) -> elements::BlockHash {
        self.fixture.params().genesis_hash()
    }

    /// A valid child of genesis with block time `time`.
    fn block(&self, time: u32) -> elements::Block {
        chain::build_block(self.fixture.params(), &self.fixture.genesis().header, time)
    }

    /// A proposal at height 1 signed by `signer`.
    fn proposal(&self, round: u32, block: elements::Block, signer: usize) -> Proposal {
        Proposal::sign(
            &self.genesis_hash(),
            1,
            round,
            None,
            block,
            START_MS,
            &p2p_secret(signer),
        )
    }

    fn vote(
        &self,
        kind: VoteKind,
        height: u32,
        round: u32,
        hash: Option<elements::BlockHash>,
        member: usize,
    ) -> Vote {
        Vote::sign(
            &self.genesis_hash(),
            kind,
            height,
            round,
            hash,
            u16::try_from(member).expect("small"),
            &p2p_secret(member),
        )
    }

    /// A certificate of precommits by `members` for `hash` at (1, round).
    fn certificate(
        &self,
        round: u32,
        hash: elements::BlockHash,
        members: &[usize],
    ) -> CommitCertificate {
        CommitCertificate {
            height: 1,
            round,
            block_hash: hash,
            precommits: members
                .iter()
                .map(|member| {
                    let vote = self.vote(VoteKind::Precommit, 1, round, Some(hash), *member);
                    (
                        vote.member,
                        CertificateSignature::from_bytes(&vote.signature),
                    )
                })
                .collect(),
        }
    }

    /// `block` with the block signatures of `members` attached.
    fn signed(&self, block: &elements::Block, members: &[usize]) -> elements::Block {
        let signatures: Vec<(usize, Vec<u8>)> = members
            .iter()
            .map(|m| (*m, self.fixture.sign(*m, &block.header)))
            .collect();
        let mut signed = block.clone();
        chain::attach_signatures(self.fixture.params(), &mut signed.header, &signatures)
            .expect("attach");
        signed
    }

    fn deliver(&mut self, from: usize, message: ConsensusMessage) -> Vec<Effect> {
        self.consensus.handle(Input::Message { from, message })
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

fn votes(effects: &[Effect]) -> Vec<Vote> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Broadcast(ConsensusMessage::Vote(v)) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn sign_requests(effects: &[Effect]) -> Vec<(u32, elements::BlockHash, Option<CommitCertificate>)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SignBlock {
                height,
                block_hash,
                certificate,
            } => Some((*height, *block_hash, certificate.clone())),
            _ => None,
        })
        .collect()
}

fn stored(effects: &[Effect]) -> Vec<elements::Block> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::StoreBlock(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

/// Asserts that `effects` reject exactly once, with `expected`, blamed on `from`, and that the input did
/// nothing else observable (no vote, no store, no signing request).
fn assert_only_rejection(effects: &[Effect], from: usize, expected: Rejection) {
    assert_eq!(rejections(effects), vec![(from, expected)], "{effects:?}");
    assert!(votes(effects).is_empty(), "no vote: {effects:?}");
    assert!(stored(effects).is_empty());
    assert!(sign_requests(effects).is_empty());
}

/// R5/R6: a proposal with an invalid block is rejected with `expected`, remembered as invalid, and the
/// member prevotes nil in the round (never the block).
fn assert_rejected_and_prevoted_nil(effects: &[Effect], from: usize, expected: Rejection) {
    assert_eq!(rejections(effects), vec![(from, expected)], "{effects:?}");
    let cast = votes(effects);
    assert_eq!(cast.len(), 1, "{effects:?}");
    assert_eq!(
        (cast[0].kind, cast[0].block_hash),
        (VoteKind::Prevote, None)
    );
    assert!(stored(effects).is_empty() && sign_requests(effects).is_empty());
}

#[test]
fn a_valid_proposal_is_prevoted_with_a_verifiable_signature() {
    let mut h = Harness::new();
    let block = h.block(TIME);
    let hash = block.block_hash();
    let effects = h.deliver(1, ConsensusMessage::Proposal(h.proposal(0, block, 1)));
    assert!(rejections(&effects).is_empty(), "{effects:?}");
    let cast = votes(&effects);
    assert_eq!(cast.len(), 1);
    assert_eq!(cast[0].kind, VoteKind::Prevote);
    assert_eq!((cast[0].height, cast[0].round), (1, 0));
    assert_eq!(cast[0].block_hash, Some(hash));
    assert!(cast[0].verify(&h.genesis_hash(), &p2p_secret(ME).verifying_key()));
    // Persisted before it is broadcast.
    let persist = effects
        .iter()
        .position(|e| matches!(e, Effect::Persist(r) if r.prevote.as_ref().is_some_and(|v| v.block_hash == Some(hash))))
        .expect("persisted");
    let broadcast = effects
        .iter()
        .position(|e| matches!(e, Effect::Broadcast(ConsensusMessage::Vote(_))))
        .expect("broadcast");
    assert!(persist < broadcast);
}

#[test]
fn proposal_from_the_wrong_proposer() {
    let mut h = Harness::new();
    let proposal = h.proposal(0, h.block(TIME), 2);
    let effects = h.deliver(2, ConsensusMessage::Proposal(proposal));
    assert_only_rejection(
        &effects,
        2,
        Rejection::WrongProposer {
            round: 0,
            expected: 1,
            from: 2,
        },
    );
    assert!(Rejection::WrongProposer {
        round: 0,
        expected: 1,
        from: 2
    }
    .is_misbehaviour());
}

#[test]
fn proposal_with_a_bad_signature() {
    let mut h = Harness::new();
    // Signed by another member's key, sent by the right proposer.
    let proposal = h.proposal(0, h.block(TIME), 2);
    let effects = h.deliver(1, ConsensusMessage::Proposal(proposal));
    let expected = Rejection::BadProposalSignature {
        round: 0,
        proposer: 1,
    };
    assert_only_rejection(&effects, 1, expected.clone());
    // Signed correctly, then a signed field changed.
    let mut tampered = h.proposal(0, h.block(TIME), 1);
    tampered.proposed_at_ms += 1;
    let effects = h.deliver(1, ConsensusMessage::Proposal(tampered));
    assert_only_rejection(&effects, 1, expected.clone());
    let mut tampered = h.proposal(0, h.block(TIME), 1);
    tampered.valid_round = Some(0);
    tampered.round = 1;
    let effects = h.deliver(2, ConsensusMessage::Proposal(tampered));
    assert_only_rejection(
        &effects,
        2,
        Rejection::BadProposalSignature {
            round: 1,
            proposer: 2,
        },
    );
    // The untampered proposal is still accepted afterwards.
    let effects = h.deliver(
        1,
        ConsensusMessage::Proposal(h.proposal(0, h.block(TIME), 1)),
    );
    assert!(rejections(&effects).is_empty());
    assert_eq!(votes(&effects).len(), 1);
}

#[test]
fn proposal_whose_block_has_another_height() {
    let mut h = Harness::new();
    let block1 = h.block(TIME);
    let block2 = chain::build_block(h.fixture.params(), &block1.header, TIME);
    let effects = h.deliver(1, ConsensusMessage::Proposal(h.proposal(0, block2, 1)));
    assert_rejected_and_prevoted_nil(
        &effects,
        1,
        Rejection::HeightMismatch {
            message_height: 1,
            block_height: 2,
        },
    );
}

#[test]
fn proposal_on_the_wrong_parent() {
    let mut h = Harness::new();
    let mut other_parent = h.fixture.genesis().header;
    other_parent.time += 1;
    let block = chain::build_block(h.fixture.params(), &other_parent, TIME);
    let effects = h.deliver(1, ConsensusMessage::Proposal(h.proposal(0, block, 1)));
    assert_rejected_and_prevoted_nil(
        &effects,
        1,
        Rejection::WrongParent {
            expected: h.genesis_hash(),
            got: other_parent.block_hash(),
        },
    );
}

#[test]
fn invalid_proposals_are_rejected_and_prevoted_nil() {
    let mut h = Harness::new();
    // A block time before its parent's.
    let block = h.block(GENESIS_TIME - 1);
    let effects = h.deliver(1, ConsensusMessage::Proposal(h.proposal(0, block, 1)));
    let rejected = rejections(&effects);
    assert_eq!(rejected.len(), 1);
    assert!(
        matches!(&rejected[0], (1, Rejection::InvalidProposal(reason)) if reason.contains("time")),
        "{rejected:?}"
    );
    // R5: an invalid proposal is remembered, and R6 prevotes nil on it.
    let cast = votes(&effects);
    assert_eq!(cast.len(), 1, "{effects:?}");
    assert_eq!(cast[0].block_hash, None);
    // Another malformation: the block's merkle root does not match.
    let mut h = Harness::new();
    let mut block = h.block(TIME);
    block.header.merkle_root = elements::TxMerkleNode::from_byte_array([7; 32]);
    let effects = h.deliver(1, ConsensusMessage::Proposal(h.proposal(0, block, 1)));
    assert!(matches!(
        rejections(&effects).as_slice(),
        [(1, Rejection::InvalidProposal(_))]
    ));
}

#[test]
fn proposal_with_a_block_from_the_future() {
    let mut h = Harness::new();
    let time =
        u32::try_from((START_MS + blocksigner::rules::MAX_CLOCK_SKEW_MS) / 1000 + 1).expect("time");
    let effects = h.deliver(
        1,
        ConsensusMessage::Proposal(h.proposal(0, h.block(time), 1)),
    );
    assert_rejected_and_prevoted_nil(
        &effects,
        1,
        Rejection::BlockFromTheFuture {
            time,
            now_ms: START_MS,
        },
    );
    // Just inside the allowed skew is fine.
    let mut h = Harness::new();
    let effects = h.deliver(
        1,
        ConsensusMessage::Proposal(h.proposal(0, h.block(time - 1), 1)),
    );
    assert!(rejections(&effects).is_empty(), "{effects:?}");
}

#[test]
fn a_second_different_proposal_in_a_round_is_equivocation() {
    let mut h = Harness::new();
    let first = h.block(TIME);
    let effects = h.deliver(
        1,
        ConsensusMessage::Proposal(h.proposal(0, first.clone(), 1)),
    );
    assert!(rejections(&effects).is_empty());
    let effects = h.deliver(
        1,
        ConsensusMessage::Proposal(h.proposal(0, h.block(TIME - 1), 1)),
    );
    assert_only_rejection(&effects, 1, Rejection::EquivocatingProposal { round: 0 });
    // The same proposal again is a harmless duplicate.
    let effects = h.deliver(1, ConsensusMessage::Proposal(h.proposal(0, first, 1)));
    assert!(rejections(&effects).is_empty());
    assert!(votes(&effects).is_empty(), "one prevote per round");
}

#[test]
fn member_fields_out_of_range_or_not_the_sender() {
    let mut h = Harness::new();
    let hash = h.block(TIME).block_hash();
    let mut vote = h.vote(VoteKind::Prevote, 1, 0, Some(hash), 2);
    vote.member = 9;
    let effects = h.deliver(2, ConsensusMessage::Vote(vote));
    assert_only_rejection(&effects, 2, Rejection::MemberOutOfRange { member: 9 });

    let vote = h.vote(VoteKind::Precommit, 1, 0, Some(hash), 3);
    let effects = h.deliver(2, ConsensusMessage::Vote(vote));
    assert_only_rejection(
        &effects,
        2,
        Rejection::MemberMismatch { member: 3, from: 2 },
    );

    let signature = BlockSignature {
        height: 1,
        block_hash: hash,
        member: 3,
        signature: vec![0x30, 1],
    };
    let effects = h.deliver(2, ConsensusMessage::BlockSignature(signature.clone()));
    assert_only_rejection(
        &effects,
        2,
        Rejection::MemberMismatch { member: 3, from: 2 },
    );
    let effects = h.deliver(
        2,
        ConsensusMessage::BlockSignature(BlockSignature {
            member: 4,
            ..signature
        }),
    );
    assert_only_rejection(&effects, 2, Rejection::MemberOutOfRange { member: 4 });
}

#[test]
fn votes_with_bad_signatures_are_rejected_and_not_counted() {
    let mut h = Harness::new();
    let block = h.block(TIME);
    let hash = block.block_hash();
    for kind in [VoteKind::Prevote, VoteKind::Precommit] {
        for member in 1..N {
            // Signed by the wrong key.
            let mut vote = h.vote(kind, 1, 0, Some(hash), (member % 3) + 1);
            vote.member = u16::try_from(member).expect("small");
            if member == (member % 3) + 1 {
                vote.signature[0] ^= 1;
            }
            let effects = h.deliver(member, ConsensusMessage::Vote(vote));
            assert_only_rejection(
                &effects,
                member,
                Rejection::BadVoteSignature {
                    kind,
                    member: u16::try_from(member).expect("small"),
                },
            );
        }
    }
    // m forged precommits plus the proposal: nothing decided, nothing signed.
    let effects = h.deliver(1, ConsensusMessage::Proposal(h.proposal(0, block, 1)));
    assert!(sign_requests(&effects).is_empty());
    assert_eq!(h.consensus.status().best_precommit_count, 0);
    assert_eq!(h.consensus.status().best_prevote_count, 1, "only our own");
    assert_eq!(h.consensus.status().decided, None);
}

#[test]
fn a_second_different_vote_in_a_round_is_equivocation() {
    let mut h = Harness::new();
    let x = h.block(TIME).block_hash();
    let y = h.block(TIME - 1).block_hash();
    for kind in [VoteKind::Prevote, VoteKind::Precommit] {
        let effects = h.deliver(2, ConsensusMessage::Vote(h.vote(kind, 1, 0, Some(x), 2)));
        assert!(rejections(&effects).is_empty());
        // The same vote again is a duplicate, not equivocation.
        let effects = h.deliver(2, ConsensusMessage::Vote(h.vote(kind, 1, 0, Some(x), 2)));
        assert!(rejections(&effects).is_empty());
        for other in [Some(y), None] {
            let effects = h.deliver(2, ConsensusMessage::Vote(h.vote(kind, 1, 0, other, 2)));
            assert_only_rejection(
                &effects,
                2,
                Rejection::EquivocatingVote {
                    kind,
                    member: 2,
                    round: 0,
                },
            );
        }
        // A vote in another round is not equivocation.
        let effects = h.deliver(2, ConsensusMessage::Vote(h.vote(kind, 1, 1, Some(y), 2)));
        assert!(rejections(&effects).is_empty());
    }
    // The first vote stays counted: one for x.
    assert_eq!(h.consensus.status().best_precommit_count, 1);
}

#[test]
fn bad_commit_certificates_are_rejected() {
    let mut h = Harness::new();
    let block = h.block(TIME);
    let hash = block.block_hash();
    let commit = |certificate| {
        ConsensusMessage::Commit(Commit {
            certificate,
            block: block.clone(),
        })
    };
    let bad = |effects: &[Effect], needle: &str| {
        let rejected = rejections(effects);
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        assert!(
            matches!(&rejected[0], (2, Rejection::BadCertificate(reason)) if reason.contains(needle)),
            "expected {needle:?} in {rejected:?}"
        );
        assert!(votes(effects).is_empty() && sign_requests(effects).is_empty());
    };
    // A forged precommit signature.
    let mut forged = h.certificate(0, hash, &[0, 1, 2]);
    forged.precommits[1].1 .0[5] ^= 1;
    bad(&h.deliver(2, commit(forged)), "member 1 does not verify");
    // A precommit by another key in member 3's place.
    let mut swapped = h.certificate(0, hash, &[0, 1, 2]);
    swapped.precommits[2].0 = 3;
    bad(&h.deliver(2, commit(swapped)), "member 3 does not verify");
    // Too few.
    bad(
        &h.deliver(2, commit(h.certificate(0, hash, &[1, 2]))),
        "2 precommits, 3 needed",
    );
    // Unordered and duplicate members.
    bad(
        &h.deliver(2, commit(h.certificate(0, hash, &[2, 1, 3]))),
        "member 1 out of order",
    );
    bad(
        &h.deliver(2, commit(h.certificate(0, hash, &[1, 2, 2]))),
        "member 2 out of order or twice",
    );
    // A member outside the federation.
    let mut unknown = h.certificate(0, hash, &[0, 1, 2]);
    unknown.precommits.push((9, unknown.precommits[0].1));
    bad(&h.deliver(2, commit(unknown)), "names member 9");
    // Wrong subject: a valid certificate for another block.
    let other = h.block(TIME - 1).block_hash();
    bad(
        &h.deliver(2, commit(h.certificate(0, other, &[0, 1, 2]))),
        "is for height 1 block",
    );
    // A valid certificate whose round differs from the signed one does not verify either.
    let mut wrong_round = h.certificate(0, hash, &[0, 1, 2]);
    wrong_round.round = 1;
    bad(&h.deliver(2, commit(wrong_round)), "does not verify");
    assert_eq!(h.consensus.status().decided, None);
    // The valid certificate decides and asks to sign with it.
    let certificate = h.certificate(3, hash, &[1, 2, 3]);
    let effects = h.deliver(2, commit(certificate.clone()));
    assert!(rejections(&effects).is_empty(), "{effects:?}");
    assert_eq!(sign_requests(&effects), vec![(1, hash, Some(certificate))]);
}

#[test]
fn block_signatures_that_do_not_verify() {
    let mut h = Harness::new();
    let block = h.block(TIME);
    let hash = block.block_hash();
    h.deliver(
        1,
        ConsensusMessage::Proposal(h.proposal(0, block.clone(), 1)),
    );
    // Member 3's key signing, claimed by member 2.
    let signature = BlockSignature {
        height: 1,
        block_hash: hash,
        member: 2,
        signature: h.fixture.sign(3, &block.header),
    };
    let effects = h.deliver(2, ConsensusMessage::BlockSignature(signature));
    let rejected = rejections(&effects);
    assert_eq!(rejected.len(), 1);
    assert!(
        matches!(
            &rejected[0],
            (2, Rejection::BadBlockSignature { member: 2, .. })
        ),
        "{rejected:?}"
    );
    // A buffered signature (block not held yet) is checked when the block arrives.
    let mut h = Harness::new();
    let garbage = BlockSignature {
        height: 1,
        block_hash: hash,
        member: 3,
        signature: vec![0x30, 0x02, 0x01],
    };
    let effects = h.deliver(3, ConsensusMessage::BlockSignature(garbage));
    assert!(rejections(&effects).is_empty(), "buffered");
    let effects = h.deliver(1, ConsensusMessage::Proposal(h.proposal(0, block, 1)));
    assert!(
        matches!(
            rejections(&effects).as_slice(),
            [(3, Rejection::BadBlockSignature { member: 3, .. })]
        ),
        "{effects:?}"
    );
    assert_eq!(h.consensus.status().best_signature_count, 0);
}

#[test]
fn the_signature_buffer_is_bounded_per_member() {
    let mut h = Harness::new();
    for i in 0..=MAX_PENDING_SIGNATURES_PER_MEMBER {
        let signature = BlockSignature {
            height: 1,
            block_hash: elements::BlockHash::from_byte_array([u8::try_from(i).expect("small"); 32]),
            member: 2,
            signature: vec![0x30, 1],
        };
        let effects = h.deliver(2, ConsensusMessage::BlockSignature(signature));
        if i < MAX_PENDING_SIGNATURES_PER_MEMBER {
            assert!(rejections(&effects).is_empty(), "{i}");
        } else {
            assert_only_rejection(&effects, 2, Rejection::SignatureBufferFull { member: 2 });
        }
    }
    // Another member's buffer is separate.
    let signature = BlockSignature {
        height: 1,
        block_hash: elements::BlockHash::from_byte_array([0xee; 32]),
        member: 3,
        signature: vec![0x30, 1],
    };
    assert!(rejections(&h.deliver(3, ConsensusMessage::BlockSignature(signature))).is_empty());
}

#[test]
fn the_next_height_buffer_is_bounded_per_member() {
    let mut h = Harness::new();
    for round in 0..=u32::try_from(MAX_FUTURE_MESSAGES_PER_MEMBER).expect("small") {
        let vote = h.vote(VoteKind::Prevote, 2, round, None, 2);
        let effects = h.deliver(2, ConsensusMessage::Vote(vote));
        if round < MAX_FUTURE_MESSAGES_PER_MEMBER as u32 {
            assert!(rejections(&effects).is_empty(), "round {round}");
        } else {
            assert_eq!(
                rejections(&effects),
                vec![(2, Rejection::FutureBufferFull { from: 2 })]
            );
        }
    }
}

#[test]
fn final_blocks_without_m_signatures_are_rejected() {
    let mut h = Harness::new();
    let block = h.block(TIME);
    for signers in [&[][..], &[1, 2][..]] {
        let candidate = if signers.is_empty() {
            block.clone()
        } else {
            // Two valid signatures attached by hand are not a valid witness for m = 3.
            let mut partial = h.signed(&block, &[0, 1, 2]);
            if let elements::BlockExtData::Dynafed {
                signblock_witness, ..
            } = &mut partial.header.ext
            {
                signblock_witness.remove(1);
            }
            partial
        };
        let effects = h.deliver(2, ConsensusMessage::FinalBlock(candidate));
        let rejected = rejections(&effects);
        assert!(
            matches!(
                rejected.as_slice(),
                [(2, Rejection::InvalidFinalBlock { height: 1, .. })]
            ),
            "{signers:?}: {rejected:?}"
        );
        assert!(stored(&effects).is_empty());
    }
    // The properly signed block is final.
    let effects = h.deliver(
        2,
        ConsensusMessage::FinalBlock(h.signed(&block, &[0, 1, 3])),
    );
    assert_eq!(stored(&effects).len(), 1);
    assert_eq!(h.consensus.tip().height, 1);
}

#[test]
fn fetched_batches_with_gaps_stop_at_the_gap() {
    let mut h = Harness::new();
    let block1 = h.signed(&h.block(TIME), &[0, 1, 2]);
    let block2 = h.signed(
        &chain::build_block(h.fixture.params(), &block1.header, TIME + 1),
        &[0, 1, 2],
    );
    let block3 = h.signed(
        &chain::build_block(h.fixture.params(), &block2.header, TIME + 2),
        &[1, 2, 3],
    );
    let effects = h.consensus.handle(Input::BlocksFetched {
        from: 3,
        blocks: vec![block2.clone()],
    });
    assert_only_rejection(
        &effects,
        3,
        Rejection::FetchedBlockGap {
            expected: 1,
            got: 2,
        },
    );
    let effects = h.consensus.handle(Input::BlocksFetched {
        from: 3,
        blocks: vec![block1.clone(), block3.clone(), block2],
    });
    assert_eq!(stored(&effects), vec![block1]);
    assert_eq!(
        rejections(&effects),
        vec![(
            3,
            Rejection::FetchedBlockGap {
                expected: 2,
                got: 3
            }
        )]
    );
    assert_eq!(h.consensus.tip().height, 1);
    // An unsigned block in a batch is invalid.
    let unsigned = chain::build_block(h.fixture.params(), h.consensus.tip(), TIME + 1);
    let effects = h.consensus.handle(Input::BlocksFetched {
        from: 2,
        blocks: vec![unsigned],
    });
    assert!(matches!(
        rejections(&effects).as_slice(),
        [(2, Rejection::InvalidFinalBlock { height: 2, .. })]
    ));
}

#[test]
fn a_different_block_at_our_tip_height_conflicts() {
    let mut h = Harness::new();
    let ours = h.signed(&h.block(TIME), &[0, 1, 2]);
    let effects = h.deliver(1, ConsensusMessage::FinalBlock(ours.clone()));
    assert_eq!(stored(&effects).len(), 1);
    let theirs = h.signed(&h.block(TIME - 1), &[1, 2, 3]);
    let expected = Rejection::ConflictingBlock {
        height: 1,
        ours: ours.block_hash(),
        theirs: theirs.block_hash(),
    };
    let effects = h.deliver(3, ConsensusMessage::FinalBlock(theirs.clone()));
    assert_only_rejection(&effects, 3, expected.clone());
    let effects = h.consensus.handle(Input::BlocksFetched {
        from: 3,
        blocks: vec![theirs.clone()],
    });
    assert_only_rejection(&effects, 3, expected);
    // Our own block again (another witness) is not a conflict.
    let effects = h.deliver(
        2,
        ConsensusMessage::FinalBlock(h.signed(&h.block(TIME), &[1, 2, 3])),
    );
    assert!(rejections(&effects).is_empty());
    // A conflicting Status is reported (not as a rejection).
    let effects = h.deliver(
        3,
        ConsensusMessage::Status(Status {
            height: 1,
            tip_hash: theirs.block_hash(),
        }),
    );
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Report(ConsensusEvent::ConflictingTip {
            from: 3,
            height: 1,
            ..
        })
    )));
}

#[test]
fn signer_results_without_a_request_are_unexpected() {
    let mut h = Harness::new();
    let block = h.block(TIME);
    let hash = block.block_hash();
    let effects = h.consensus.handle(Input::BlockSigned {
        height: 1,
        block_hash: hash,
        signature: h.fixture.sign(ME, &block.header),
    });
    assert_only_rejection(
        &effects,
        ME,
        Rejection::UnexpectedSignerResult {
            height: 1,
            block_hash: hash,
        },
    );
    // For a future height too.
    let effects = h.consensus.handle(Input::BlockSigned {
        height: 5,
        block_hash: hash,
        signature: vec![1],
    });
    assert_only_rejection(
        &effects,
        ME,
        Rejection::UnexpectedSignerResult {
            height: 5,
            block_hash: hash,
        },
    );
    // After a real request, a result for another hash is unexpected; the requested one is accepted.
    let effects = h.deliver(
        2,
        ConsensusMessage::Commit(Commit {
            certificate: h.certificate(0, hash, &[1, 2, 3]),
            block: block.clone(),
        }),
    );
    assert_eq!(sign_requests(&effects).len(), 1);
    let other = h.block(TIME - 1);
    let effects = h.consensus.handle(Input::BlockSigned {
        height: 1,
        block_hash: other.block_hash(),
        signature: h.fixture.sign(ME, &other.header),
    });
    assert_only_rejection(
        &effects,
        ME,
        Rejection::UnexpectedSignerResult {
            height: 1,
            block_hash: other.block_hash(),
        },
    );
    let effects = h.consensus.handle(Input::BlockSigned {
        height: 1,
        block_hash: hash,
        signature: h.fixture.sign(ME, &block.header),
    });
    assert!(rejections(&effects).is_empty());
    assert!(effects.iter().any(
        |e| matches!(e, Effect::Broadcast(ConsensusMessage::BlockSignature(s)) if s.block_hash == hash && s.member == 0)
    ));
}

#[test]
fn our_signer_returning_a_bad_signature_is_rejected() {
    let mut h = Harness::new();
    let block = h.block(TIME);
    let hash = block.block_hash();
    h.deliver(
        2,
        ConsensusMessage::Commit(Commit {
            certificate: h.certificate(0, hash, &[1, 2, 3]),
            block: block.clone(),
        }),
    );
    let effects = h.consensus.handle(Input::BlockSigned {
        height: 1,
        block_hash: hash,
        signature: h.fixture.sign(1, &block.header),
    });
    assert!(matches!(
        rejections(&effects).as_slice(),
        [(ME, Rejection::BadBlockSignature { member: 0, .. })]
    ));
    assert!(!effects
        .iter()
        .any(|e| matches!(e, Effect::Broadcast(ConsensusMessage::BlockSignature(_)))));
}

#[test]
fn unknown_senders_are_rejected() {
    let mut h = Harness::new();
    let effects = h.deliver(
        N,
        ConsensusMessage::Status(Status {
            height: 9,
            tip_hash: h.genesis_hash(),
        }),
    );
    assert_only_rejection(&effects, N, Rejection::UnknownSender { from: N });
    assert!(!effects
        .iter()
        .any(|e| matches!(e, Effect::FetchBlocks { .. })));
    let effects = h.consensus.handle(Input::BlocksFetched {
        from: 77,
        blocks: vec![h.signed(&h.block(TIME), &[0, 1, 2])],
    });
    assert_only_rejection(&effects, 77, Rejection::UnknownSender { from: 77 });
    assert_eq!(h.consensus.tip().height, 0);
}

#[test]
fn proposals_before_the_first_clock_tick_are_rejected() {
    let fixture = Fixture::new(N, M);
    let mut consensus = fixture.consensus(ME, fixture.genesis().header, None, None);
    let block = chain::build_block(fixture.params(), &fixture.genesis().header, TIME);
    let proposal = Proposal::sign(
        &fixture.params().genesis_hash(),
        1,
        0,
        None,
        block,
        START_MS,
        &p2p_secret(1),
    );
    let effects = consensus.handle(Input::Message {
        from: 1,
        message: ConsensusMessage::Proposal(proposal),
    });
    assert_only_rejection(&effects, 1, Rejection::NoClock);
    assert!(!Rejection::NoClock.is_misbehaviour());
}

#[test]
fn a_journal_hash_without_a_record_is_the_only_block_signed_at_its_height() {
    let fixture = Fixture::new(N, M);
    let genesis = fixture.genesis().header;
    let x = chain::build_block(fixture.params(), &genesis, TIME);
    let y = chain::build_block(fixture.params(), &genesis, TIME - 1);
    let mut h = Harness::with_journal(Some((1, x.block_hash())));
    assert_eq!(h.consensus.status().decided, Some(x.block_hash()));
    // A valid certificate for y, m precommits for y, and y's proposal: never a request for y.
    let mut effects = h.deliver(
        2,
        ConsensusMessage::Commit(Commit {
            certificate: h.certificate(0, y.block_hash(), &[1, 2, 3]),
            block: y.clone(),
        }),
    );
    effects.extend(h.deliver(1, ConsensusMessage::Proposal(h.proposal(0, y.clone(), 1))));
    for member in 1..N {
        let vote = h.vote(VoteKind::Precommit, 1, 0, Some(y.block_hash()), member);
        effects.extend(h.deliver(member, ConsensusMessage::Vote(vote)));
    }
    assert!(sign_requests(&effects).is_empty(), "{effects:?}");
    assert!(
        votes(&effects).is_empty(),
        "a member acting as decided no longer votes"
    );
    assert_eq!(h.consensus.status().decided, Some(x.block_hash()));
    // x arrives in a later round's proposal: re-signed without a certificate (the journal approved it).
    let effects = h.deliver(2, ConsensusMessage::Proposal(h.proposal(1, x.clone(), 2)));
    assert_eq!(sign_requests(&effects), vec![(1, x.block_hash(), None)]);
    assert_eq!(h.consensus.last_signed(), Some((1, x.block_hash())));
}

#[test]
fn a_signer_journal_above_the_height_refuses_to_sign() {
    let other = elements::BlockHash::from_byte_array([9; 32]);
    let mut h = Harness::with_journal(Some((2, other)));
    let block = h.block(TIME);
    let effects = h.deliver(
        2,
        ConsensusMessage::Commit(Commit {
            certificate: h.certificate(0, block.block_hash(), &[1, 2, 3]),
            block,
        }),
    );
    assert!(sign_requests(&effects).is_empty());
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Report(ConsensusEvent::SigningRefused { height: 1, .. })
    )));
}

#[test]
fn a_restarted_locked_member_re_proposes_its_lock_with_the_persisted_polka() {
    let mut h = Harness::new();
    let block = h.block(TIME);
    let hash = block.block_hash();
    h.deliver(
        1,
        ConsensusMessage::Proposal(h.proposal(0, block.clone(), 1)),
    );
    let mut effects = Vec::new();
    for member in [1, 2] {
        let vote = h.vote(VoteKind::Prevote, 1, 0, Some(hash), member);
        effects.extend(h.deliver(member, ConsensusMessage::Vote(vote)));
    }
    let precommit = votes(&effects);
    assert_eq!(precommit.len(), 1, "locked and precommitted: {effects:?}");
    assert_eq!(
        (precommit[0].kind, precommit[0].block_hash),
        (VoteKind::Precommit, Some(hash))
    );
    let record = h.consensus.record();
    assert_eq!(record.locked, Some((0, hash)));
    assert_eq!(record.locked_polka.len(), 3);
    assert_eq!(
        record
            .locked_block
            .as_deref()
            .map(elements::encode::deserialize::<elements::Block>)
            .and_then(Result::ok),
        Some(block.clone())
    );

    // Crash; restart from the record much later.
    let fixture = Fixture::new(N, M);
    let mut restarted = fixture.consensus(ME, fixture.genesis().header, Some(record), None);
    let effects = restarted.handle(Input::Tick {
        now_ms: START_MS + 5_000,
    });
    assert!(
        votes(&effects).is_empty(),
        "no new vote at restart: {effects:?}"
    );
    assert_eq!(restarted.status().locked, Some((0, hash)));
    assert_eq!(restarted.status().round, 0);
    // Two members in round 3 (our turn to propose: (1 + 3) mod 4 = 0) make us skip there.
    assert_eq!(proposer_of(1, 3, N), ME);
    let mut effects = Vec::new();
    for member in [2, 3] {
        let vote = h.vote(VoteKind::Prevote, 1, 3, None, member);
        effects.extend(restarted.handle(Input::Message {
            from: member,
            message: ConsensusMessage::Vote(vote),
        }));
    }
    let proposal = effects
        .iter()
        .find_map(|e| match e {
            Effect::Broadcast(ConsensusMessage::Proposal(p)) => Some(p.clone()),
            _ => None,
        })
        .expect("proposes in round 3");
    assert_eq!((proposal.round, proposal.valid_round), (3, Some(0)));
    assert_eq!(
        proposal.block.block_hash(),
        hash,
        "re-proposes its locked block"
    );
    assert!(proposal.verify(&h.genesis_hash(), &p2p_secret(ME).verifying_key()));
    assert!(proposal.polka.len() >= M);
    for (member, signature) in &proposal.polka {
        let vote = Vote {
            kind: VoteKind::Prevote,
            height: 1,
            round: 0,
            block_hash: Some(hash),
            member: *member,
            signature: signature.to_bytes(),
        };
        assert!(vote.verify(
            &h.genesis_hash(),
            &p2p_secret(usize::from(*member)).verifying_key()
        ));
    }
    // And prevotes it (its own lock).
    let cast = votes(&effects);
    assert_eq!(cast.len(), 1);
    assert_eq!(
        (cast[0].kind, cast[0].round, cast[0].block_hash),
        (VoteKind::Prevote, 3, Some(hash))
    );
    // Member 2, restarted without memory of round 0 and moved to round 3, prevotes the re-proposal on the
    // strength of the carried polka alone.
    let mut member2 = fixture.consensus(2, fixture.genesis().header, None, None);
    member2.handle(Input::Tick {
        now_ms: START_MS + 5_000,
    });
    for member in [1, 3] {
        let vote = h.vote(VoteKind::Prevote, 1, 3, None, member);
        member2.handle(Input::Message {
            from: member,
            message: ConsensusMessage::Vote(vote),
        });
    }
    assert_eq!(member2.status().round, 3);
    let effects = member2.handle(Input::Message {
        from: ME,
        message: ConsensusMessage::Proposal(proposal),
    });
    assert!(rejections(&effects).is_empty(), "{effects:?}");
    let cast = votes(&effects);
    assert_eq!(cast.len(), 1, "{effects:?}");
    assert_eq!(
        (cast[0].kind, cast[0].round, cast[0].block_hash),
        (VoteKind::Prevote, 3, Some(hash))
    );
}

#[test]
fn a_re_proposal_with_a_forged_polka_vote_is_rejected() {
    let mut h = Harness::new();
    let block = h.block(TIME);
    let hash = block.block_hash();
    // Round 1's proposer is member 2; we are moved to round 1 by m nil precommits of round 0.
    for member in 1..N {
        let vote = h.vote(VoteKind::Precommit, 1, 0, None, member);
        h.deliver(member, ConsensusMessage::Vote(vote));
    }
    assert_eq!(h.consensus.status().round, 1);
    let mut proposal = Proposal::sign(
        &h.genesis_hash(),
        1,
        1,
        Some(0),
        block,
        START_MS,
        &p2p_secret(2),
    );
    proposal.polka = [1usize, 2, 3]
        .iter()
        .map(|member| {
            let vote = h.vote(VoteKind::Prevote, 1, 0, Some(hash), *member);
            (
                vote.member,
                CertificateSignature::from_bytes(&vote.signature),
            )
        })
        .collect();
    proposal.polka[1].1 .1[0] ^= 1;
    let effects = h.deliver(2, ConsensusMessage::Proposal(proposal));
    assert_only_rejection(
        &effects,
        2,
        Rejection::BadVoteSignature {
            kind: VoteKind::Prevote,
            member: 2,
        },
    );
}

#[test]
fn a_proposal_whose_body_was_changed_does_not_condemn_its_hash() {
    // A Byzantine proposer (or anyone holding the block) can change witness bytes without changing the hash.
    // The mutated body is refused, but the same hash with its real body is still prevoted.
    let mut h = Harness::new();
    let block = h.block(TIME);
    let hash = block.block_hash();
    let mut mutated = block.clone();
    mutated.txdata[0].input[0].witness.script_witness = vec![vec![1u8]].into();
    assert_eq!(mutated.block_hash(), hash, "the mutation keeps the hash");
    let effects = h.deliver(1, ConsensusMessage::Proposal(h.proposal(0, mutated, 1)));
    assert!(
        rejections(&effects)
            .iter()
            .any(|(from, reason)| *from == 1 && matches!(reason, Rejection::InvalidProposal(_))),
        "{effects:?}"
    );
    assert!(
        votes(&effects).is_empty(),
        "no vote on a mutated body: {effects:?}"
    );
    let effects = h.deliver(1, ConsensusMessage::Proposal(h.proposal(0, block, 1)));
    assert!(rejections(&effects).is_empty(), "{effects:?}");
    let cast = votes(&effects);
    assert_eq!(cast.len(), 1, "{effects:?}");
    assert_eq!(
        (cast[0].kind, cast[0].block_hash),
        (VoteKind::Prevote, Some(hash))
    );
}
