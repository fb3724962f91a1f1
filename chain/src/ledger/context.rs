//! What a transaction is validated against besides the UTXO set.

use elements::{AssetId, BlockHash};

/// The chain facts a transaction's validity depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerContext {
    /// Height of the block the transaction is (or would be) in.
    pub height: u32,
    /// Time-lock cutoff for that block: the median of the previous 11 block times (BIP113), or the parent's time
    /// when fewer exist. Absolute time locks and time-based sequence locks are compared against it.
    pub lock_time_cutoff: u32,
    /// The policy asset (L-BTC): fees are paid in it.
    pub policy_asset: AssetId,
    /// This sidechain's genesis hash (Elements puts it in Taproot sighashes).
    pub genesis_hash: BlockHash,
    /// The parent chain's (Bitcoin's) genesis hash, internal byte order: a peg-out output names it.
    pub parent_genesis_hash: [u8; 32],
    /// The only script a coinbase may pay fees to (the federation's, like Elements' `con_mandatorycoinbase`).
    pub fee_script: elements::Script,
    /// Blocks a coinbase output must wait before it can be spent (Elements: 100).
    pub coinbase_maturity: u32,
    /// Header time of the block the transaction is (or would be) in: the `time` of the outputs it creates, which
    /// later time-based BIP68 sequence locks count from.
    pub block_time: u32,
}
