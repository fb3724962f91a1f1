//! The node's block store: final blocks of the chain in RocksDB on disk.
//!
//! Only blocks of the one main chain are stored (final blocks never fork). Every append writes the block, its
//! header, the height index and the tip in one synced write batch, so after a crash the store holds exactly the
//! blocks up to the stored tip. The ledger (UTXO set, transaction index, peg-out records) is updated in the same
//! batch, from the block's own contents (blocks are validated before they are stored). See [`layout`] for the
//! column families.

mod error;
pub mod layout;
mod ledger;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use elements::encode::{deserialize, serialize};
use elements::{Block, BlockHash, BlockHeader};
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};

pub use error::StoreError;
use layout::{
    decode_hash, decode_schema, decode_tip, encode_schema, encode_tip, hash_key, height_key,
    ALL_CFS, CF_BLOCKS, CF_HEADERS, CF_HEIGHTS, CF_META, META_CONSENSUS, META_GENESIS, META_SCHEMA,
    META_TIP, SCHEMA_VERSION,
};
use ledger::PendingLedger;

/// Final blocks by hash and height, plus the tip. `Send + Sync`: share it with `Arc`. Reads run concurrently;
/// appends are serialised by an internal lock so the tip check and the write are atomic.
pub struct BlockStore {
    db: DB,
    path: PathBuf,
    write_lock: Mutex<()>,
}

impl std::fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStore")
            .field("path", &self.path)
            .finish()
    }
}

