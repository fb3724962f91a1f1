//! [`ChainState`]: the UTXO set (in the block store) plus the mempool, and every operation that must see both.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use chain::ledger::{
    connect_block, finish_coinbase, validate_transaction, BlockDelta, LedgerContext, OverlayView,
    RefusePegins, TxRejection, UtxoView,
};
use chain::mempool::{AcceptedTx, Mempool, MempoolLimits};
use elements::{Block, BlockHash, BlockHeader, Transaction};
use tokio::sync::mpsc;

use super::context::{LedgerRules, TimeWindow};
use crate::storage::{BlockStore, StoreError};

/// Room left in a block template for the header, the transaction count and the coinbase.
const COINBASE_RESERVE_WEIGHT: usize = 8_000;
/// Largest template weight: a block travels inside one consensus message (4 MiB cap), and a block's size in bytes
/// never exceeds its weight, so 3.9 M weight units always fit with the message's own fields.
pub const MAX_TEMPLATE_WEIGHT: usize = 3_900_000;
/// Mempool transactions older than this are dropped (bitcoind's default `-mempoolexpiry`, 336 hours).
const MEMPOOL_EXPIRY_MS: u64 = 336 * 3600 * 1000;
/// How many validated block hashes are remembered (a proposal validated at prevote time is not validated again
/// when it is stored).
const VALIDATED_CACHE: usize = 64;

/// Why the ledger could not take a block.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A block breaks the ledger rules.
    #[error("block {hash} at height {height} is invalid: {reason}")]
    InvalidBlock {
        /// Its height.
        height: u32,
        /// Its hash.
        hash: BlockHash,
        /// Why.
        reason: String,
    },
}

/// The node's ledger: the stored UTXO set at the tip and the mempool on top of it.
pub struct ChainState {
    store: Arc<BlockStore>,
    rules: LedgerRules,
    mempool: Mutex<Mempool>,
    validated: Mutex<VecDeque<BlockHash>>,
    relay: mpsc::Sender<Transaction>,
}

