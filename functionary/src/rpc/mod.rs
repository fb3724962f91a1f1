//! JSON-RPC server with Elements-compatible method names (`getblockchaininfo`, `getblock`, ...), protected by
//! HTTP basic auth with a cookie file like bitcoind/elementsd.
//!
//! - [`start`] binds the address, writes `<data_dir>/.cookie` (mode 0600), serves until the shutdown watch turns
//!   `true` (the `stop` method sets it), then deletes the cookie.
//! - [`jsonrpc`] turns request bodies (single requests and batches) into replies with bitcoind's error codes and
//!   HTTP statuses; [`methods`] implements the methods over the [`RpcContext`].

mod blockjson;
mod cookie;
mod faults;
pub mod jsonrpc;
pub mod ledger_source;
mod mempool_methods;
pub mod methods;
mod params;
pub mod scriptjson;
mod server;
mod sidechain_methods;
mod tx_methods;
pub mod txjson;
mod utxo_methods;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use cookie::COOKIE_USER;
pub use server::{start, RpcServer, MAX_REQUEST_BODY_BYTES};

/// What the daemon provides to the RPC layer.
pub struct RpcContext {
    /// The node's block store.
    pub store: Arc<crate::storage::BlockStore>,
    /// The federation's block-signing parameters.
    pub params: Arc<chain::FederationParams>,
    /// Member names, by member index (the sorted key order of the signblockscript).
    pub member_names: Vec<String>,
    /// `getfederationinfo`'s body, built by the daemon (config hash, members, peer ids, interval, ...).
    pub federation_info: serde_json::Value,
    /// Live node status (peers, consensus state).
    pub status: Arc<dyn NodeStatusSource>,
    /// Shutdown signal: the `stop` method sets it to `true`; the server stops when it becomes `true`.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// The mempool and transaction submission.
    pub ledger: Arc<dyn ledger_source::LedgerRpcSource>,
}

/// Live status the daemon exposes to the RPC layer.
pub trait NodeStatusSource: Send + Sync + 'static {
    /// `getpeerinfo`'s array.
    fn peer_info(&self) -> serde_json::Value;
    /// Consensus state, merged into `getfederationinfo` as `"consensus"`.
    fn consensus_info(&self) -> serde_json::Value;
}

/// Why the RPC server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The listen address could not be bound (in use, not local, no permission).
    #[error("cannot bind the RPC server to {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The cookie file could not be written.
    #[error("cannot write the RPC cookie file {path}: {source}")]
    Cookie {
        /// The cookie file's path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bound socket's address could not be read.
    #[error("cannot read the RPC server's local address: {0}")]
    LocalAddr(std::io::Error),
}
