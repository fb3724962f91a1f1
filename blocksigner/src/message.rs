//! Consensus messages exchanged between members (their meaning is in [`crate::rules`]; their bytes in
//! [`crate::codec`]).

use ed25519_dalek::Signer;

use crate::rules::{precommit_signing_bytes, proposal_signing_bytes};

/// Largest encoded message accepted or produced.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Largest block signature (72-byte DER + the sighash byte).
pub const MAX_BLOCK_SIGNATURE_BYTES: usize = 73;

/// One message of the block-signing protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsensusMessage {
    /// A proposer's candidate block for a round.
    Proposal(Proposal),
    /// A member's vote to sign a block in a round.
    Precommit(Precommit),
    /// A member's block-signing-key signature on a block.
    BlockSignature(BlockSignature),
    /// A final block, with its signblock witness.
    FinalBlock(elements::Block),
    /// A member's tip, sent every slot.
    Status(Status),
}

impl ConsensusMessage {
    /// The height this message is about (for a `Status`: the sender's tip height).
    pub fn height(&self) -> u32 {
        match self {
            ConsensusMessage::Proposal(proposal) => proposal.height,
            ConsensusMessage::Precommit(precommit) => precommit.height,
            ConsensusMessage::BlockSignature(signature) => signature.height,
            ConsensusMessage::FinalBlock(block) => block.header.height,
            ConsensusMessage::Status(status) => status.height,
        }
    }

    /// A short name of the message kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ConsensusMessage::Proposal(_) => "proposal",
            ConsensusMessage::Precommit(_) => "precommit",
            ConsensusMessage::BlockSignature(_) => "block_signature",
            ConsensusMessage::FinalBlock(_) => "final_block",
            ConsensusMessage::Status(_) => "status",
        }
    }
}

/// A candidate block for `(height, round)`, signed with the proposer's p2p key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Height of the block.
    pub height: u32,
    /// The round (slot number) it is proposed in.
    pub round: u64,
    /// The unsigned block.
    pub block: elements::Block,
    /// The proposer's wall clock when it proposed (for latency metrics only).
    pub proposed_at_ms: u64,
    /// ed25519 signature by the proposer's p2p key over [`proposal_signing_bytes`].
    pub signature: [u8; 64],
}

impl Proposal {
    /// Builds and signs a proposal (a re-proposal is signed afresh for its round).
    pub fn sign(
        genesis_hash: &elements::BlockHash,
        height: u32,
        round: u64,
        block: elements::Block,
        proposed_at_ms: u64,
        key: &ed25519_dalek::SigningKey,
    ) -> Self {
        let bytes = proposal_signing_bytes(
            genesis_hash,
            height,
            round,
            &block.block_hash(),
            proposed_at_ms,
        );
        let signature = key.sign(&bytes).to_bytes();
        Proposal {
            height,
            round,
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
            &self.block.block_hash(),
            self.proposed_at_ms,
        );
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature);
        key.verify_strict(&bytes, &signature).is_ok()
    }
}

/// A member's vote for `block_hash` in `(height, round)`, signed with its p2p key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Precommit {
    /// Height being decided.
    pub height: u32,
    /// Round of the proposal voted for.
    pub round: u64,
    /// Hash of the block voted for.
    pub block_hash: elements::BlockHash,
    /// The voter's member index.
    pub member: u16,
    /// ed25519 signature over [`precommit_signing_bytes`].
    pub signature: [u8; 64],
}

impl Precommit {
    /// Builds and signs a precommit.
    pub fn sign(
        genesis_hash: &elements::BlockHash,
        height: u32,
        round: u64,
        block_hash: elements::BlockHash,
        member: u16,
        key: &ed25519_dalek::SigningKey,
    ) -> Self {
        let bytes = precommit_signing_bytes(genesis_hash, height, round, &block_hash);
        let signature = key.sign(&bytes).to_bytes();
        Precommit {
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
        let bytes =
            precommit_signing_bytes(genesis_hash, self.height, self.round, &self.block_hash);
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

/// A member's current tip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Height of the sender's tip.
    pub height: u32,
    /// Hash of the sender's tip.
    pub tip_hash: elements::BlockHash,
}
