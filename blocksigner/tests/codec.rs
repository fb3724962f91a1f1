//! Wire codec: round trips of every message kind, and hostile bytes (random, truncated, mutated) that must be
//! rejected without panicking, for messages, commit certificates and consensus records.

mod common;

use blocksigner::{
    BlockSignature, CastVote, CertificateError, CertificateSignature, Commit, CommitCertificate,
    ConsensusMessage, ConsensusRecord, DecodeError, Proposal, Status, Vote, VoteKind,
    CERTIFICATE_VERSION, MAX_CERTIFICATE_VOTES, MAX_MESSAGE_BYTES, RECORD_VERSION, WIRE_VERSION,
};
use common::{p2p_secret, Fixture};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A certificate of `m` real precommits for `hash` at (1, round).
fn certificate(fixture: &Fixture, round: u32, hash: elements::BlockHash) -> CommitCertificate {
    let genesis_hash = fixture.params().genesis_hash();
    let precommits = (0..fixture.federation.threshold())
        .map(|member| {
            let vote = Vote::sign(
                &genesis_hash,
                VoteKind::Precommit,
                1,
                round,
                Some(hash),
                u16::try_from(member).expect("small"),
                &p2p_secret(member),
            );
            (
                vote.member,
                CertificateSignature::from_bytes(&vote.signature),
            )
        })
        .collect();
    CommitCertificate {
        height: 1,
        round,
        block_hash: hash,
        precommits,
    }
}

/// One sample of every message kind (and of every optional field both ways).
fn sample_messages() -> Vec<ConsensusMessage> {
    let fixture = Fixture::new(4, 3);
    let genesis = fixture.genesis();
    let block = chain::build_block(fixture.params(), &genesis.header, common::GENESIS_TIME + 60);
    let hash = block.block_hash();
    let mut final_block = block.clone();
    let signatures: Vec<(usize, Vec<u8>)> = (0..3)
        .map(|m| (m, fixture.sign(m, &block.header)))
        .collect();
    chain::attach_signatures(fixture.params(), &mut final_block.header, &signatures)
        .expect("attach");
    let genesis_hash = fixture.params().genesis_hash();
    let fresh = Proposal::sign(
        &genesis_hash,
        1,
        0,
        None,
        block.clone(),
        1_700_000_070_123,
        &p2p_secret(1),
    );
    let mut reproposal = Proposal::sign(
        &genesis_hash,
        1,
        u32::MAX,
        Some(7),
        block.clone(),
        u64::MAX,
        &p2p_secret(0),
    );
    reproposal.polka = certificate(&fixture, 7, hash).precommits;
    vec![
        ConsensusMessage::Proposal(fresh),
        ConsensusMessage::Proposal(reproposal),
        ConsensusMessage::Vote(Vote::sign(
            &genesis_hash,
            VoteKind::Prevote,
            1,
            3,
            Some(hash),
            2,
            &p2p_secret(2),
        )),
        ConsensusMessage::Vote(Vote::sign(
            &genesis_hash,
            VoteKind::Precommit,
            u32::MAX,
            u32::MAX,
            None,
            u16::MAX,
            &p2p_secret(3),
        )),
        ConsensusMessage::BlockSignature(BlockSignature {
            height: 1,
            block_hash: hash,
            member: 1,
            signature: signatures[1].1.clone(),
        }),
        ConsensusMessage::Commit(Commit {
            certificate: certificate(&fixture, 2, hash),
            block,
        }),
        ConsensusMessage::FinalBlock(final_block),
        ConsensusMessage::FinalBlock(genesis),
        ConsensusMessage::Status(Status {
            height: u32::MAX,
            tip_hash: hash,
        }),
        ConsensusMessage::VoteBundle(vec![
            Vote::sign(
                &genesis_hash,
                VoteKind::Prevote,
                1,
                3,
                Some(hash),
                2,
                &p2p_secret(2),
            ),
            Vote::sign(
                &genesis_hash,
                VoteKind::Precommit,
                1,
                3,
                None,
                0,
                &p2p_secret(0),
            ),
        ]),
        ConsensusMessage::VoteBundle(Vec::new()),
    ]
}

