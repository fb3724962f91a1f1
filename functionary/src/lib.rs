//! The functionary daemon's library: configuration, storage, peer-to-peer transport, JSON-RPC and the wiring
//! that executes the consensus core's effects. See docs/ARCHITECTURE.md.

pub mod ceremony;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod ledger;
pub mod p2p;
pub mod process_support;
pub mod rpc;
pub mod signer_service;
pub mod storage;
