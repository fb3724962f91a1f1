//! The ledger half of the block store: the UTXO set, the transaction index and the peg-out records, written in
//! the same synced batch as the block that changes them.

use std::collections::HashMap;

use elements::encode::{deserialize, serialize};
use elements::{Block, BlockHash, OutPoint, Transaction, Txid};
use rocksdb::{IteratorMode, WriteBatch};

use super::layout::{
    outpoint_key, StoredPegout, StoredUtxo, TxLocation, UtxoStats, CF_PEGOUTS, CF_TXINDEX,
    CF_UTXOS, META_UTXO_STATS,
};
use super::{BlockStore, StoreError};
use chain::ledger::{block_utxo_changes, Utxo, UtxoLookupError, UtxoView};

/// Ledger changes accumulated over the blocks of one write batch (a later block of the batch may spend an output
/// an earlier one created).
#[derive(Debug, Default)]
pub(crate) struct PendingLedger {
    /// Outputs created in this batch and not yet spent in it, with their stored size.
    created: HashMap<OutPoint, u64>,
    /// Outputs spent in this batch.
    spent: std::collections::HashSet<OutPoint>,
    stats: Option<UtxoStats>,
}

impl BlockStore {
    /// Adds `block`'s ledger changes to `batch`: spent outputs deleted, created outputs added, every transaction
    /// indexed, peg-out outputs recorded, the running totals updated. A spent output that is not in the set is
    /// [`StoreError::Corrupt`] (blocks are validated before they are stored, so this means the set is damaged).
    pub(crate) fn add_ledger_to_batch(
        &self,
        batch: &mut WriteBatch,
        block: &Block,
        pending: &mut PendingLedger,
    ) -> Result<(), StoreError> {
        let mut stats = match pending.stats {
            Some(stats) => stats,
            None => self.utxo_stats()?,
        };
        let changes = block_utxo_changes(block);
        let utxos = self.cf(CF_UTXOS)?;
        for outpoint in &changes.spent {
            let size = if let Some(size) = pending.created.remove(outpoint) {
                size
            } else if pending.spent.contains(outpoint) {
                return Err(StoreError::Corrupt {
                    what: format!("block {} spends {outpoint} twice", block.block_hash()),
                });
            } else {
                let stored = self
                    .db
                    .get_pinned_cf(utxos, outpoint_key(outpoint))?
                    .ok_or_else(|| StoreError::Corrupt {
                        what: format!(
                            "block {} at height {} spends {outpoint}, which is not in the UTXO set",
                            block.block_hash(),
                            block.header.height
                        ),
                    })?;
                stored.len() as u64
            };
            pending.spent.insert(*outpoint);
            batch.delete_cf(utxos, outpoint_key(outpoint));
            stats.count = stats.count.saturating_sub(1);
            stats.bytes = stats.bytes.saturating_sub(size);
        }
        for (outpoint, utxo) in &changes.created {
            let stored = postcard::to_allocvec(&StoredUtxo {
                height: utxo.height,
                time: utxo.time,
                is_coinbase: utxo.is_coinbase,
                txout: serialize(&utxo.txout),
            })
            .map_err(|e| StoreError::Db(format!("cannot encode utxo {outpoint}: {e}")))?;
            pending.created.insert(*outpoint, stored.len() as u64);
            batch.put_cf(utxos, outpoint_key(outpoint), &stored);
            stats.count += 1;
            stats.bytes += stored.len() as u64;
        }
        let txindex = self.cf(CF_TXINDEX)?;
        let pegouts = self.cf(CF_PEGOUTS)?;
        for (index, tx) in block.txdata.iter().enumerate() {
            let txid = tx.txid();
            let location = TxLocation {
                height: block.header.height,
                index: u32::try_from(index).unwrap_or(u32::MAX),
            };
            let encoded = postcard::to_allocvec(&location)
                .map_err(|e| StoreError::Db(format!("cannot encode tx location: {e}")))?;
            batch.put_cf(txindex, txid.to_byte_array(), encoded);
            stats.transactions += 1;
            // Coinbase outputs are never peg-outs (validation does not check them as such).
            let outputs = if tx.is_coinbase() {
                &[][..]
            } else {
                &tx.output[..]
            };
            for (vout, out) in (0u32..).zip(outputs) {
                let Some(pegout) = stored_pegout(block.header.height, txid, vout, out) else {
                    continue;
                };
                let outpoint = OutPoint::new(txid, vout);
                let encoded = postcard::to_allocvec(&pegout)
                    .map_err(|e| StoreError::Db(format!("cannot encode peg-out: {e}")))?;
                batch.put_cf(pegouts, outpoint_key(&outpoint), encoded);
            }
        }
        let encoded = postcard::to_allocvec(&stats)
            .map_err(|e| StoreError::Db(format!("cannot encode utxo stats: {e}")))?;
        batch.put_cf(self.cf(super::layout::CF_META)?, META_UTXO_STATS, encoded);
        pending.stats = Some(stats);
        Ok(())
    }