impl std::fmt::Debug for ChainState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainState")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere; the data behind these locks is rebuilt from validated inputs.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_secs() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl ChainState {
    /// The ledger over `store` with an empty mempool. Transactions accepted through [`ChainState::submit`] are
    /// queued on the returned receiver for relay to the other members.
    pub fn new(
        store: Arc<BlockStore>,
        params: &chain::FederationParams,
        limits: MempoolLimits,
    ) -> (Arc<Self>, mpsc::Receiver<Transaction>) {
        let (relay, relay_rx) = mpsc::channel(10_000);
        let state = ChainState {
            store,
            rules: LedgerRules::new(params),
            mempool: Mutex::new(Mempool::new(limits)),
            validated: Mutex::new(VecDeque::new()),
            relay,
        };
        (Arc::new(state), relay_rx)
    }

    /// The block store.
    pub fn store(&self) -> &Arc<BlockStore> {
        &self.store
    }

    /// The mempool (locked).
    pub fn mempool(&self) -> MutexGuard<'_, Mempool> {
        lock(&self.mempool)
    }

    /// The context of the next block after the stored tip, with header time `block_time`.
    fn next_context(&self, block_time: u32) -> Result<(LedgerContext, BlockHeader), StoreError> {
        let tip = self.store.tip_header()?;
        let window = TimeWindow::ending_at(&self.store, tip.height)?;
        let ctx = self
            .rules
            .context(tip.height.saturating_add(1), block_time, window.median());
        Ok((ctx, tip))
    }

    /// Context for mempool admission: the next block, at the later of now and the tip's time.
    fn mempool_context(&self) -> Result<LedgerContext, TxRejection> {
        let tip_time = self
            .store
            .tip_header()
            .map_err(|e| chain::ledger::UtxoLookupError(e.to_string()))?
            .time;
        self.next_context(now_secs().max(tip_time))
            .map(|(ctx, _)| ctx)
            .map_err(|e| TxRejection::Lookup(chain::ledger::UtxoLookupError(e.to_string())))
    }

    /// Refuses a transaction that is already in a block.
    fn refuse_confirmed(&self, tx: &Transaction) -> Result<(), TxRejection> {
        let txid = tx.txid();
        match self.store.contains_transaction(&txid) {
            Ok(false) => Ok(()),
            Ok(true) => Err(TxRejection::AlreadyKnown {
                reason: "txn-already-known",
            }),
            Err(e) => Err(TxRejection::Lookup(chain::ledger::UtxoLookupError(
                e.to_string(),
            ))),
        }
    }

    /// Validates `tx` against the tip and the mempool and adds it to the mempool (no relay).
    pub fn accept(&self, tx: Transaction) -> Result<AcceptedTx, TxRejection> {
        self.refuse_confirmed(&tx)?;
        let ctx = self.mempool_context()?;
        let store: &BlockStore = &self.store;
        let mut mempool = lock(&self.mempool);
        mempool.accept(tx, now_ms(), store, |view, tx| {
            validate_transaction(&ctx, &view, &RefusePegins, tx)
        })
    }

    /// [`ChainState::accept`], then queues the transaction for relay to the other members.
    pub fn submit(&self, tx: Transaction) -> Result<AcceptedTx, TxRejection> {
        let accepted = self.accept(tx.clone())?;
        if self.relay.try_send(tx).is_err() {
            tracing::warn!(target: "ledger", txid = %accepted.txid,
                "relay queue full: transaction accepted locally but not relayed now");
        }
        Ok(accepted)
    }

    /// The checks of [`ChainState::accept`] without changing the mempool.
    pub fn test_accept(&self, tx: &Transaction) -> Result<AcceptedTx, TxRejection> {
        self.refuse_confirmed(tx)?;
        let ctx = self.mempool_context()?;
        let store: &BlockStore = &self.store;
        let mempool = lock(&self.mempool);
        mempool.test_accept(tx, store, |view, tx| {
            validate_transaction(&ctx, &view, &RefusePegins, tx)
        })
    }

    fn remember_valid(&self, hash: BlockHash) {
        let mut validated = lock(&self.validated);
        if validated.len() == VALIDATED_CACHE {
            validated.pop_front();
        }
        validated.push_back(hash);
    }

    fn known_valid(&self, hash: &BlockHash) -> bool {
        lock(&self.validated).contains(hash)
    }

    /// The ledger rules for a block whose parent is the stored tip: every transaction valid in order, no double
    /// spend, the coinbase claiming at most the fees, the witness commitment. A block validated before (same hash,
    /// hence same parent) is not validated again.
    pub fn validate_block(&self, block: &Block) -> Result<(), String> {
        let hash = block.block_hash();
        if self.known_valid(&hash) {
            return Ok(());
        }
        let (ctx, tip) = self
            .next_context(block.header.time)
            .map_err(|e| format!("cannot read the chain to validate block {hash}: {e}"))?;
        if block.header.prev_blockhash != tip.block_hash() {
            return Err(format!(
                "block {hash} does not extend the stored tip {}",
                tip.block_hash()
            ));
        }
        self.warm_in_parallel(&ctx, block);
        let store: &BlockStore = &self.store;
        connect_block(&ctx, &store, &RefusePegins, block).map_err(|e| e.to_string())?;
        self.remember_valid(hash);
        Ok(())
    }

    /// Verifies the proofs and scripts of `block`'s transactions on all cores first (they are independent), so
    /// that the sequential [`connect_block`] finds them in the cache. Changes no verdict (only successes are
    /// cached); transactions whose spent outputs cannot be found here (peg-ins, outputs of an earlier block of the
    /// same batch) are left to the sequential pass.
    fn warm_in_parallel(&self, ctx: &LedgerContext, block: &Block) {
        let threads = std::thread::available_parallelism()
            .map(std::num::NonZeroUsize::get)
            .unwrap_or(1)
            .min(8);
        let transactions: Vec<&Transaction> = block.txdata.iter().skip(1).collect();
        if threads < 2 || transactions.len() < 4 {
            return;
        }
        let mut created: std::collections::HashMap<elements::OutPoint, &elements::TxOut> =
            std::collections::HashMap::new();
        for tx in &block.txdata {
            let txid = tx.txid();
            for (vout, out) in (0u32..).zip(&tx.output) {
                created.insert(elements::OutPoint::new(txid, vout), out);
            }
        }
        let store: &BlockStore = &self.store;
        let created = &created;
        let chunk = transactions.len().div_ceil(threads);
        std::thread::scope(|scope| {
            for part in transactions.chunks(chunk) {
                scope.spawn(move || {
                    for tx in part {
                        let spent: Option<Vec<elements::TxOut>> = tx
                            .input
                            .iter()
                            .map(|input| {
                                if input.is_pegin {
                                    return None;
                                }
                                match created.get(&input.previous_output) {
                                    Some(out) => Some((*out).clone()),
                                    None => store
                                        .utxo(&input.previous_output)
                                        .ok()
                                        .flatten()
                                        .map(|utxo| utxo.txout),
                                }
                            })
                            .collect();
                        if let Some(spent) = spent {
                            chain::ledger::warm_proof_cache(ctx, tx, &spent);
                        }
                    }
                });
            }
        });
    }

    /// Checks the ledger rules of consecutive final blocks on top of the stored tip before they are stored (each
    /// over the UTXO set the previous ones leave). A final block that breaks them means this member disagrees
    /// with m others: the error names the block, and the caller stops rather than store it.
    pub fn check_final_blocks(&self, blocks: &[Block]) -> Result<(), LedgerError> {
        let Some(first) = blocks.first() else {
            return Ok(());
        };
        let parent_height = first.header.height.saturating_sub(1);
        let mut window = TimeWindow::ending_at(&self.store, parent_height)?;
        let store: &BlockStore = &self.store;
        let mut view = OverlayView::new(store);
        for block in blocks {
            let hash = block.block_hash();
            let height = block.header.height;
            let ctx = self
                .rules
                .context(height, block.header.time, window.median());
            let delta = if blocks.len() == 1 && self.known_valid(&hash) {
                None
            } else {
                self.warm_in_parallel(&ctx, block);
                Some(
                    connect_block(&ctx, &view, &RefusePegins, block).map_err(|e| {
                        LedgerError::InvalidBlock {
                            height,
                            hash,
                            reason: e.to_string(),
                        }
                    })?,
                )
            };
            if let Some(delta) = delta {
                apply_delta(&mut view, &delta);
            }
            window.push(block.header.time);
        }
        Ok(())
    }

    /// Updates the mempool after `blocks` were stored: their transactions leave it, conflicting ones are dropped,
    /// the rest are re-validated for the next block.
    pub fn blocks_stored(&self, blocks: &[Block]) {
        let ctx = match self.mempool_context() {
            Ok(ctx) => ctx,
            Err(e) => {
                tracing::error!(target: "ledger", error = %e, "cannot read the tip to update the mempool");
                return;
            }
        };
        let store: &BlockStore = &self.store;
        let mut mempool = lock(&self.mempool);
        for block in blocks {
            let dropped = mempool.block_connected(block, store, |view, tx| {
                validate_transaction(&ctx, &view, &RefusePegins, tx)
            });
            for (txid, reason) in dropped {
                tracing::info!(target: "ledger", %txid, %reason, height = block.header.height,
                    "mempool transaction dropped after a block");
            }
        }
        let expired = mempool.remove_older_than(now_ms().saturating_sub(MEMPOOL_EXPIRY_MS));
        if !expired.is_empty() {
            tracing::info!(target: "ledger", count = expired.len(), "expired mempool transactions dropped");
        }
    }

    /// A new block on `parent` (the stored tip) at `time`, filled from the mempool by fee rate, its coinbase
    /// claiming the fees. The block is validated like anyone else's before it is returned; if that fails (a bug),
    /// an empty block is proposed instead and the error is logged.
    pub fn build_block(
        &self,
        params: &chain::FederationParams,
        parent: &BlockHeader,
        time: u32,
    ) -> Block {
        let empty = || {
            let mut block = chain::build_block(params, parent, time);
            let ctx = self.rules.context(block.header.height, time, 0);
            finish_coinbase(&mut block, &ctx, 0);
            block.header.merkle_root = chain::merkle_root(&block.txdata);
            block
        };
        let ctx = match self.next_context(time) {
            Ok((ctx, tip)) if tip.block_hash() == parent.block_hash() => ctx,
            Ok((_, tip)) => {
                tracing::error!(target: "ledger", parent = %parent.block_hash(), tip = %tip.block_hash(),
                    "asked to build on a block that is not the stored tip; proposing an empty block");
                return empty();
            }
            Err(e) => {
                tracing::error!(target: "ledger", error = %e, "cannot read the chain; proposing an empty block");
                return empty();
            }
        };
        let max_weight = MAX_TEMPLATE_WEIGHT.saturating_sub(COINBASE_RESERVE_WEIGHT);
        let template = lock(&self.mempool).template(max_weight);
        let mut block = chain::build_block(params, parent, time);
        let count = template.transactions.len();
        block.txdata.extend(template.transactions);
        finish_coinbase(&mut block, &ctx, template.total_fee);
        block.header.merkle_root = chain::merkle_root(&block.txdata);
        match self.validate_block(&block) {
            Ok(()) => {
                tracing::debug!(target: "ledger", height = block.header.height, transactions = count,
                    fees = template.total_fee, weight = template.total_weight, "block template built");
                block
            }
            Err(reason) => {
                tracing::error!(target: "ledger", %reason, transactions = count,
                    "our own block template is invalid; proposing an empty block");
                empty()
            }
        }
    }
}

/// Applies a connected block's changes to an overlay (the next block of a batch sees them).
fn apply_delta<V: UtxoView>(view: &mut OverlayView<V>, delta: &BlockDelta) {
    for outpoint in &delta.spent {
        view.spend(*outpoint);
    }
    for (outpoint, utxo) in &delta.created {
        view.create(*outpoint, utxo.clone());
    }
}
