//! On-disk layout of the block store.
//!
//! Column families:
//! * `blocks`:  block hash (32 bytes, internal byte order) → consensus-encoded block (`elements::encode::serialize`)
//! * `headers`: block hash → consensus-encoded header (so header reads do not decode whole blocks)
//! * `heights`: height (u32 big-endian, so keys sort by height) → block hash
//! * `meta`:    `tip` → postcard [`TipRecord`]; `schema` → postcard u32 [`SCHEMA_VERSION`]; `genesis` → hash

use elements::BlockHash;
use serde::{Deserialize, Serialize};

use super::error::StoreError;

pub(crate) const CF_BLOCKS: &str = "blocks";
pub(crate) const CF_HEADERS: &str = "headers";
pub(crate) const CF_HEIGHTS: &str = "heights";
pub(crate) const CF_META: &str = "meta";
pub(crate) const ALL_CFS: [&str; 4] = [CF_BLOCKS, CF_HEADERS, CF_HEIGHTS, CF_META];

pub(crate) const META_TIP: &[u8] = b"tip";
pub(crate) const META_SCHEMA: &[u8] = b"schema";
pub(crate) const META_GENESIS: &[u8] = b"genesis";
/// The consensus record of the height being decided (`blocksigner::ConsensusRecord` bytes).
pub(crate) const META_CONSENSUS: &[u8] = b"consensus";

/// Version of this layout; stored at genesis and checked at open.
pub const SCHEMA_VERSION: u32 = 1;

/// The stored chain tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TipRecord {
    pub height: u32,
    pub hash: [u8; 32],
}

pub(crate) fn height_key(height: u32) -> [u8; 4] {
    height.to_be_bytes()
}

pub(crate) fn hash_key(hash: &BlockHash) -> [u8; 32] {
    hash.to_byte_array()
}

/// Decodes a stored 32-byte hash.
pub(crate) fn decode_hash(bytes: &[u8], what: &str) -> Result<BlockHash, StoreError> {
    let array: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        what: format!(
            "{what}: expected a 32-byte hash, found {} bytes",
            bytes.len()
        ),
    })?;
    Ok(BlockHash::from_byte_array(array))
}

pub(crate) fn encode_tip(height: u32, hash: &BlockHash) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(&TipRecord {
        height,
        hash: hash.to_byte_array(),
    })
    .map_err(|e| StoreError::Db(format!("cannot encode tip record: {e}")))
}

pub(crate) fn decode_tip(bytes: &[u8]) -> Result<(u32, BlockHash), StoreError> {
    let record: TipRecord = postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        what: format!("tip record does not decode: {e}"),
    })?;
    Ok((record.height, BlockHash::from_byte_array(record.hash)))
}

pub(crate) fn encode_schema() -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(&SCHEMA_VERSION)
        .map_err(|e| StoreError::Db(format!("cannot encode schema version: {e}")))
}

pub(crate) fn decode_schema(bytes: &[u8]) -> Result<u32, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        what: format!("schema version does not decode: {e}"),
    })
}