    /// The unspent output at `outpoint`, if any.
    pub fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, StoreError> {
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.cf(CF_UTXOS)?, outpoint_key(outpoint))?
        else {
            return Ok(None);
        };
        decode_utxo(outpoint, &bytes).map(Some)
    }

    /// Running totals of the UTXO set.
    pub fn utxo_stats(&self) -> Result<UtxoStats, StoreError> {
        match self
            .db
            .get_pinned_cf(self.cf(super::layout::CF_META)?, META_UTXO_STATS)?
        {
            None => Ok(UtxoStats::default()),
            Some(bytes) => postcard::from_bytes(&bytes).map_err(|e| StoreError::Corrupt {
                what: format!("utxo stats do not decode: {e}"),
            }),
        }
    }

    /// A confirmed transaction with its block's height and hash.
    pub fn transaction(
        &self,
        txid: &Txid,
    ) -> Result<Option<(Transaction, u32, BlockHash)>, StoreError> {
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.cf(CF_TXINDEX)?, txid.to_byte_array())?
        else {
            return Ok(None);
        };
        let location: TxLocation =
            postcard::from_bytes(&bytes).map_err(|e| StoreError::Corrupt {
                what: format!("tx index entry of {txid} does not decode: {e}"),
            })?;
        let block = self
            .block_at(location.height)?
            .ok_or_else(|| StoreError::Corrupt {
                what: format!(
                    "tx index puts {txid} at height {}, which is not stored",
                    location.height
                ),
            })?;
        let hash = block.block_hash();
        let tx = usize::try_from(location.index)
            .ok()
            .and_then(|index| block.txdata.get(index))
            .filter(|tx| tx.txid() == *txid)
            .cloned()
            .ok_or_else(|| StoreError::Corrupt {
                what: format!(
                    "tx index puts {txid} at position {} of block {hash}, which holds another transaction",
                    location.index
                ),
            })?;
        Ok(Some((tx, location.height, hash)))
    }

    /// Whether a transaction with this txid is in a stored block.
    pub fn contains_transaction(&self, txid: &Txid) -> Result<bool, StoreError> {
        Ok(self
            .db
            .get_pinned_cf(self.cf(CF_TXINDEX)?, txid.to_byte_array())?
            .is_some())
    }

    /// Every peg-out output of the stored chain, in key order.
    pub fn pegouts(&self) -> Result<Vec<(OutPoint, StoredPegout)>, StoreError> {
        let mut all = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_PEGOUTS)?, IteratorMode::Start)
        {
            let (key, value) = item?;
            let outpoint = decode_outpoint_key(&key)?;
            let pegout = postcard::from_bytes(&value).map_err(|e| StoreError::Corrupt {
                what: format!("peg-out record {outpoint} does not decode: {e}"),
            })?;
            all.push((outpoint, pegout));
        }
        Ok(all)
    }

    /// Every unspent output, in key order (for `gettxoutsetinfo`'s hash and audits; linear in the set).
    pub fn for_each_utxo(&self, mut visit: impl FnMut(&OutPoint, &[u8])) -> Result<(), StoreError> {
        for item in self.db.iterator_cf(self.cf(CF_UTXOS)?, IteratorMode::Start) {
            let (key, value) = item?;
            let outpoint = decode_outpoint_key(&key)?;
            visit(&outpoint, &value);
        }
        Ok(())
    }

    /// Header times of the (up to) `count` stored blocks ending at `height`, oldest first (BIP113's median time
    /// past is taken over 11 of them).
    pub fn times_ending_at(&self, height: u32, count: u32) -> Result<Vec<u32>, StoreError> {
        let first = height.saturating_sub(count.saturating_sub(1));
        let mut times = Vec::with_capacity(count as usize);
        for h in first..=height {
            let Some(hash) = self.block_hash_at(h)? else {
                continue;
            };
            if let Some(header) = self.header(&hash)? {
                times.push(header.time);
            }
        }
        Ok(times)
    }

    /// Rebuilds the ledger column families from the stored blocks (upgrade of a version-1 store, which had
    /// none). One synced batch per 1,000 blocks; the schema version is written last, so an interrupted upgrade
    /// starts over.
    pub(crate) fn rebuild_ledger(&self) -> Result<(), StoreError> {
        let (tip, _) = self.tip()?;
        let mut pending = PendingLedger {
            stats: Some(UtxoStats::default()),
            ..PendingLedger::default()
        };
        let mut batch = WriteBatch::default();
        for height in 0..=tip {
            let block = self.block_at(height)?.ok_or_else(|| StoreError::Corrupt {
                what: format!("height {height} below the tip {tip} has no block"),
            })?;
            self.add_ledger_to_batch(&mut batch, &block, &mut pending)?;
            if height % 1000 == 999 {
                self.write_synced(std::mem::take(&mut batch))?;
                // Written outputs are now readable from the database.
                pending.created.clear();
                pending.spent.clear();
            }
        }
        self.write_synced(batch)?;
        tracing::info!(target: "storage", tip, "ledger rebuilt from the stored blocks (schema upgrade)");
        Ok(())
    }
}

