//! Serves block ranges to peers from the block store.

use std::sync::Arc;

use crate::p2p::BlockSource;
use crate::storage::BlockStore;

/// [`BlockSource`] over the RocksDB store.
pub struct StoreBlockSource(pub Arc<BlockStore>);

impl BlockSource for StoreBlockSource {
    fn blocks_from(&self, start_height: u32, max_count: u32, max_bytes: usize) -> Vec<Vec<u8>> {
        match self.0.raw_blocks_from(start_height, max_count, max_bytes) {
            Ok(blocks) => blocks,
            Err(e) => {
                tracing::error!(target: "daemon", error = %e, start_height, "reading blocks for a peer failed");
                Vec::new()
            }
        }
    }
}