#[test]
fn every_message_kind_round_trips() {
    let samples = sample_messages();
    let kinds: std::collections::BTreeSet<&str> = samples.iter().map(|m| m.kind()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        vec![
            "block_signature",
            "commit",
            "final_block",
            "precommit",
            "prevote",
            "proposal",
            "status",
            "vote_bundle"
        ],
        "the samples cover every kind"
    );
    for message in samples {
        let bytes = message.encode();
        assert_eq!(bytes[0], WIRE_VERSION);
        assert!(bytes.len() <= MAX_MESSAGE_BYTES);
        let decoded =
            ConsensusMessage::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", message.kind()));
        assert_eq!(decoded, message);
        assert_eq!(decoded.encode(), bytes, "encoding is deterministic");
    }
}

#[test]
fn signatures_survive_the_round_trip() {
    let fixture = Fixture::new(4, 3);
    let genesis_hash = fixture.params().genesis_hash();
    for message in sample_messages() {
        let decoded = ConsensusMessage::decode(&message.encode()).expect("decodes");
        match decoded {
            ConsensusMessage::Proposal(proposal) => {
                let proposer = if proposal.valid_round.is_some() { 0 } else { 1 };
                assert!(proposal.verify(&genesis_hash, &p2p_secret(proposer).verifying_key()));
            }
            ConsensusMessage::Vote(vote) if vote.member < 4 => {
                assert!(vote.verify(
                    &genesis_hash,
                    &p2p_secret(usize::from(vote.member)).verifying_key()
                ));
            }
            ConsensusMessage::Commit(commit) => {
                commit
                    .certificate
                    .verify_for(&fixture.federation, 1, &commit.block.block_hash())
                    .expect("relayed certificate verifies");
            }
            _ => {}
        }
    }
}

#[test]
fn blocks_travel_as_consensus_encoding() {
    let messages = sample_messages();
    let ConsensusMessage::FinalBlock(block) = &messages[6] else {
        panic!("final block sample")
    };
    let consensus_bytes = elements::encode::serialize(block);
    let wire = messages[6].encode();
    assert!(
        wire.ends_with(&consensus_bytes),
        "the block's consensus bytes are embedded verbatim"
    );
}

#[test]
fn malformed_envelopes_are_rejected() {
    let samples = sample_messages();
    let valid = samples[8].encode();

    assert_eq!(ConsensusMessage::decode(&[]), Err(DecodeError::Empty));

    assert_eq!(WIRE_VERSION, 3);
    for version in [0u8, 1, 2, 4, 255] {
        let mut other_version = valid.clone();
        other_version[0] = version;
        assert_eq!(
            ConsensusMessage::decode(&other_version),
            Err(DecodeError::UnsupportedVersion(version))
        );
    }

    let mut trailing = valid.clone();
    trailing.push(0);
    assert_eq!(
        ConsensusMessage::decode(&trailing),
        Err(DecodeError::TrailingBytes(1))
    );

    let too_large = vec![WIRE_VERSION; MAX_MESSAGE_BYTES + 1];
    assert_eq!(
        ConsensusMessage::decode(&too_large),
        Err(DecodeError::TooLarge {
            len: MAX_MESSAGE_BYTES + 1,
            max: MAX_MESSAGE_BYTES
        })
    );

    // Unknown variant tag (6 variants: 0..=5).
    for tag in [6u8, 9, 0x7f] {
        assert!(matches!(
            ConsensusMessage::decode(&[WIRE_VERSION, tag]),
            Err(DecodeError::Envelope(_))
        ));
    }

    // Unknown vote kinds: the byte after the Vote variant tag (1).
    let vote = samples[2].encode();
    assert_eq!(vote[1], 1, "vote variant tag");
    assert_eq!(vote[2], VoteKind::Prevote.tag());
    for kind in [0u8, 3, 0x7f] {
        let mut bad = vote.clone();
        bad[2] = kind;
        assert_eq!(
            ConsensusMessage::decode(&bad),
            Err(DecodeError::VoteKind(kind))
        );
    }

    // A FinalBlock (variant 4) whose block bytes are not a block.
    assert!(matches!(
        ConsensusMessage::decode(&[WIRE_VERSION, 4, 3, 0xde, 0xad, 0xbe]),
        Err(DecodeError::Block {
            kind: "final_block",
            ..
        })
    ));

    // A block followed by extra bytes inside the length-prefixed block field.
    let ConsensusMessage::FinalBlock(block) = &samples[7] else {
        panic!("genesis sample")
    };
    let mut block_bytes = elements::encode::serialize(block);
    block_bytes.push(0);
    let mut wire = vec![WIRE_VERSION, 4];
    assert!(block_bytes.len() < 0x80 * 0x80);
    wire.push(u8::try_from(block_bytes.len() & 0x7f).expect("7 bits") | 0x80);
    wire.push(u8::try_from(block_bytes.len() >> 7).expect("small"));
    wire.extend_from_slice(&block_bytes);
    assert!(matches!(
        ConsensusMessage::decode(&wire),
        Err(DecodeError::Block { .. })
    ));

    // Block signatures of impossible lengths.
    for len in [0usize, 74, 1000] {
        let message = ConsensusMessage::BlockSignature(BlockSignature {
            height: 1,
            block_hash: elements::BlockHash::from_byte_array([1; 32]),
            member: 0,
            signature: vec![0x30; len],
        });
        assert_eq!(
            ConsensusMessage::decode(&message.encode()),
            Err(DecodeError::SignatureLength { len })
        );
    }
}

