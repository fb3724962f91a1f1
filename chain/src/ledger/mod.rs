//! The sidechain ledger: transaction and block validation against a UTXO view.
//!
//! Pure: no IO. The UTXO set itself lives in the daemon's RocksDB store (`functionary::storage`); this module
//! reads it through [`UtxoView`] and returns what a block changes as a [`BlockDelta`], which the store writes in
//! the same synced batch as the block.
//!
//! Files, one job each:
//! - `utxo.rs`: [`Utxo`], [`UtxoView`], [`OverlayView`] (a view plus pending spends/creations);
//! - `context.rs`: [`LedgerContext`] (height, time cutoffs, policy asset, genesis hashes);
//! - `rejection.rs`: [`TxRejection`] (why a transaction is invalid, with Elements' reject reason strings);
//! - `tx_check.rs`: context-free checks ([`check_transaction`]);
//! - `tx_validate.rs`: contextual checks against a view ([`validate_transaction`] → [`ValidatedTx`]);
//! - `confidential.rs`: value/asset balance, rangeproofs and surjection proofs;
//! - `issuance.rs`: issuance and reissuance (asset ids, reissuance tokens, the token-spend rule);
//! - `pegout.rs`: peg-out output recognition ([`PegoutRecord`]);
//! - `locktime.rs`: lock time and BIP68 sequence locks;
//! - `scripts.rs`: input script verification through elements-miniscript's interpreter ([`verify_input_scripts`]);
//! - `proof_cache.rs`: verified range and surjection proofs remembered (checked once per process);
//! - `block_connect.rs`: whole-block rules (coinbase, fees, witness commitment, no double spend) → [`BlockDelta`].

mod block_connect;
mod confidential;
mod context;
mod issuance;
mod locktime;
mod pegout;
mod proof_cache;
mod rejection;
mod scripts;
mod tx_check;
mod tx_validate;
mod utxo;

pub use block_connect::*;
pub use confidential::*;
pub use context::*;
pub use issuance::*;
pub use locktime::*;
pub use pegout::*;
pub use proof_cache::{clear_proof_cache, warm_proof_cache};
pub use rejection::*;
pub use scripts::*;
pub use tx_check::*;
pub use tx_validate::*;
pub use utxo::*;
