//! The block content members agree on: transactions from the mempool, validated against the UTXO set.

use std::sync::Arc;

use super::ChainState;

/// `blocksigner::BlockContent` over the node's [`ChainState`].
#[derive(Debug, Clone)]
pub struct LedgerBlockContent(pub Arc<ChainState>);

impl blocksigner::BlockContent for LedgerBlockContent {
    fn build(
        &mut self,
        params: &chain::FederationParams,
        parent: &elements::BlockHeader,
        time: u32,
    ) -> elements::Block {
        tokio::task::block_in_place(|| self.0.build_block(params, parent, time))
    }

    fn validate(
        &mut self,
        _params: &chain::FederationParams,
        _parent: &elements::BlockHeader,
        block: &elements::Block,
    ) -> Result<(), blocksigner::ContentError> {
        tokio::task::block_in_place(|| self.0.validate_block(block))
    }

    fn finalized(&mut self, block: &elements::Block) {
        self.0.block_finalized(block);
    }
}
