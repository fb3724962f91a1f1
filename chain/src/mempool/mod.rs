//! The mempool: unconfirmed transactions waiting for a block, and the block template a proposer builds from them.
//!
//! Pure: no IO, no clocks (times come in as arguments), no validation of its own. Transactions are validated by a
//! closure the caller passes (normally calling `ledger::validate_transaction` with the next block's
//! [`LedgerContext`](crate::ledger::LedgerContext)) against the chain's UTXO view overlaid with the pool
//! ([`MempoolView`]), so chains of unconfirmed transactions are accepted parent first.
//!
//! Policy in one place (details on each item):
//! - **No replace-by-fee**: the first transaction seen wins; a conflicting one is refused with
//!   "txn-mempool-conflict" naming the pooled transaction. Why: RBF needs fee-bump rules, descendant accounting and
//!   pinning defences, and members relay every accepted transaction to each other at once, so their first-seen
//!   choices differ only while a conflict is in flight; the block that confirms one settles it everywhere;
//! - minimum relay fee rate, standard weight, ancestor/descendant limits ([`MempoolLimits`]);
//! - a size cap enforced by evicting the lowest descendant-fee-rate packages ([`Mempool::accept`]);
//! - re-validation of everything after each block ([`Mempool::block_connected`]);
//! - templates greedy by ancestor-package fee rate ([`Mempool::template`]).
//!
//! Files, one job each: `limits.rs` (limits and defaults), `fee_rate.rs` (exact rate comparison), `entry.rs` (one
//! pooled transaction), `pool.rs` (the pool, queries, graph bookkeeping), `view.rs` (chain + pool UTXO view),
//! `admission.rs` (accept / test_accept), `eviction.rs` (what to evict when full), `block_update.rs` (after a
//! block), `template.rs` (block templates).

mod admission;
mod block_update;
mod entry;
mod eviction;
mod fee_rate;
mod limits;
mod pool;
mod template;
mod view;

pub use admission::AcceptedTx;
pub use entry::MempoolEntry;
pub use fee_rate::{required_fee, PackageRate};
pub use limits::{
    MempoolLimits, DEFAULT_MAX_ANCESTORS, DEFAULT_MAX_DESCENDANTS, DEFAULT_MAX_TX_WEIGHT,
    DEFAULT_MAX_WEIGHT_TOTAL, DEFAULT_MIN_RELAY_FEE_RATE,
};
pub use pool::{Mempool, MempoolInfo};
pub use template::BlockTemplate;
pub use view::MempoolView;
