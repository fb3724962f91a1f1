//! What goes inside a block: the seam between consensus and the ledger.
//!
//! The consensus state machine decides *which* block is final at a height; [`BlockContent`] builds the block a
//! proposer offers (its transactions) and judges the transactions of a proposal before this member prevotes for it.
//! The daemon supplies one backed by its UTXO set and mempool; tests and the simulator use [`EmptyBlocks`].
//! Implementations must be deterministic functions of the stored chain (every honest member must reach the same
//! verdict on the same block), and `validate` is called only for blocks whose parent is the current tip.

/// Builds proposals and validates their contents.
pub trait BlockContent: Send {
    /// A new unsigned block on `parent` with header time `time`, following [`chain::validate_proposal`]'s rules.
    fn build(
        &mut self,
        params: &chain::FederationParams,
        parent: &elements::BlockHeader,
        time: u32,
    ) -> elements::Block;

    /// The content rules beyond [`chain::validate_proposal`] (already passed when this is called): a message
    /// naming the first problem, or `Ok`.
    fn validate(
        &mut self,
        params: &chain::FederationParams,
        parent: &elements::BlockHeader,
        block: &elements::Block,
    ) -> Result<(), String>;
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
    ) -> Result<(), String> {
        match block.txdata.len() {
            1 => Ok(()),
            count => Err(format!(
                "block has {count} transactions; this member accepts only the coinbase"
            )),
        }
    }
}
