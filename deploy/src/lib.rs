//! Local federations on one machine: the devnet (the project's main job) and the multi-process tests share this.
//!
//! A federation directory holds one data dir per member (its own SoftHSM token directory and PIN files, its
//! `node.toml`, its copy of `federation.toml`, RocksDB and signer journal) plus `devnet.json`, which records the
//! layout so that running again reuses the same keys, ports and chain.

pub mod layout;
pub mod process;
pub mod rpc;
pub mod setup;

pub use layout::{FederationLayout, FederationSpec, MemberLayout};
pub use process::{Binaries, MemberProcess};
pub use setup::{create, create_or_reuse, open};
