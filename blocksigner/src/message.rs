//! Consensus messages exchanged between members (their meaning is in [`crate::rules`]; their bytes in
//! [`crate::codec`]).

use ed25519_dalek::Signer;

use crate::certificate::{CertificateSignature, CommitCertificate};
use crate::rules::{proposal_signing_bytes, vote_signing_bytes};

/// Largest encoded message accepted or produced.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Largest block signature (72-byte DER + the sighash byte).
pub const MAX_BLOCK_SIGNATURE_BYTES: usize = 73;

/// One message of the block-signing protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsensusMessage {
    /// A proposer's candidate block for a round.
    Proposal(Proposal),
    /// A member's prevote or precommit in a round.
    Vote(Vote),
    /// A member's block-signing-key signature on a decided block.
    BlockSignature(BlockSignature),
    /// A decided block with its commit certificate (sent to repair members that missed precommits).
    Commit(Commit),
    /// A final block, with its signblock witness.
    FinalBlock(elements::Block),
    /// A member's tip, sent every slot.
    Status(Status),
    /// Votes of other members (and ours) that we hold for the current and previous round, re-sent by repair
    /// (R14): each proves its own author, so a member that missed them, or whose author is gone, can still count
    /// them (Tendermint's liveness needs every honest member to see the votes any honest member saw).
    VoteBundle(Vec<Vote>),
}

impl ConsensusMessage {
    /// The height this message is about (for a `Status`: the sender's tip height).
    pub fn height(&self) -> u32 {
        match self {
            ConsensusMessage::Proposal(proposal) => proposal.height,
            ConsensusMessage::Vote(vote) => vote.height,
            ConsensusMessage::BlockSignature(signature) => signature.height,
            ConsensusMessage::Commit(commit) => commit.certificate.height,
            ConsensusMessage::FinalBlock(block) => block.header.height,
            ConsensusMessage::Status(status) => status.height,
            ConsensusMessage::VoteBundle(votes) => votes.first().map_or(0, |vote| vote.height),
        }
    }

    /// A short name of the message kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ConsensusMessage::Proposal(_) => "proposal",
            ConsensusMessage::Vote(vote) => match vote.kind {
                VoteKind::Prevote => "prevote",
                VoteKind::Precommit => "precommit",
            },
            ConsensusMessage::BlockSignature(_) => "block_signature",
            ConsensusMessage::Commit(_) => "commit",
            ConsensusMessage::FinalBlock(_) => "final_block",
            ConsensusMessage::Status(_) => "status",
            ConsensusMessage::VoteBundle(_) => "vote_bundle",
        }
    }
}

/// A candidate block for `(height, round)`, signed with the proposer's p2p key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Height of the block.
    pub height: u32,
    /// The round it is proposed in.
    pub round: u32,
    /// The round in which the proposer saw `m` prevotes for this block (a re-proposal), if any.
    pub valid_round: Option<u32>,
    /// With a valid round: the prevotes of that round for this block (`m` of them, members ascending), so
    /// that members that missed them can check the re-proposal. Each is self-authenticating, so the
    /// proposal's own signature does not cover them.
    pub polka: Vec<(u16, CertificateSignature)>,
    /// The unsigned block.
    pub block: elements::Block,
    /// The proposer's wall clock when it proposed (for latency metrics only).
    pub proposed_at_ms: u64,
    /// ed25519 signature by the proposer's p2p key over [`proposal_signing_bytes`].
    pub signature: [u8; 64],
}

impl Proposal {
    /// Builds and signs a proposal.
    pub fn sign(
        genesis_hash: &elements::BlockHash,
        height: u32,
        round: u32,
        valid_round: Option<u32>,
        block: elements::Block,
        proposed_at_ms: u64,
        key: &ed25519_dalek::SigningKey,
    ) -> Self {
        let bytes = proposal_signing_bytes(
            genesis_hash,
            height,
            round,
            valid_round,
            &block.block_hash(),
            proposed_at_ms,
        );
        let signature = key.sign(&bytes).to_bytes();
        Proposal {
            height,
            round,
            valid_round,
            polka: Vec::new(),
            block,
            proposed_at_ms,
            signature,
        }
    }

    /// Whether the signature is valid under `key` (strict ed25519 verification).
    pub fn verify(
        &self,
        genesis_hash: &elements::BlockHash,
        key: &ed25519_dalek::VerifyingKey,
    ) -> bool {
        let bytes = proposal_signing_bytes(
            genesis_hash,
            self.height,
            self.round,
            self.valid_round,
            &self.block.block_hash(),
            self.proposed_at_ms,
        );
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature);
        key.verify_strict(&bytes, &signature).is_ok()
    }
}

/// The two voting steps of a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VoteKind {
    /// First step: "this proposal is valid and I may take it".
    Prevote,
    /// Second step: "I saw `m` prevotes for it in this round and locked on it".
    Precommit,
}

impl VoteKind {
    /// The byte that separates the two kinds in signed bytes.
    pub fn tag(self) -> u8 {
        match self {
            VoteKind::Prevote => 1,
            VoteKind::Precommit => 2,
        }
    }
}

/// A member's vote for `block_hash` (or for nothing: `None`, "nil") in `(height, round)`, signed with its p2p
/// key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// Height being decided.
    pub height: u32,
    /// Round.
    pub round: u32,
    /// Hash of the block voted for, or `None` for nil.
    pub block_hash: Option<elements::BlockHash>,
    /// The voter's member index.
    pub member: u16,
    /// ed25519 signature over [`vote_signing_bytes`].
    pub signature: [u8; 64],
}

impl Vote {
    /// Builds and signs a vote.
    pub fn sign(
        genesis_hash: &elements::BlockHash,
        kind: VoteKind,
        height: u32,
        round: u32,
        block_hash: Option<elements::BlockHash>,
        member: u16,
        key: &ed25519_dalek::SigningKey,
    ) -> Self {
        let bytes = vote_signing_bytes(genesis_hash, kind, height, round, block_hash.as_ref());
        let signature = key.sign(&bytes).to_bytes();
        Vote {
            kind,
            height,
            round,
            block_hash,
            member,
            signature,
        }
    }

    /// Whether the signature is valid under `key` (strict ed25519 verification).
    pub fn verify(
        &self,
        genesis_hash: &elements::BlockHash,
        key: &ed25519_dalek::VerifyingKey,
    ) -> bool {
        let bytes = vote_signing_bytes(
            genesis_hash,
            self.kind,
            self.height,
            self.round,
            self.block_hash.as_ref(),
        );
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature);
        key.verify_strict(&bytes, &signature).is_ok()
    }
}

/// A member's block signature (DER + 0x01) on `block_hash` at `height`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSignature {
    /// Height of the block.
    pub height: u32,
    /// Hash of the signed block.
    pub block_hash: elements::BlockHash,
    /// The signer's member index.
    pub member: u16,
    /// DER-encoded low-S ECDSA signature followed by the sighash byte 0x01.
    pub signature: Vec<u8>,
}

/// A decided block: the block and `m` precommits for it from one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// The certificate (its `block_hash` is the block's hash).
    pub certificate: CommitCertificate,
    /// The unsigned block.
    pub block: elements::Block,
}

/// A member's current tip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Height of the sender's tip.
    pub height: u32,
    /// Hash of the sender's tip.
    pub tip_hash: elements::BlockHash,
}
