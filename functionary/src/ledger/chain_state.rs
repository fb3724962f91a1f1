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
/// Longest a proposer waits for the mempool while building a block.
const MEMPOOL_WAIT: std::time::Duration = std::time::Duration::from_millis(50);
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
    /// Blocks consensus finalized that are not stored yet, oldest first (header, txids, UTXO changes): a proposal
    /// for the next height can arrive (and a proposer can build) before the store catches up.
    pending: Mutex<Vec<PendingBlock>>,
    relay: mpsc::Sender<Transaction>,
    /// Stored blocks for the mempool worker thread, which re-validates the mempool off the event loop.
    mempool_updates: Mutex<Option<std::sync::mpsc::Sender<Vec<Block>>>>,
}

/// A final block not yet in the store.
#[derive(Debug, Clone)]
struct PendingBlock {
    header: BlockHeader,
    txids: std::collections::HashSet<elements::Txid>,
    changes: chain::ledger::UtxoChanges,
}

/// The chain as the next block sees it: the store plus the pending final blocks.
struct NextBlockView<'a> {
    parent: BlockHeader,
    window: TimeWindow,
    utxos: OverlayView<&'a BlockStore>,
    pending_txids: std::collections::HashSet<elements::Txid>,
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
            pending: Mutex::new(Vec::new()),
            relay,
            mempool_updates: Mutex::new(None),
        };
        let state = Arc::new(state);
        // The mempool follows stored blocks on its own thread, in order; it holds only a weak reference, and
        // stops when the chain state is dropped (its sender goes with it).
        let (updates, updates_rx) = std::sync::mpsc::channel::<Vec<Block>>();
        let weak = Arc::downgrade(&state);
        let spawned = std::thread::Builder::new()
            .name("mempool".into())
            .spawn(move || {
                while let Ok(blocks) = updates_rx.recv() {
                    let Some(state) = weak.upgrade() else { break };
                    state.update_mempool(&blocks);
                }
            });
        match spawned {
            Ok(_) => *lock(&state.mempool_updates) = Some(updates),
            Err(e) => tracing::error!(target: "ledger", error = %e,
                "cannot start the mempool thread; the mempool is updated on the caller's thread"),
        }
        (state, relay_rx)
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
        self.warm_outside_the_lock(&tx);
        let store: &BlockStore = &self.store;
        let mut mempool = lock(&self.mempool);
        let ctx = self.mempool_context()?;
        mempool.accept(tx, now_ms(), store, |view, tx| {
            validate_transaction(&ctx, &view, &RefusePegins, tx)
        })
    }

    /// Verifies `tx`'s proofs and scripts before the mempool lock is taken (the lock is then held only for the
    /// cheap checks): the outputs it spends are looked up under a brief lock, verification runs without it.
    fn warm_outside_the_lock(&self, tx: &Transaction) {
        // Proofs and scripts read only the chain-wide rules (policy asset, genesis hash), not the height or time:
        // no need to read the chain for them.
        let ctx = self.rules.context(0, 0, 0);
        let spent: Option<Vec<elements::TxOut>> = {
            let mempool = lock(&self.mempool);
            let store: &BlockStore = &self.store;
            let view = chain::mempool::MempoolView::new(store, &mempool);
            tx.input
                .iter()
                .map(|input| {
                    if input.is_pegin {
                        return None;
                    }
                    view.utxo(&input.previous_output)
                        .ok()
                        .flatten()
                        .map(|utxo| utxo.txout)
                })
                .collect()
        };
        if let Some(spent) = spent {
            chain::ledger::warm_proof_cache(&ctx, tx, &spent);
        }
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
        self.warm_outside_the_lock(tx);
        let store: &BlockStore = &self.store;
        let mempool = lock(&self.mempool);
        let ctx = self.mempool_context()?;
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

    /// Consensus finalized `block` (it will be stored next): until then, blocks at the next height are built
    /// and validated on top of it.
    pub fn block_finalized(&self, block: &Block) {
        let entry = PendingBlock {
            header: block.header.clone(),
            txids: block.txdata.iter().map(Transaction::txid).collect(),
            changes: chain::ledger::block_utxo_changes(block),
        };
        lock(&self.pending).push(entry);
    }

    /// The parent, time window and UTXO view of the next block: the stored tip plus the pending final blocks.
    fn next_block_view(&self) -> Result<NextBlockView<'_>, StoreError> {
        let pending = lock(&self.pending).clone();
        let tip = self.store.tip_header()?;
        let mut window = TimeWindow::ending_at(&self.store, tip.height)?;
        let store: &BlockStore = &self.store;
        let mut utxos = OverlayView::new(store);
        let mut parent = tip;
        let mut pending_txids = std::collections::HashSet::new();
        for block in pending {
            // Entries at or below the stored tip are stored already (blocks_stored removes them right after).
            if block.header.height <= parent.height {
                continue;
            }
            for outpoint in &block.changes.spent {
                utxos.spend(*outpoint);
            }
            for (outpoint, utxo) in &block.changes.created {
                utxos.create(*outpoint, utxo.clone());
            }
            window.push(block.header.time);
            pending_txids.extend(block.txids.iter().copied());
            parent = block.header;
        }
        Ok(NextBlockView {
            parent,
            window,
            utxos,
            pending_txids,
        })
    }

    /// The ledger rules for a block whose parent is the chain's tip (stored, or finalized and about to be stored):
    /// every transaction valid in order, no double spend, the coinbase claiming at most the fees, the witness
    /// commitment. A block validated before (same hash: given the context-free body checks, the same bytes) is
    /// not validated again. `Unavailable` when the parent is unknown here or the store cannot be read (the block
    /// is then not condemned).
    pub fn validate_block(&self, block: &Block) -> Result<(), blocksigner::ContentError> {
        use blocksigner::ContentError;
        let hash = block.block_hash();
        if self.known_valid(&hash) {
            return Ok(());
        }
        let next = self.next_block_view().map_err(|e| {
            ContentError::Unavailable(format!(
                "cannot read the chain to validate block {hash}: {e}"
            ))
        })?;
        if block.header.prev_blockhash != next.parent.block_hash() {
            return Err(ContentError::Unavailable(format!(
                "block {hash} does not extend this member's tip {}",
                next.parent.block_hash()
            )));
        }
        let ctx = self.rules.context(
            next.parent.height.saturating_add(1),
            block.header.time,
            next.window.median(),
        );
        self.warm_in_parallel(&ctx, block, &next.utxos);
        match connect_block(&ctx, &next.utxos, &RefusePegins, block) {
            Ok(_) => {
                self.remember_valid(hash);
                Ok(())
            }
            Err(e) if e.is_internal() => Err(ContentError::Unavailable(e.to_string())),
            Err(e) => Err(ContentError::Invalid(e.to_string())),
        }
    }

    /// Verifies the proofs and scripts of `block`'s transactions on all cores first (they are independent), so
    /// that the sequential [`connect_block`] finds them in the cache. Changes no verdict (only successes are
    /// cached); transactions whose spent outputs cannot be found here (peg-ins, outputs of an earlier block of the
    /// same batch) are left to the sequential pass.
    fn warm_in_parallel(&self, ctx: &LedgerContext, block: &Block, view: &(dyn UtxoView + Sync)) {
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
                                    None => view
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
                self.warm_in_parallel(&ctx, block, &view);
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
        {
            let stored: std::collections::HashSet<BlockHash> =
                blocks.iter().map(Block::block_hash).collect();
            lock(&self.pending).retain(|p| !stored.contains(&p.header.block_hash()));
        }
        let worker = lock(&self.mempool_updates).clone();
        match worker {
            Some(worker) if worker.send(blocks.to_vec()).is_ok() => {}
            _ => self.update_mempool(blocks),
        }
    }

    /// The mempool side of [`ChainState::blocks_stored`] (on the mempool thread).
    fn update_mempool(&self, blocks: &[Block]) {
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
        let next = match self.next_block_view() {
            Ok(next) if next.parent.block_hash() == parent.block_hash() => next,
            Ok(next) => {
                tracing::error!(target: "ledger", parent = %parent.block_hash(), tip = %next.parent.block_hash(),
                    "asked to build on a block that is not this member's tip; proposing an empty block");
                return empty();
            }
            Err(e) => {
                tracing::error!(target: "ledger", error = %e, "cannot read the chain; proposing an empty block");
                return empty();
            }
        };
        let ctx = self
            .rules
            .context(parent.height.saturating_add(1), time, next.window.median());
        let max_weight = MAX_TEMPLATE_WEIGHT.saturating_sub(COINBASE_RESERVE_WEIGHT);
        let (template, template_fees) = {
            // The mempool thread may be re-validating after a block: wait a little, never long (a proposal
            // without transactions is better than a late one).
            let deadline = std::time::Instant::now() + MEMPOOL_WAIT;
            let mempool = loop {
                match self.mempool.try_lock() {
                    Ok(guard) => break Some(guard),
                    Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                        break Some(poisoned.into_inner())
                    }
                    Err(std::sync::TryLockError::WouldBlock)
                        if std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    Err(std::sync::TryLockError::WouldBlock) => break None,
                }
            };
            let Some(mempool) = mempool else {
                tracing::warn!(target: "ledger", "mempool busy (re-validating after a block); proposing without transactions");
                let mut block = chain::build_block(params, parent, time);
                finish_coinbase(&mut block, &ctx, 0);
                block.header.merkle_root = chain::merkle_root(&block.txdata);
                return block;
            };
            let template = mempool.template(max_weight);
            let fees: Vec<u64> = template
                .transactions
                .iter()
                .map(|tx| mempool.entry(&tx.txid()).map_or(0, |entry| entry.fee))
                .collect();
            (template, fees)
        };
        // Transactions of a final block not yet stored (the mempool learns of it when it is stored) are left out,
        // and so is anything spending what such a block spent.
        let mut fees = 0u64;
        let mut transactions = Vec::with_capacity(template.transactions.len());
        let mut left_out: std::collections::HashSet<elements::Txid> = Default::default();
        for (tx, fee) in template.transactions.into_iter().zip(template_fees) {
            let txid = tx.txid();
            let conflicts = next.pending_txids.contains(&txid)
                || tx.input.iter().any(|input| {
                    left_out.contains(&input.previous_output.txid)
                        || (!input.is_pegin && next.utxos.is_spent(&input.previous_output))
                });
            if conflicts {
                left_out.insert(txid);
                continue;
            }
            fees = fees.saturating_add(fee);
            transactions.push(tx);
        }
        let mut block = chain::build_block(params, parent, time);
        let count = transactions.len();
        block.txdata.extend(transactions);
        finish_coinbase(&mut block, &ctx, fees);
        block.header.merkle_root = chain::merkle_root(&block.txdata);
        match self.validate_block(&block) {
            Ok(()) => {
                tracing::debug!(target: "ledger", height = block.header.height, transactions = count,
                    fees, "block template built");
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
