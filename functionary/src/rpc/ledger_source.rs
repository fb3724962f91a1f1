//! What the RPC layer needs from the node's ledger besides the block store: the mempool and transaction
//! submission. The daemon implements it over its `ChainState` (mempool + UTXO set + relay); RPC tests may use a
//! double. Confirmed transactions and UTXOs are read from the store directly ([`super::RpcContext::store`]).

use chain::ledger::TxRejection;
use elements::{OutPoint, Transaction, Txid};

/// A mempool transaction's numbers (`getmempoolentry`, `getrawmempool true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolEntryInfo {
    /// Fee in the policy asset, satoshis.
    pub fee: u64,
    /// Virtual size.
    pub vsize: usize,
    /// Weight.
    pub weight: usize,
    /// When it entered the mempool, ms since the Unix epoch.
    pub time_ms: u64,
    /// Mempool transactions it spends outputs of.
    pub depends: Vec<Txid>,
    /// Mempool transactions spending its outputs.
    pub spent_by: Vec<Txid>,
}

/// `getmempoolinfo`'s numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MempoolSummary {
    /// Transactions.
    pub size: usize,
    /// Sum of virtual sizes.
    pub bytes: usize,
    /// Sum of weights (our measure of memory use).
    pub usage: usize,
    /// Sum of fees, satoshis.
    pub total_fee: u64,
    /// The cap on `usage`.
    pub max_usage: usize,
    /// The lowest fee rate admitted now, sat per 1000 vbytes.
    pub min_fee_rate: u64,
    /// The relay minimum, sat per 1000 vbytes.
    pub min_relay_fee_rate: u64,
}

/// A transaction that would be (or was) accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedInfo {
    /// Its txid.
    pub txid: Txid,
    /// Its wtxid.
    pub wtxid: elements::Wtxid,
    /// Fee in the policy asset, satoshis.
    pub fee: u64,
    /// Virtual size.
    pub vsize: usize,
}

/// The node's ledger as the RPC layer sees it.
pub trait LedgerRpcSource: Send + Sync + 'static {
    /// Validates `tx` against the tip and the mempool, adds it to the mempool and relays it to the other members
    /// (`sendrawtransaction`). A transaction already in a block is [`TxRejection::AlreadyKnown`].
    fn submit(&self, tx: Transaction) -> Result<AcceptedInfo, TxRejection>;
    /// The same checks without adding it (`testmempoolaccept`).
    fn test_accept(&self, tx: &Transaction) -> Result<AcceptedInfo, TxRejection>;
    /// A mempool transaction.
    fn mempool_transaction(&self, txid: &Txid) -> Option<Transaction>;
    /// Mempool txids, highest fee rate first.
    fn mempool_txids(&self) -> Vec<Txid>;
    /// A mempool transaction's numbers.
    fn mempool_entry(&self, txid: &Txid) -> Option<MempoolEntryInfo>;
    /// The mempool's totals.
    fn mempool_summary(&self) -> MempoolSummary;
    /// The mempool transaction spending `outpoint`, if any (`gettxout` with `include_mempool`).
    fn mempool_spender(&self, outpoint: &OutPoint) -> Option<Txid>;
    /// An output created by a mempool transaction and not spent in the mempool (`gettxout` with
    /// `include_mempool`).
    fn mempool_output(&self, outpoint: &OutPoint) -> Option<elements::TxOut>;
}
