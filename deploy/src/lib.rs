//! Local federations on one machine: the devnet (the project's main job) and the multi-process tests share this.
//!
//! A federation directory holds one data dir per member (its own SoftHSM token directory and PIN files, its
//! `node.toml`, its copy of `federation.toml`, RocksDB, the signer journal and the signer's socket) plus
//! `devnet.json`, which records the layout so that running again reuses the same keys, ports and chain. Each
//! member runs as two processes: `functionary-signer` (token, PIN, journal) and `functionaryd` (network, storage).

pub mod faucet;
pub mod layout;
pub mod process;
pub mod rpc;
pub mod setup;

pub use faucet::{DEVNET_FAUCET_AMOUNT, DEVNET_FAUCET_LABEL};
pub use layout::{FederationLayout, FederationSpec, MemberLayout};
pub use process::{Binaries, MemberProcess, SignerProcess};
pub use setup::{create, create_or_reuse, open};