#[test]
fn oversized_certificates_and_polkas_are_rejected() {
    let samples = sample_messages();
    let entry = (0u16, CertificateSignature([7; 32], [9; 32]));
    let ConsensusMessage::Commit(mut commit) = samples[5].clone() else {
        panic!("commit sample")
    };
    commit.certificate.precommits = vec![entry; MAX_CERTIFICATE_VOTES + 1];
    assert!(matches!(
        ConsensusMessage::decode(&ConsensusMessage::Commit(commit.clone()).encode()),
        Err(DecodeError::Envelope(reason)) if reason.contains("257 precommits")
    ));
    commit.certificate.precommits = vec![entry; MAX_CERTIFICATE_VOTES];
    assert!(
        ConsensusMessage::decode(&ConsensusMessage::Commit(commit).encode()).is_ok(),
        "exactly the limit decodes (verification rejects it later)"
    );

    let ConsensusMessage::Proposal(mut proposal) = samples[1].clone() else {
        panic!("re-proposal sample")
    };
    proposal.polka = vec![entry; MAX_CERTIFICATE_VOTES + 1];
    assert!(matches!(
        ConsensusMessage::decode(&ConsensusMessage::Proposal(proposal).encode()),
        Err(DecodeError::Envelope(reason)) if reason.contains("257 polka votes")
    ));

    let fixture = Fixture::new(4, 3);
    let mut big = certificate(&fixture, 0, elements::BlockHash::from_byte_array([3; 32]));
    big.precommits = vec![entry; MAX_CERTIFICATE_VOTES + 1];
    assert!(matches!(
        CommitCertificate::decode(&big.encode()),
        Err(CertificateError::Decode(reason)) if reason.contains("too many")
    ));
    assert!(
        big.verify(&fixture.federation).is_err(),
        "verification refuses an oversized certificate too"
    );
}

#[test]
fn every_truncation_of_a_valid_message_is_rejected() {
    for message in sample_messages() {
        let bytes = message.encode();
        for cut in 0..bytes.len() {
            assert!(
                ConsensusMessage::decode(&bytes[..cut]).is_err(),
                "{} cut at {cut}",
                message.kind()
            );
        }
    }
}

/// Decodes hostile bytes; whatever is accepted must survive a re-encode round trip.
fn decode_hostile(bytes: &[u8]) -> bool {
    match ConsensusMessage::decode(bytes) {
        Ok(message) => {
            let again = ConsensusMessage::decode(&message.encode())
                .expect("re-encoding of an accepted message");
            assert_eq!(again, message);
            true
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            false
        }
    }
}

/// Applies 1 to 3 random mutations (bit flip, overwrite, truncation, insertion, splice from `pool`).
fn mutate(rng: &mut StdRng, mut bytes: Vec<u8>, pool: &[Vec<u8>]) -> Vec<u8> {
    let mutations = rng.gen_range(1..4);
    for _ in 0..mutations {
        if bytes.is_empty() {
            break;
        }
        let at = rng.gen_range(0..bytes.len());
        match rng.gen_range(0..5) {
            0 => bytes[at] ^= 1 << rng.gen_range(0..8),
            1 => bytes[at] = rng.gen(),
            2 => bytes.truncate(at),
            3 => bytes.insert(at, rng.gen()),
            _ => {
                let other = &pool[rng.gen_range(0..pool.len())];
                let from = rng.gen_range(0..other.len());
                bytes.splice(at..at, other[from..].iter().copied());
            }
        }
    }
    bytes
}

