//! What goes into the state machine ([`Input`]) and what comes out ([`Effect`], [`ConsensusEvent`]).

use crate::certificate::CommitCertificate;
use crate::height::Step;
use crate::message::{ConsensusMessage, VoteKind};
use crate::record::ConsensusRecord;

/// Something that happened, fed to [`crate::Consensus::handle`].
// Inputs are moved once into `handle`, never stored in bulk: boxing the message would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The wall clock (unix milliseconds). Fed at least at every requested [`Effect::WakeAt`], and before every
    /// other input (or batch of inputs), so that timeouts armed while handling it start from the current time.
    Tick {
        /// Current time.
        now_ms: u64,
    },
    /// A message from member `from` (the member index of the authenticated p2p sender).
    Message {
        /// Sender's member index.
        from: usize,
        /// The decoded message.
        message: ConsensusMessage,
    },
    /// Our signer produced a block signature (DER + 0x01) after an [`Effect::SignBlock`].
    BlockSigned {
        /// Height from the request.
        height: u32,
        /// Block hash from the request.
        block_hash: elements::BlockHash,
        /// The signature.
        signature: Vec<u8>,
    },
    /// Our signer refused or failed an [`Effect::SignBlock`].
    SignFailed {
        /// Height from the request.
        height: u32,
        /// Block hash from the request.
        block_hash: elements::BlockHash,
        /// Why (for logs).
        reason: String,
    },
    /// Answer to an [`Effect::FetchBlocks`]: final blocks in ascending height order.
    BlocksFetched {
        /// The member that answered.
        from: usize,
        /// The blocks.
        blocks: Vec<elements::Block>,
    },
}

/// Something the daemon must do, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send the message to every other member.
    Broadcast(ConsensusMessage),
    /// Write this record durably (synced) before executing later effects; a failure is fatal (R4-R10).
    Persist(ConsensusRecord),
    /// Ask the signer (guard → HSM) to sign the block; answer with [`Input::BlockSigned`] or
    /// [`Input::SignFailed`]. The digest signed is the block hash (`chain::signing_digest`). The certificate
    /// is what the guard verifies; `None` only when re-signing the hash the signer journal already approved.
    SignBlock {
        /// Height of the block.
        height: u32,
        /// Hash of the block.
        block_hash: elements::BlockHash,
        /// The commit certificate (R10).
        certificate: Option<CommitCertificate>,
    },
    /// Store this final block durably (synced) before executing later effects.
    StoreBlock(elements::Block),
    /// Ask member `from` for `count` final blocks starting at `start_height`; answer with
    /// [`Input::BlocksFetched`].
    FetchBlocks {
        /// Member to ask.
        from: usize,
        /// First height wanted.
        start_height: u32,
        /// How many blocks at most.
        count: u32,
    },
    /// Feed an [`Input::Tick`] no later than this time (unix ms).
    WakeAt {
        /// Deadline.
        at_ms: u64,
    },
    /// For logs and metrics only.
    Report(ConsensusEvent),
}

/// How a block became final at this member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalizedVia {
    /// We assembled m signatures ourselves.
    Signatures,
    /// A peer's `FinalBlock` message.
    FinalBlockMessage,
    /// A catch-up fetch.
    Fetch,
}