impl UtxoView for BlockStore {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, UtxoLookupError> {
        BlockStore::utxo(self, outpoint).map_err(|e| UtxoLookupError(e.to_string()))
    }
}

/// The peg-out record of an output, recognised by the same parser validation uses
/// ([`chain::ledger::pegout_output`]), so a burn that validation accepted as a peg-out is always recorded.
fn stored_pegout(
    height: u32,
    txid: Txid,
    vout: u32,
    out: &elements::TxOut,
) -> Option<StoredPegout> {
    let record = chain::ledger::pegout_output(txid, vout, out)?;
    Some(StoredPegout {
        height,
        value: record.value,
        asset: serialize(&record.asset).try_into().ok()?,
        parent_genesis: record.parent_genesis,
        destination: record.destination.to_bytes(),
    })
}

fn decode_utxo(outpoint: &OutPoint, bytes: &[u8]) -> Result<Utxo, StoreError> {
    let stored: StoredUtxo = postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        what: format!("utxo {outpoint} does not decode: {e}"),
    })?;
    let txout = deserialize(&stored.txout).map_err(|e| StoreError::Corrupt {
        what: format!("utxo {outpoint}: its output does not decode: {e}"),
    })?;
    Ok(Utxo {
        txout,
        height: stored.height,
        time: stored.time,
        is_coinbase: stored.is_coinbase,
    })
}

fn decode_outpoint_key(key: &[u8]) -> Result<OutPoint, StoreError> {
    let (txid, vout) = key
        .split_at_checked(32)
        .ok_or_else(|| StoreError::Corrupt {
            what: format!("outpoint key of {} bytes", key.len()),
        })?;
    let txid: [u8; 32] = txid.try_into().map_err(|_| StoreError::Corrupt {
        what: "outpoint key txid".into(),
    })?;
    let vout: [u8; 4] = vout.try_into().map_err(|_| StoreError::Corrupt {
        what: format!("outpoint key of {} bytes", key.len()),
    })?;
    Ok(OutPoint::new(
        Txid::from_byte_array(txid),
        u32::from_be_bytes(vout),
    ))
}
