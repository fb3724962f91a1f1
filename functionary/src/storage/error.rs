//! The error type of the block store.

use std::path::PathBuf;

use elements::BlockHash;

/// Why a block-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another handle in this process) has the database open.
    #[error("block store {} is locked: another functionaryd (or another handle) has it open ({message})", path.display())]
    Locked {
        /// Database directory.
        path: PathBuf,
        /// RocksDB's message.
        message: String,
    },
    /// The database could not be opened for another reason.
    #[error("cannot open block store {}: {message}", path.display())]
    Open {
        /// Database directory.
        path: PathBuf,
        /// RocksDB's message.
        message: String,
    },
    /// A read or write failed inside RocksDB.
    #[error("block store database error: {0}")]
    Db(String),
    /// The data dir holds another chain's data.
    #[error("block store holds genesis {stored} but this federation's genesis is {expected}: the data dir belongs to another chain")]
    GenesisMismatch {
        /// Genesis hash found in the store.
        stored: BlockHash,
        /// Genesis hash of the configured federation.
        expected: BlockHash,
    },
    /// The genesis block given to `init_genesis` does not have height 0.
    #[error("genesis block {hash} has height {height}, expected 0")]
    InvalidGenesis {
        /// Its hash.
        hash: BlockHash,
        /// Its height.
        height: u32,
    },
    /// The block does not extend the current tip.
    #[error("block {hash} (height {height}, parent {prev}) does not extend the tip {tip_hash} at height {tip_height}")]
    NotChild {
        /// Hash of the refused block.
        hash: BlockHash,
        /// Its height.
        height: u32,
        /// Its parent hash.
        prev: BlockHash,
        /// Current tip height.
        tip_height: u32,
        /// Current tip hash.
        tip_hash: BlockHash,
    },
    /// The block (or its height) is already stored; blocks are never overwritten.
    #[error("block {hash} at height {height} is already stored; refusing to overwrite")]
    AlreadyStored {
        /// Hash of the refused block.
        hash: BlockHash,
        /// Its height.
        height: u32,
    },
    /// The store has no genesis yet.
    #[error("block store is not initialised (no genesis block stored)")]
    NotInitialised,
    /// The store was written by an incompatible version of this software.
    #[error(
        "block store schema version {found} is not supported (this build reads version {expected})"
    )]
    SchemaVersion {
        /// Version found.
        found: u32,
        /// Version this build reads and writes.
        expected: u32,
    },
    /// Stored bytes do not decode or are inconsistent.
    #[error("corrupt block store: {what}")]
    Corrupt {
        /// What is wrong.
        what: String,
    },
}

impl From<rocksdb::Error> for StoreError {
    fn from(e: rocksdb::Error) -> Self {
        StoreError::Db(e.into_string())
    }
}
