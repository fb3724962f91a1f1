//! The facts a block's transactions are validated against, from the federation params and the stored chain.

use chain::ledger::LedgerContext;
use chain::FederationParams;

use crate::storage::{BlockStore, StoreError};

/// Bitcoin regtest's genesis hash, internal byte order (display order
/// `0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206`): the parent chain peg-outs must name
/// until the peg watcher makes the parent network configurable.
pub const REGTEST_GENESIS_INTERNAL: [u8; 32] = [
    0x06, 0x22, 0x6e, 0x46, 0x11, 0x1a, 0x0b, 0x59, 0xca, 0xaf, 0x12, 0x60, 0x43, 0xeb, 0x5b, 0xbf,
    0x28, 0xc3, 0x4f, 0x3a, 0x5e, 0x33, 0x2a, 0x1f, 0xc7, 0xb2, 0xb7, 0x3c, 0xf1, 0x88, 0x91, 0x0f,
];

#[cfg(test)]
mod tests {
    #[test]
    fn regtest_genesis_is_bitcoins() {
        use bitcoin::hashes::Hash as _;
        let genesis = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest);
        assert_eq!(
            genesis.block_hash().to_byte_array(),
            super::REGTEST_GENESIS_INTERNAL
        );
    }
}

/// Blocks before a coinbase output may be spent (Elements' `COINBASE_MATURITY`).
pub const COINBASE_MATURITY: u32 = 100;

/// The chain-wide part of every [`LedgerContext`].
#[derive(Debug, Clone)]
pub struct LedgerRules {
    policy_asset: elements::AssetId,
    genesis_hash: elements::BlockHash,
    parent_genesis_hash: [u8; 32],
    fee_script: elements::Script,
}

impl LedgerRules {
    /// The rules of the federation `params` (parent chain: Bitcoin regtest for now).
    pub fn new(params: &FederationParams) -> Self {
        LedgerRules {
            policy_asset: params.policy_asset(),
            genesis_hash: params.genesis_hash(),
            parent_genesis_hash: REGTEST_GENESIS_INTERNAL,
            fee_script: params.fee_script().clone(),
        }
    }

    /// The context of a block at `height` with header time `block_time`, whose lock-time cutoff is `cutoff`.
    pub fn context(&self, height: u32, block_time: u32, cutoff: u32) -> LedgerContext {
        LedgerContext {
            height,
            lock_time_cutoff: cutoff,
            policy_asset: self.policy_asset,
            genesis_hash: self.genesis_hash,
            parent_genesis_hash: self.parent_genesis_hash,
            fee_script: self.fee_script.clone(),
            coinbase_maturity: COINBASE_MATURITY,
            block_time,
        }
    }
}

/// The times of the last (up to) 11 blocks, oldest first: BIP113's median time past, rolled forward over the
/// blocks of a batch that are not stored yet.
#[derive(Debug, Clone, Default)]
pub struct TimeWindow {
    times: std::collections::VecDeque<u32>,
}

impl TimeWindow {
    const SPAN: usize = 11;

    /// The window ending at the stored block at `height`.
    pub fn ending_at(store: &BlockStore, height: u32) -> Result<Self, StoreError> {
        Ok(TimeWindow {
            times: store.times_ending_at(height, Self::SPAN as u32)?.into(),
        })
    }

    /// The median of the window (0 when empty).
    pub fn median(&self) -> u32 {
        let mut sorted: Vec<u32> = self.times.iter().copied().collect();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied().unwrap_or(0)
    }

    /// Moves the window past a block with header time `time`.
    pub fn push(&mut self, time: u32) {
        if self.times.len() == Self::SPAN {
            self.times.pop_front();
        }
        self.times.push_back(time);
    }
}
