//! Wire encoding of [`ConsensusMessage`]: one version byte, then a postcard-encoded envelope; blocks inside
//! are carried as `elements` consensus-encoded bytes.
//!
//! The decoder bounds the input size, rejects unknown versions, trailing bytes, blocks that do not decode
//! (or have trailing bytes), and block signatures that are empty or longer than
//! [`MAX_BLOCK_SIGNATURE_BYTES`]. It never panics.

use serde::{Deserialize, Serialize};

use crate::certificate::{CertificateSignature, CommitCertificate, MAX_CERTIFICATE_VOTES};
use crate::message::{
    BlockSignature, Commit, ConsensusMessage, Proposal, Status, Vote, VoteKind,
    MAX_BLOCK_SIGNATURE_BYTES, MAX_MESSAGE_BYTES,
};

/// The version byte of the current encoding.
pub const WIRE_VERSION: u8 = 3;

/// Why bytes are not a valid consensus message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is empty.
    #[error("empty consensus message")]
    Empty,
    /// The input is longer than [`MAX_MESSAGE_BYTES`].
    #[error("consensus message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The version byte is not one we speak.
    #[error("unsupported consensus message version {0} (expected {WIRE_VERSION})")]
    UnsupportedVersion(u8),
    /// The postcard envelope is malformed.
    #[error("malformed consensus message envelope: {0}")]
    Envelope(String),
    /// Bytes follow the envelope.
    #[error("{0} trailing bytes after the consensus message")]
    TrailingBytes(usize),
    /// A block inside the message is not a valid consensus-encoded Elements block.
    #[error("block in {kind} message does not decode: {reason}")]
    Block {
        /// The message kind.
        kind: &'static str,
        /// The elements decoder's error.
        reason: String,
    },
    /// A vote kind byte that is neither prevote (1) nor precommit (2).
    #[error("unknown vote kind {0}")]
    VoteKind(u8),
    /// A block signature has an impossible length.
    #[error("block signature of {len} bytes (expected 1..={MAX_BLOCK_SIGNATURE_BYTES})")]
    SignatureLength {
        /// The length found.
        len: usize,
    },
}

/// A byte string that postcard encodes as length + raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl serde::de::Visitor<'_> for BytesVisitor {
            type Value = Bytes;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(bytes.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(bytes))
            }
        }
        deserializer.deserialize_bytes(BytesVisitor)
    }
}

/// The envelope as it is on the wire (variant order is part of the format: append only).
#[derive(Serialize, Deserialize)]
enum Wire {
    Proposal {
        height: u32,
        round: u32,
        valid_round: Option<u32>,
        polka: Vec<(u16, CertificateSignature)>,
        block: Bytes,
        proposed_at_ms: u64,
        signature_r: [u8; 32],
        signature_s: [u8; 32],
    },
    Vote(WireVote),
    BlockSignature {
        height: u32,
        block_hash: [u8; 32],
        member: u16,
        signature: Bytes,
    },
    Commit {
        certificate: CommitCertificate,
        block: Bytes,
    },
    FinalBlock {
        block: Bytes,
    },
    Status {
        height: u32,
        tip_hash: [u8; 32],
    },
    VoteBundle {
        votes: Vec<WireVote>,
    },
}

/// A vote on the wire (alone in `Wire::Vote`, or inside a bundle).
#[derive(Serialize, Deserialize)]
struct WireVote {
    kind: u8,
    height: u32,
    round: u32,
    block_hash: Option<[u8; 32]>,
    member: u16,
    signature_r: [u8; 32],
    signature_s: [u8; 32],
}

/// Most votes in one bundle: two kinds, two rounds, one per member of the largest federation.
pub const MAX_BUNDLE_VOTES: usize = 4 * MAX_CERTIFICATE_VOTES;

fn vote_to_wire(vote: &Vote) -> WireVote {
    let (signature_r, signature_s) = split_signature(&vote.signature);
    WireVote {
        kind: vote.kind.tag(),
        height: vote.height,
        round: vote.round,
        block_hash: vote.block_hash.map(|hash| hash.to_byte_array()),
        member: vote.member,
        signature_r,
        signature_s,
    }
}

fn vote_from_wire(wire: WireVote) -> Result<Vote, DecodeError> {
    let kind = match wire.kind {
        1 => VoteKind::Prevote,
        2 => VoteKind::Precommit,
        other => return Err(DecodeError::VoteKind(other)),
    };
    Ok(Vote {
        kind,
        height: wire.height,
        round: wire.round,
        block_hash: wire.block_hash.map(elements::BlockHash::from_byte_array),
        member: wire.member,
        signature: join_signature(&wire.signature_r, &wire.signature_s),
    })
}

fn split_signature(signature: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    s.copy_from_slice(&signature[32..]);
    (r, s)
}

fn join_signature(r: &[u8; 32], s: &[u8; 32]) -> [u8; 64] {
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(r);
    signature[32..].copy_from_slice(s);
    signature
}

