//! Wire codec: round trips of every message kind, and hostile bytes (random, truncated, mutated) that must be
//! rejected without panicking.

mod common;

use blocksigner::{
    BlockSignature, ConsensusMessage, DecodeError, Precommit, Proposal, Status, MAX_MESSAGE_BYTES,
    WIRE_VERSION,
};
use common::{p2p_secret, Fixture};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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
    vec![
        ConsensusMessage::Proposal(Proposal::sign(
            &genesis_hash,
            1,
            1_700_000_070,
            block,
            1_700_000_070_123,
            &p2p_secret(2),
        )),
        ConsensusMessage::Precommit(Precommit::sign(
            &genesis_hash,
            1,
            u64::MAX,
            hash,
            2,
            &p2p_secret(2),
        )),
        ConsensusMessage::BlockSignature(BlockSignature {
            height: 1,
            block_hash: hash,
            member: 1,
            signature: signatures[1].1.clone(),
        }),
        ConsensusMessage::FinalBlock(final_block),
        ConsensusMessage::FinalBlock(genesis),
        ConsensusMessage::Status(Status {
            height: u32::MAX,
            tip_hash: hash,
        }),
    ]
}

#[test]
fn every_message_kind_round_trips() {
    for message in sample_messages() {
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
fn blocks_travel_as_consensus_encoding() {
    let messages = sample_messages();
    let ConsensusMessage::FinalBlock(block) = &messages[3] else {
        panic!("final block sample")
    };
    let consensus_bytes = elements::encode::serialize(block);
    let wire = messages[3].encode();
    assert!(
        wire.ends_with(&consensus_bytes),
        "the block's consensus bytes are embedded verbatim"
    );
}

#[test]
fn malformed_envelopes_are_rejected() {
    let valid = sample_messages()[5].encode();

    assert_eq!(ConsensusMessage::decode(&[]), Err(DecodeError::Empty));

    // Version 1 (proposals without signatures) is no longer spoken.
    assert_eq!(WIRE_VERSION, 2);
    for version in [1u8, 3] {
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

    // Unknown variant tag.
    assert!(matches!(
        ConsensusMessage::decode(&[WIRE_VERSION, 9]),
        Err(DecodeError::Envelope(_))
    ));

    // A FinalBlock (variant 3) whose block bytes are not a block.
    assert!(matches!(
        ConsensusMessage::decode(&[WIRE_VERSION, 3, 3, 0xde, 0xad, 0xbe]),
        Err(DecodeError::Block {
            kind: "final_block",
            ..
        })
    ));

    // A block followed by extra bytes inside the length-prefixed block field.
    let messages = sample_messages();
    let ConsensusMessage::FinalBlock(block) = &messages[4] else {
        panic!("genesis sample")
    };
    let mut block_bytes = elements::encode::serialize(block);
    block_bytes.push(0);
    let mut wire = vec![WIRE_VERSION, 3];
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
            bytes[1] = rng.gen_range(0..6);
        }
        if decode_hostile(&bytes) {
            accepted += 1;
        }
    }

    // Mutations of valid messages: bit flips, byte overwrites, truncations, insertions, splices.
    for round in 0..6000 {
        let mut bytes = valid[round % valid.len()].clone();
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
                    let other = &valid[rng.gen_range(0..valid.len())];
                    let from = rng.gen_range(0..other.len());
                    bytes.splice(at..at, other[from..].iter().copied());
                }
            }
        }
        if decode_hostile(&bytes) {
            accepted += 1;
        }
    }
    // Flipping bits inside hashes, heights or signatures yields other valid messages: the decoder is exercised
    // on both sides.
    assert!(accepted > 0, "some mutations are still well-formed");
    assert!(accepted < 9000, "most hostile inputs are rejected");
}
