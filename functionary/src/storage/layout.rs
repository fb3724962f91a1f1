//! On-disk layout of the block store.
//!
//! Column families:
//! * `blocks`:  block hash (32 bytes, internal byte order) → consensus-encoded block (`elements::encode::serialize`)
//! * `headers`: block hash → consensus-encoded header (so header reads do not decode whole blocks)
//! * `heights`: height (u32 big-endian, so keys sort by height) → block hash
//! * `meta`:    `tip` → postcard [`TipRecord`]; `schema` → postcard u32 [`SCHEMA_VERSION`]; `genesis` → hash;
//!   `utxo_stats` → postcard [`UtxoStats`]
//! * `utxos`:   outpoint (txid 32 bytes internal order ‖ vout u32 big-endian) → postcard [`StoredUtxo`]
//! * `txindex`: txid → postcard [`TxLocation`] (every transaction of every stored block)
//! * `pegouts`: outpoint of a peg-out output → postcard [`StoredPegout`] (for the peg-out process)
//!
//! A block, its header, its height entry, the tip, its UTXO changes, its transactions' index entries and its
//! peg-outs are written in one synced batch: after a crash the UTXO set is exactly the one at the stored tip.

use elements::BlockHash;
use serde::{Deserialize, Serialize};

use super::error::StoreError;

pub(crate) const CF_BLOCKS: &str = "blocks";
pub(crate) const CF_HEADERS: &str = "headers";
pub(crate) const CF_HEIGHTS: &str = "heights";
pub(crate) const CF_META: &str = "meta";
pub(crate) const CF_UTXOS: &str = "utxos";
pub(crate) const CF_TXINDEX: &str = "txindex";
pub(crate) const CF_PEGOUTS: &str = "pegouts";
pub(crate) const ALL_CFS: [&str; 7] = [
    CF_BLOCKS, CF_HEADERS, CF_HEIGHTS, CF_META, CF_UTXOS, CF_TXINDEX, CF_PEGOUTS,
];

pub(crate) const META_TIP: &[u8] = b"tip";
pub(crate) const META_SCHEMA: &[u8] = b"schema";
pub(crate) const META_GENESIS: &[u8] = b"genesis";
/// The consensus record of the height being decided (`blocksigner::ConsensusRecord` bytes).
pub(crate) const META_CONSENSUS: &[u8] = b"consensus";
/// Running totals of the UTXO set.
pub(crate) const META_UTXO_STATS: &[u8] = b"utxo_stats";

/// Version of this layout; stored at genesis and checked at open. Version 1 had no ledger column families; it is
/// upgraded at open by replaying the stored blocks.
pub const SCHEMA_VERSION: u32 = 2;

/// An unspent output as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUtxo {
    /// Height of the block that created it.
    pub height: u32,
    /// Time of that block.
    pub time: u32,
    /// Created by a coinbase (after genesis).
    pub is_coinbase: bool,
    /// The consensus-encoded `TxOut`.
    pub txout: Vec<u8>,
}

/// Where a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    /// Height of its block.
    pub height: u32,
    /// Its position in the block.
    pub index: u32,
}

/// A peg-out output of a final block, as the peg-out process will read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPegout {
    /// Height of the block.
    pub height: u32,
    /// Amount in satoshis (peg-outs are explicit).
    pub value: u64,
    /// Asset id (internal byte order).
    pub asset: [u8; 32],
    /// The parent-chain genesis hash it names (internal byte order).
    pub parent_genesis: [u8; 32],
    /// The Bitcoin scriptPubKey to pay.
    pub destination: Vec<u8>,
}

/// Running totals of the UTXO set (kept in the same batches as the set itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UtxoStats {
    /// Number of unspent outputs.
    pub count: u64,
    /// Sum of their stored sizes in bytes.
    pub bytes: u64,
    /// Transactions in the chain.
    pub transactions: u64,
}

/// Key of an outpoint: txid (internal order) ‖ vout big-endian.
pub(crate) fn outpoint_key(outpoint: &elements::OutPoint) -> [u8; 36] {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(&outpoint.txid.to_byte_array());
    key[32..].copy_from_slice(&outpoint.vout.to_be_bytes());
    key
}

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
