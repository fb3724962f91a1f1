//! What goes inside a block: the seam between consensus and the ledger.
//!
//! The consensus state machine decides *which* block is final at a height; [`BlockContent`] builds the block a
//! proposer offers (its transactions) and judges the transactions of a proposal before this member prevotes for it.
//! The daemon supplies one backed by its UTXO set and mempool; tests and the simulator use [`EmptyBlocks`].
//! Implementations must be deterministic functions of the stored chain (every honest member must reach the same
//! verdict on the same block), and `validate` is called only for blocks whose parent is the current tip.

/// Why [`BlockContent::validate`] did not accept a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentError {
    /// The block's contents break the rules: it is invalid at this height (remembered as such).
    Invalid(String),
    /// This member cannot judge the block now (its storage failed, or the parent it needs is not known): the
    /// message is refused but the block is not remembered as invalid.
    Unavailable(String),
}

impl std::fmt::Display for ContentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContentError::Invalid(reason) => write!(f, "{reason}"),
            ContentError::Unavailable(reason) => write!(f, "cannot be judged now: {reason}"),
        }
    }
}

/// Builds proposals and validates their contents.
pub trait BlockContent: Send {
    /// A new unsigned block on `parent` with header time `time`, following [`chain::validate_proposal`]'s rules.
    fn build(
        &mut self,
        params: &chain::FederationParams,
        parent: &elements::BlockHeader,
        time: u32,
    ) -> elements::Block;

    /// The content rules beyond [`chain::validate_proposal`] (already passed when this is called): `Ok`, or the
    /// first problem.
    fn validate(
        &mut self,
        params: &chain::FederationParams,
        parent: &elements::BlockHeader,
        block: &elements::Block,
    ) -> Result<(), ContentError>;

    /// `block` became final here and is about to be stored ([`crate::Effect::StoreBlock`] follows): blocks built or
    /// validated before the store catches up must treat it as their parent.
    fn finalized(&mut self, _block: &elements::Block) {}
}

/// Blocks with only a coinbase; accepts no other transaction (tests, benchmarks, the simulator).
#[derive(Debug, Default, Clone, Copy)]
pub struct EmptyBlocks;

impl BlockContent for EmptyBlocks {
    fn build(
        &mut self,
        params: &chain::FederationParams,
        parent: &elements::BlockHeader,
        time: u32,
    ) -> elements::Block {
        chain::build_block(params, parent, time)
    }

    fn validate(
        &mut self,
        _params: &chain::FederationParams,
        _parent: &elements::BlockHeader,
        block: &elements::Block,
    ) -> Result<(), ContentError> {
        match block.txdata.len() {
            1 => Ok(()),
            count => Err(ContentError::Invalid(format!(
                "block has {count} transactions; this member accepts only the coinbase"
            ))),
        }
    }
}