/// Events worth logging or counting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsensusEvent {
    /// We entered a round.
    RoundStarted {
        /// Height.
        height: u32,
        /// Round.
        round: u32,
    },
    /// We proposed a block.
    Proposed {
        /// Height.
        height: u32,
        /// Round.
        round: u32,
        /// Block hash.
        block_hash: elements::BlockHash,
        /// The valid round of a re-proposal.
        valid_round: Option<u32>,
    },
    /// We accepted a proposal.
    ProposalAccepted {
        /// Proposer.
        from: usize,
        /// Height.
        height: u32,
        /// Round.
        round: u32,
        /// Block hash.
        block_hash: elements::BlockHash,
    },
    /// We voted.
    Voted {
        /// Prevote or precommit.
        kind: VoteKind,
        /// Height.
        height: u32,
        /// Round.
        round: u32,
        /// Block hash, or nil.
        block_hash: Option<elements::BlockHash>,
    },
    /// We locked on a block.
    Locked {
        /// Height.
        height: u32,
        /// Round.
        round: u32,
        /// Block hash.
        block_hash: elements::BlockHash,
    },
    /// We hold a commit certificate: the height is decided here.
    Decided {
        /// Height.
        height: u32,
        /// Round of the certificate.
        round: u32,
        /// Block hash.
        block_hash: elements::BlockHash,
    },
    /// We asked our signer to sign.
    SigningRequested {
        /// Height.
        height: u32,
        /// Block hash.
        block_hash: elements::BlockHash,
    },
    /// A decision we may not act on: we signed something else (or higher) already.
    SigningRefused {
        /// Height.
        height: u32,
        /// Block hash of the decision.
        block_hash: elements::BlockHash,
        /// Why.
        reason: String,
    },
    /// Our signer signed; we broadcast the signature.
    Signed {
        /// Height.
        height: u32,
        /// Block hash.
        block_hash: elements::BlockHash,
    },
    /// Our signer failed or refused.
    SignFailed {
        /// Height.
        height: u32,
        /// Block hash.
        block_hash: elements::BlockHash,
        /// The signer's reason.
        reason: String,
    },
    /// A block became final here and was emitted as [`Effect::StoreBlock`].
    Finalized {
        /// Height.
        height: u32,
        /// Block hash.
        block_hash: elements::BlockHash,
        /// Round of the certificate, if we decided it ourselves.
        round: Option<u32>,
        /// Member indexes whose signatures are in the witness.
        signers: Vec<usize>,
        /// The proposer's clock when proposing, if we saw the proposal.
        proposed_at_ms: Option<u64>,
        /// How it became final here.
        via: FinalizedVia,
    },
    /// A peer reports a different block at our tip height (never happens within the safety bound).
    ConflictingTip {
        /// The peer.
        from: usize,
        /// Height.
        height: u32,
        /// Our tip hash.
        ours: elements::BlockHash,
        /// The peer's hash.
        theirs: elements::BlockHash,
    },
    /// An input was invalid and ignored.
    Rejected {
        /// The member it came from (our own index for results of our own signer).
        from: usize,
        /// Why.
        reason: Rejection,
    },
}

/// Why an input was ignored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// `from` is not a member index.
    #[error("sender index {from} is not a member")]
    UnknownSender {
        /// The index given.
        from: usize,
    },
    /// We have not been fed a clock tick yet, so rounds are unknown.
    #[error("no clock tick received yet")]
    NoClock,
    /// A proposal from a member that is not the round's proposer.
    #[error(
        "proposal for round {round} from member {from}, but the proposer is member {expected}"
    )]
    WrongProposer {
        /// Round.
        round: u32,
        /// Expected proposer.
        expected: usize,
        /// Sender.
        from: usize,
    },
    /// The proposal's ed25519 signature does not verify under the round proposer's p2p key.
    #[error("bad proposal signature for round {round} (proposer: member {proposer})")]
    BadProposalSignature {
        /// Round.
        round: u32,
        /// The round's proposer, whose key was used.
        proposer: usize,
    },
    /// A block whose time is too far ahead of our clock.
    #[error("block time {time} is more than the allowed skew ahead of our clock ({now_ms} ms)")]
    BlockFromTheFuture {
        /// Block time (seconds).
        time: u32,
        /// Our clock.
        now_ms: u64,
    },
    /// The block inside a message has another height than the message says.
    #[error("message height {message_height} but block height {block_height}")]
    HeightMismatch {
        /// Message height.
        message_height: u32,
        /// Block height.
        block_height: u32,
    },
    /// The block does not build on our tip.
    #[error("block parent {got} is not our tip {expected}")]
    WrongParent {
        /// Our tip.
        expected: elements::BlockHash,
        /// The block's parent.
        got: elements::BlockHash,
    },
    /// `chain::validate_proposal` failed.
    #[error("invalid proposal: {0}")]
    InvalidProposal(String),
    /// The proposer sent two different blocks in one round.
    #[error("second, different proposal for round {round}")]
    EquivocatingProposal {
        /// Round.
        round: u32,
    },
    /// The member field is not a member index.
    #[error("member index {member} out of range")]
    MemberOutOfRange {
        /// The index given.
        member: u16,
    },
    /// The member field is not the sender.
    #[error("message claims member {member} but was sent by member {from}")]
    MemberMismatch {
        /// Claimed member.
        member: u16,
        /// Actual sender.
        from: usize,
    },
    /// A vote's ed25519 signature is invalid.
    #[error("bad {kind:?} signature from member {member}")]
    BadVoteSignature {
        /// Prevote or precommit.
        kind: VoteKind,
        /// Member.
        member: u16,
    },
    /// A second, different vote of one kind in one round.
    #[error("member {member} cast two different {kind:?}s in round {round}")]
    EquivocatingVote {
        /// Prevote or precommit.
        kind: VoteKind,
        /// Member.
        member: u16,
        /// Round.
        round: u32,
    },
    /// A commit certificate that does not verify.
    #[error("bad commit certificate: {0}")]
    BadCertificate(String),
    /// `chain::verify_member_signature` failed.
    #[error("bad block signature from member {member}: {reason}")]
    BadBlockSignature {
        /// Member.
        member: u16,
        /// The chain crate's reason.
        reason: String,
    },
    /// Too many signatures buffered for blocks we do not hold.
    #[error("signature buffer for member {member} is full")]
    SignatureBufferFull {
        /// Member.
        member: u16,
    },
    /// Too many next-height messages buffered from one member.
    #[error("next-height message buffer for member {from} is full")]
    FutureBufferFull {
        /// Sender.
        from: usize,
    },
    /// A final block failed `chain::validate_final_block`.
    #[error("invalid final block at height {height}: {reason}")]
    InvalidFinalBlock {
        /// Height.
        height: u32,
        /// The chain crate's reason.
        reason: String,
    },
    /// A fetched batch skips heights.
    #[error("fetched block at height {got} but expected height {expected}")]
    FetchedBlockGap {
        /// Height we needed.
        expected: u32,
        /// Height we got.
        got: u32,
    },
    /// A block at our tip height with another hash.
    #[error("block {theirs} at height {height} conflicts with our block {ours}")]
    ConflictingBlock {
        /// Height.
        height: u32,
        /// Ours.
        ours: elements::BlockHash,
        /// Theirs.
        theirs: elements::BlockHash,
    },
    /// A signer result for a request we did not make (or no longer care about).
    #[error("signer result for height {height} block {block_hash} does not match an open request")]
    UnexpectedSignerResult {
        /// Height.
        height: u32,
        /// Block hash.
        block_hash: elements::BlockHash,
    },
    /// Assembling the witness failed although we counted m valid signatures.
    #[error("could not assemble final block: {0}")]
    AssemblyFailed(String),
}

