//! The UTXO view a new transaction is validated against: the chain plus unconfirmed mempool outputs.

use super::Mempool;
use crate::ledger::{Utxo, UtxoLookupError, UtxoView};
use elements::OutPoint;

/// The chain's UTXO view overlaid with the mempool: outputs created by pooled transactions exist, outputs spent by
/// pooled transactions do not. This lets a chain of unconfirmed transactions be accepted parent first.
pub struct MempoolView<'a> {
    chain: &'a dyn UtxoView,
    pool: &'a Mempool,
}

impl<'a> MempoolView<'a> {
    /// `chain` overlaid with `pool`.
    pub fn new(chain: &'a dyn UtxoView, pool: &'a Mempool) -> Self {
        MempoolView { chain, pool }
    }
}

impl UtxoView for MempoolView<'_> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, UtxoLookupError> {
        if self.pool.spender_of(outpoint).is_some() {
            return Ok(None);
        }
        if let Some(entry) = self.pool.entry(&outpoint.txid) {
            return Ok(entry.created_output(outpoint).cloned());
        }
        self.chain.utxo(outpoint)
    }
}