fn decode_block(kind: &'static str, bytes: &[u8]) -> Result<elements::Block, DecodeError> {
    elements::encode::deserialize(bytes).map_err(|error| DecodeError::Block {
        kind,
        reason: error.to_string(),
    })
}

impl ConsensusMessage {
    /// The wire bytes of this message.
    pub fn encode(&self) -> Vec<u8> {
        let wire = match self {
            ConsensusMessage::Proposal(proposal) => {
                let (signature_r, signature_s) = split_signature(&proposal.signature);
                Wire::Proposal {
                    height: proposal.height,
                    round: proposal.round,
                    valid_round: proposal.valid_round,
                    polka: proposal.polka.clone(),
                    block: Bytes(elements::encode::serialize(&proposal.block)),
                    proposed_at_ms: proposal.proposed_at_ms,
                    signature_r,
                    signature_s,
                }
            }
            ConsensusMessage::Vote(vote) => Wire::Vote(vote_to_wire(vote)),
            ConsensusMessage::Commit(commit) => Wire::Commit {
                certificate: commit.certificate.clone(),
                block: Bytes(elements::encode::serialize(&commit.block)),
            },
            ConsensusMessage::BlockSignature(signature) => Wire::BlockSignature {
                height: signature.height,
                block_hash: signature.block_hash.to_byte_array(),
                member: signature.member,
                signature: Bytes(signature.signature.clone()),
            },
            ConsensusMessage::FinalBlock(block) => Wire::FinalBlock {
                block: Bytes(elements::encode::serialize(block)),
            },
            ConsensusMessage::Status(status) => Wire::Status {
                height: status.height,
                tip_hash: status.tip_hash.to_byte_array(),
            },
            ConsensusMessage::VoteBundle(votes) => Wire::VoteBundle {
                votes: votes.iter().map(vote_to_wire).collect(),
            },
        };
        let mut out = vec![WIRE_VERSION];
        // Serializing into a Vec cannot fail for these plain data types; an error would leave only the
        // version byte, which every decoder rejects.
        if let Ok(body) = postcard::to_stdvec(&wire) {
            out.extend_from_slice(&body);
        }
        out
    }

    /// Parses wire bytes. Never panics; see the module docs for what is rejected.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        let (version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if *version != WIRE_VERSION {
            return Err(DecodeError::UnsupportedVersion(*version));
        }
        let (wire, rest) = postcard::take_from_bytes::<Wire>(body)
            .map_err(|error| DecodeError::Envelope(error.to_string()))?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes(rest.len()));
        }
        let message = match wire {
            Wire::Proposal {
                height,
                round,
                valid_round,
                polka,
                block,
                proposed_at_ms,
                signature_r,
                signature_s,
            } => {
                if polka.len() > MAX_CERTIFICATE_VOTES {
                    return Err(DecodeError::Envelope(format!(
                        "proposal with {} polka votes",
                        polka.len()
                    )));
                }
                ConsensusMessage::Proposal(Proposal {
                    height,
                    round,
                    valid_round,
                    polka,
                    block: decode_block("proposal", &block.0)?,
                    proposed_at_ms,
                    signature: join_signature(&signature_r, &signature_s),
                })
            }
            Wire::Vote(vote) => ConsensusMessage::Vote(vote_from_wire(vote)?),
            Wire::Commit { certificate, block } => {
                if certificate.precommits.len() > MAX_CERTIFICATE_VOTES {
                    return Err(DecodeError::Envelope(format!(
                        "commit certificate with {} precommits",
                        certificate.precommits.len()
                    )));
                }
                ConsensusMessage::Commit(Commit {
                    certificate,
                    block: decode_block("commit", &block.0)?,
                })
            }
            Wire::BlockSignature {
                height,
                block_hash,
                member,
                signature,
            } => {
                let len = signature.0.len();
                if len == 0 || len > MAX_BLOCK_SIGNATURE_BYTES {
                    return Err(DecodeError::SignatureLength { len });
                }
                ConsensusMessage::BlockSignature(BlockSignature {
                    height,
                    block_hash: elements::BlockHash::from_byte_array(block_hash),
                    member,
                    signature: signature.0,
                })
            }
            Wire::FinalBlock { block } => {
                ConsensusMessage::FinalBlock(decode_block("final_block", &block.0)?)
            }
            Wire::Status { height, tip_hash } => ConsensusMessage::Status(Status {
                height,
                tip_hash: elements::BlockHash::from_byte_array(tip_hash),
            }),
            Wire::VoteBundle { votes } => {
                if votes.len() > MAX_BUNDLE_VOTES {
                    return Err(DecodeError::Envelope(format!(
                        "vote bundle with {} votes",
                        votes.len()
                    )));
                }
                let votes = votes
                    .into_iter()
                    .map(vote_from_wire)
                    .collect::<Result<Vec<_>, _>>()?;
                ConsensusMessage::VoteBundle(votes)
            }
        };
        Ok(message)
    }
}