impl Rejection {
    /// Whether this rejection proves the sender misbehaved (as opposed to being late, early or out of
    /// sync). The daemon may disconnect or score peers on these.
    pub fn is_misbehaviour(&self) -> bool {
        matches!(
            self,
            Rejection::UnknownSender { .. }
                | Rejection::WrongProposer { .. }
                | Rejection::BadProposalSignature { .. }
                | Rejection::HeightMismatch { .. }
                | Rejection::InvalidProposal(_)
                | Rejection::EquivocatingProposal { .. }
                | Rejection::MemberOutOfRange { .. }
                | Rejection::MemberMismatch { .. }
                | Rejection::BadVoteSignature { .. }
                | Rejection::EquivocatingVote { .. }
                | Rejection::BadCertificate(_)
                | Rejection::BadBlockSignature { .. }
                | Rejection::InvalidFinalBlock { .. }
                | Rejection::FetchedBlockGap { .. }
                | Rejection::ConflictingBlock { .. }
        )
    }
}

/// A snapshot of the state machine, for RPC and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusStatus {
    /// Our member index.
    pub member: usize,
    /// Our tip height.
    pub tip_height: u32,
    /// Our tip hash.
    pub tip_hash: elements::BlockHash,
    /// The height being decided (tip + 1).
    pub height: u32,
    /// The current round.
    pub round: u32,
    /// The step of the current round.
    pub step: Step,
    /// The current round's proposer.
    pub proposer: usize,
    /// The block we are locked on at `height`, with the round.
    pub locked: Option<(u32, elements::BlockHash)>,
    /// The block decided at `height`, if any.
    pub decided: Option<elements::BlockHash>,
    /// Valid blocks held for `height`.
    pub proposals: usize,
    /// The largest number of prevotes for one block in one round at `height`.
    pub best_prevote_count: usize,
    /// The largest number of precommits for one block in one round at `height`.
    pub best_precommit_count: usize,
    /// The largest number of valid block signatures for one block at `height`.
    pub best_signature_count: usize,
    /// Whether a block fetch is outstanding.
    pub fetching: bool,
}
