//! The node's ledger at the IO edge: the UTXO set in the block store, the mempool, block templates, and the
//! checks that keep both consistent with the final chain.
//!
//! - [`ChainState`]: shared (`Arc`) by the event loop, the RPC server and the block content;
//! - `context.rs`: the [`chain::ledger::LedgerContext`] of a block, from the stored chain (BIP113 median time);
//! - `content.rs`: [`LedgerBlockContent`], the `blocksigner::BlockContent` proposers build with and members
//!   validate proposals with;
//! - `rpc_source.rs`: `rpc::ledger_source::LedgerRpcSource` for `sendrawtransaction` and the mempool RPCs;
//! - `relay.rs`: transaction relay frames between members.

mod chain_state;
mod content;
mod context;
pub mod relay;
mod rpc_source;

pub use chain_state::{ChainState, LedgerError};
pub use content::LedgerBlockContent;
pub use context::{LedgerRules, TimeWindow, COINBASE_MATURITY, REGTEST_GENESIS_INTERNAL};