impl BlockStore {
    /// Opens (creating if missing) the store in directory `path`. A store held open by another process or
    /// handle is [`StoreError::Locked`]; a store of another schema version is [`StoreError::SchemaVersion`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_keep_log_file_num(4);
        let descriptors = ALL_CFS
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
        let db = DB::open_cf_descriptors(&options, path, descriptors).map_err(|e| {
            let message = e.into_string();
            if message.to_ascii_lowercase().contains("lock") {
                StoreError::Locked {
                    path: path.to_path_buf(),
                    message,
                }
            } else {
                StoreError::Open {
                    path: path.to_path_buf(),
                    message,
                }
            }
        })?;
        let store = BlockStore {
            db,
            path: path.to_path_buf(),
            write_lock: Mutex::new(()),
        };
        if let Some(bytes) = store.db.get_cf(store.cf(CF_META)?, META_SCHEMA)? {
            let found = decode_schema(&bytes)?;
            if found == 1 {
                // Version 1 had no ledger: rebuild it from the blocks, then record the new version.
                store.rebuild_ledger()?;
                let mut batch = WriteBatch::default();
                batch.put_cf(store.cf(CF_META)?, META_SCHEMA, encode_schema()?);
                store.write_synced(batch)?;
            } else if found != SCHEMA_VERSION {
                return Err(StoreError::SchemaVersion {
                    found,
                    expected: SCHEMA_VERSION,
                });
            }
        }
        tracing::info!(target: "storage", path = %path.display(), "block store opened");
        Ok(store)
    }

    /// On an empty store, stores `genesis` as height 0 and tip. On an initialised store, checks that the stored
    /// genesis hash equals `genesis`'s hash ([`StoreError::GenesisMismatch`] otherwise).
    pub fn init_genesis(&self, genesis: &Block) -> Result<(), StoreError> {
        let hash = genesis.block_hash();
        if genesis.header.height != 0 {
            return Err(StoreError::InvalidGenesis {
                hash,
                height: genesis.header.height,
            });
        }
        let _guard = self.lock_writes();
        if let Some(stored) = self.db.get_cf(self.cf(CF_META)?, META_GENESIS)? {
            let stored = decode_hash(&stored, "stored genesis hash")?;
            if stored != hash {
                return Err(StoreError::GenesisMismatch {
                    stored,
                    expected: hash,
                });
            }
            return Ok(());
        }
        if self.db.get_cf(self.cf(CF_META)?, META_TIP)?.is_some() {
            return Err(StoreError::Corrupt {
                what: "a tip is stored but no genesis hash".into(),
            });
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META)?, META_SCHEMA, encode_schema()?);
        batch.put_cf(self.cf(CF_META)?, META_GENESIS, hash_key(&hash));
        self.add_block_to_batch(&mut batch, genesis, &hash, &mut PendingLedger::default())?;
        self.write_synced(batch)?;
        tracing::info!(target: "storage", genesis = %hash, "genesis stored");
        Ok(())
    }

    /// Appends `block` on top of the tip: its parent must be the tip and its height tip + 1
    /// ([`StoreError::NotChild`]); a block already stored is refused ([`StoreError::AlreadyStored`]). Block,
    /// header, height index and tip are written in one synced write batch.
    pub fn put_block(&self, block: &Block) -> Result<(), StoreError> {
        let hash = block.block_hash();
        let height = block.header.height;
        let _guard = self.lock_writes();
        if self
            .db
            .get_pinned_cf(self.cf(CF_BLOCKS)?, hash_key(&hash))?
            .is_some()
            || self
                .db
                .get_pinned_cf(self.cf(CF_HEIGHTS)?, height_key(height))?
                .is_some()
        {
            return Err(StoreError::AlreadyStored { hash, height });
        }
        let (tip_height, tip_hash) = self.tip()?;
        if block.header.prev_blockhash != tip_hash || Some(height) != tip_height.checked_add(1) {
            return Err(StoreError::NotChild {
                hash,
                height,
                prev: block.header.prev_blockhash,
                tip_height,
                tip_hash,
            });
        }
        let mut batch = WriteBatch::default();
        self.add_block_to_batch(&mut batch, block, &hash, &mut PendingLedger::default())?;
        self.write_synced(batch)?;
        tracing::debug!(target: "storage", height, hash = %hash, "block stored");
        Ok(())
    }

    /// Appends consecutive blocks on top of the tip in ONE synced write batch (catch-up stores hundreds of
    /// fetched blocks at once; one fsync instead of one per block). Each block must be the child of the one
    /// before it (the first: of the tip); nothing is written if any is not.
    pub fn put_blocks(&self, blocks: &[Block]) -> Result<(), StoreError> {
        let _guard = self.lock_writes();
        let (mut tip_height, mut tip_hash) = self.tip()?;
        let mut batch = WriteBatch::default();
        let mut pending = PendingLedger::default();
        for block in blocks {
            let hash = block.block_hash();
            let height = block.header.height;
            if block.header.prev_blockhash != tip_hash || Some(height) != tip_height.checked_add(1)
            {
                return Err(StoreError::NotChild {
                    hash,
                    height,
                    prev: block.header.prev_blockhash,
                    tip_height,
                    tip_hash,
                });
            }
            if self
                .db
                .get_pinned_cf(self.cf(CF_BLOCKS)?, hash_key(&hash))?
                .is_some()
            {
                return Err(StoreError::AlreadyStored { hash, height });
            }
            self.add_block_to_batch(&mut batch, block, &hash, &mut pending)?;
            tip_height = height;
            tip_hash = hash;
        }
        if !blocks.is_empty() {
            self.write_synced(batch)?;
            tracing::debug!(target: "storage", count = blocks.len(), tip_height, "blocks stored");
        }
        Ok(())
    }

    /// Replaces the consensus record (our votes, lock and decision at the height being decided) in one synced
    /// write: it must be durable before the votes it records are sent.
    pub fn put_consensus_record(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META)?, META_CONSENSUS, bytes);
        self.write_synced(batch)
    }

    /// The stored consensus record bytes, if any.
    pub fn consensus_record(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_META)?, META_CONSENSUS)?)
    }

    /// Height and hash of the tip; [`StoreError::NotInitialised`] before [`Self::init_genesis`].
    pub fn tip(&self) -> Result<(u32, BlockHash), StoreError> {
        let bytes = self
            .db
            .get_pinned_cf(self.cf(CF_META)?, META_TIP)?
            .ok_or(StoreError::NotInitialised)?;
        decode_tip(&bytes)
    }

    /// Header of the tip block.
    pub fn tip_header(&self) -> Result<BlockHeader, StoreError> {
        let (height, hash) = self.tip()?;
        self.header(&hash)?.ok_or_else(|| StoreError::Corrupt {
            what: format!("tip block {hash} at height {height} has no stored header"),
        })
    }

    /// Hash of the block at `height`, if stored.
    pub fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        match self
            .db
            .get_pinned_cf(self.cf(CF_HEIGHTS)?, height_key(height))?
        {
            None => Ok(None),
            Some(bytes) => decode_hash(&bytes, &format!("height index entry {height}")).map(Some),
        }
    }

    /// The block with this hash, if stored.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        let Some(bytes) = self.db.get_pinned_cf(self.cf(CF_BLOCKS)?, hash_key(hash))? else {
            return Ok(None);
        };
        let block: Block = deserialize(&bytes).map_err(|e| StoreError::Corrupt {
            what: format!("block {hash} does not decode: {e}"),
        })?;
        if block.block_hash() != *hash {
            return Err(StoreError::Corrupt {
                what: format!("block stored under {hash} hashes to {}", block.block_hash()),
            });
        }
        Ok(Some(block))
    }

    /// The block at `height`, if stored.
    pub fn block_at(&self, height: u32) -> Result<Option<Block>, StoreError> {
        let Some(hash) = self.block_hash_at(height)? else {
            return Ok(None);
        };
        self.block(&hash)?
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("height index {height} points to missing block {hash}"),
            })
    }

    /// The header of the block with this hash, if stored.
    pub fn header(&self, hash: &BlockHash) -> Result<Option<BlockHeader>, StoreError> {
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.cf(CF_HEADERS)?, hash_key(hash))?
        else {
            return Ok(None);
        };
        let header: BlockHeader = deserialize(&bytes).map_err(|e| StoreError::Corrupt {
            what: format!("header {hash} does not decode: {e}"),
        })?;
        if header.block_hash() != *hash {
            return Err(StoreError::Corrupt {
                what: format!(
                    "header stored under {hash} hashes to {}",
                    header.block_hash()
                ),
            });
        }
        Ok(Some(header))
    }

    /// Height of the block with this hash, if stored (checked against the height index).
    pub fn height_of(&self, hash: &BlockHash) -> Result<Option<u32>, StoreError> {
        let Some(header) = self.header(hash)? else {
            return Ok(None);
        };
        let height = header.height;
        match self.block_hash_at(height)? {
            Some(indexed) if indexed == *hash => Ok(Some(height)),
            other => Err(StoreError::Corrupt {
                what: format!(
                    "block {hash} claims height {height} but the height index holds {}",
                    other.map_or_else(|| "nothing".to_string(), |h| h.to_string())
                ),
            }),
        }
    }

    /// Consensus-encoded blocks from `start_height` upwards, for serving peers: at most `max_count` blocks and,
    /// after the first block (always included so that any block can be served), no more than `max_bytes` in
    /// total. Stops at the tip.
    pub fn raw_blocks_from(
        &self,
        start_height: u32,
        max_count: u32,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut blocks = Vec::new();
        let mut total = 0usize;
        for offset in 0..max_count {
            let Some(height) = start_height.checked_add(offset) else {
                break;
            };
            let Some(hash) = self.block_hash_at(height)? else {
                break;
            };
            let bytes = self
                .db
                .get_cf(self.cf(CF_BLOCKS)?, hash_key(&hash))?
                .ok_or_else(|| StoreError::Corrupt {
                    what: format!("height index {height} points to missing block {hash}"),
                })?;
            if !blocks.is_empty() && total.saturating_add(bytes.len()) > max_bytes {
                break;
            }
            total = total.saturating_add(bytes.len());
            blocks.push(bytes);
        }
        Ok(blocks)
    }

    /// Total size in bytes of the files in the store's directory (0 if it cannot be listed).
    pub fn size_on_disk(&self) -> u64 {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.metadata().ok())
            .filter(|meta| meta.is_file())
            .map(|meta| meta.len())
            .sum()
    }

    /// Directory of the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, StoreError> {
        self.db.cf_handle(name).ok_or_else(|| StoreError::Corrupt {
            what: format!("column family `{name}` is missing"),
        })
    }

    fn lock_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        // A poisoned lock only means another writer panicked; RocksDB batches keep the data consistent.
        self.write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn add_block_to_batch(
        &self,
        batch: &mut WriteBatch,
        block: &Block,
        hash: &BlockHash,
        pending: &mut PendingLedger,
    ) -> Result<(), StoreError> {
        self.add_ledger_to_batch(batch, block, pending)?;
        let height = block.header.height;
        batch.put_cf(self.cf(CF_BLOCKS)?, hash_key(hash), serialize(block));
        batch.put_cf(
            self.cf(CF_HEADERS)?,
            hash_key(hash),
            serialize(&block.header),
        );
        batch.put_cf(self.cf(CF_HEIGHTS)?, height_key(height), hash_key(hash));
        batch.put_cf(self.cf(CF_META)?, META_TIP, encode_tip(height, hash)?);
        Ok(())
    }

    fn write_synced(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options)?;
        Ok(())
    }
}