#[test]
fn hostile_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5eed_b10c);
    let valid: Vec<Vec<u8>> = sample_messages()
        .iter()
        .map(ConsensusMessage::encode)
        .collect();
    let mut accepted = 0;

    // Random bytes, mostly with the right version byte and a plausible tag.
    for _ in 0..3000 {
        let len = rng.gen_range(0..400);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if let Some(first) = bytes.first_mut() {
            if rng.gen_bool(0.9) {
                *first = WIRE_VERSION;
            }
        }
        if bytes.len() > 1 && rng.gen_bool(0.8) {
            bytes[1] = rng.gen_range(0..7);
        }
        if decode_hostile(&bytes) {
            accepted += 1;
        }
    }

    for round in 0..6000 {
        let bytes = mutate(&mut rng, valid[round % valid.len()].clone(), &valid);
        if decode_hostile(&bytes) {
            accepted += 1;
        }
    }
    // Flipping bits inside hashes, heights or signatures yields other valid messages: the decoder is exercised
    // on both sides.
    assert!(accepted > 0, "some mutations are still well-formed");
    assert!(accepted < 9000, "most hostile inputs are rejected");
}

fn sample_record() -> ConsensusRecord {
    let fixture = Fixture::new(4, 3);
    let block = chain::build_block(
        fixture.params(),
        &fixture.genesis().header,
        common::GENESIS_TIME + 60,
    );
    let hash = block.block_hash();
    let cast = |round| CastVote {
        round,
        block_hash: Some(hash),
        signature: CertificateSignature([round as u8; 32], [1; 32]),
    };
    ConsensusRecord {
        height: 1,
        prevote: Some(cast(2)),
        precommit: Some(CastVote {
            block_hash: None,
            ..cast(1)
        }),
        locked: Some((2, hash)),
        locked_polka: certificate(&fixture, 2, hash).precommits,
        locked_block: Some(elements::encode::serialize(&block)),
        decided: Some(certificate(&fixture, 2, hash)),
    }
}

#[test]
fn certificates_and_records_round_trip() {
    let fixture = Fixture::new(4, 3);
    let cert = certificate(&fixture, 5, elements::BlockHash::from_byte_array([4; 32]));
    let bytes = cert.encode();
    assert_eq!(bytes[0], CERTIFICATE_VERSION);
    assert_eq!(CommitCertificate::decode(&bytes), Ok(cert));

    for record in [sample_record(), ConsensusRecord::empty(u32::MAX)] {
        let bytes = record.encode();
        assert_eq!(bytes[0], RECORD_VERSION);
        assert_eq!(ConsensusRecord::decode(&bytes), Ok(record));
    }
}

#[test]
fn hostile_certificate_and_record_bytes_never_panic() {
    let fixture = Fixture::new(4, 3);
    let cert = certificate(&fixture, 5, elements::BlockHash::from_byte_array([4; 32])).encode();
    let record = sample_record().encode();
    let pool = vec![cert.clone(), record.clone()];

    assert!(CommitCertificate::decode(&[]).is_err());
    assert!(ConsensusRecord::decode(&[]).is_err());
    for version in [0u8, 2, 255] {
        let mut other = cert.clone();
        other[0] = version;
        assert!(matches!(
            CommitCertificate::decode(&other),
            Err(CertificateError::Decode(reason)) if reason.contains("version")
        ));
        let mut other = record.clone();
        other[0] = version;
        assert!(ConsensusRecord::decode(&other).is_err());
    }
    let mut trailing = cert.clone();
    trailing.push(0);
    assert!(CommitCertificate::decode(&trailing).is_err());
    let mut trailing = record.clone();
    trailing.push(0);
    assert!(ConsensusRecord::decode(&trailing).is_err());
    for cut in 0..cert.len() {
        assert!(
            CommitCertificate::decode(&cert[..cut]).is_err(),
            "cut {cut}"
        );
    }
    for cut in 0..record.len() {
        assert!(
            ConsensusRecord::decode(&record[..cut]).is_err(),
            "cut {cut}"
        );
    }

    let mut rng = StdRng::seed_from_u64(0xce27);
    for i in 0..4000 {
        let bytes = if i % 2 == 0 {
            let len = rng.gen_range(0..300);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if let Some(first) = bytes.first_mut() {
                *first = 1;
            }
            bytes
        } else {
            mutate(&mut rng, pool[i % 4 / 2].clone(), &pool)
        };
        if let Ok(decoded) = CommitCertificate::decode(&bytes) {
            assert!(decoded.precommits.len() <= MAX_CERTIFICATE_VOTES);
            assert_eq!(CommitCertificate::decode(&decoded.encode()), Ok(decoded));
        }
        if let Ok(decoded) = ConsensusRecord::decode(&bytes) {
            assert_eq!(ConsensusRecord::decode(&decoded.encode()), Ok(decoded));
        }
    }
}
