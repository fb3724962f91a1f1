//! Unspent outputs and read access to the UTXO set.

use elements::{OutPoint, TxOut};
use std::collections::{HashMap, HashSet};

/// One unspent output as the ledger sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Utxo {
    /// The output itself (explicit or confidential asset and value, script, witness with its proofs).
    pub txout: TxOut,
    /// Height of the block that created it (0 = genesis).
    pub height: u32,
    /// Time of the block that created it (header time), for BIP68 time-based sequence locks.
    pub time: u32,
    /// Created by a coinbase transaction.
    pub is_coinbase: bool,
}

/// A failure to read the UTXO set (disk, corruption). Not the transaction's fault: callers must not treat it as
/// an invalid transaction or block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reading the UTXO set failed: {0}")]
pub struct UtxoLookupError(pub String);

/// Read access to a UTXO set (the store at the tip, an in-memory map in tests, an [`OverlayView`]).
pub trait UtxoView {
    /// The unspent output at `outpoint`, or `None` if it does not exist or is spent.
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, UtxoLookupError>;
}

impl UtxoView for HashMap<OutPoint, Utxo> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, UtxoLookupError> {
        Ok(self.get(outpoint).cloned())
    }
}

impl<V: UtxoView + ?Sized> UtxoView for &V {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, UtxoLookupError> {
        (**self).utxo(outpoint)
    }
}

/// A base view plus pending changes: outputs spent and outputs created by transactions applied on top (earlier
/// transactions of a block being connected, or mempool transactions). Spent wins over created.
#[derive(Debug)]
pub struct OverlayView<V> {
    base: V,
    spent: HashSet<OutPoint>,
    created: HashMap<OutPoint, Utxo>,
}

impl<V: UtxoView> OverlayView<V> {
    /// An overlay with no changes yet.
    pub fn new(base: V) -> Self {
        OverlayView {
            base,
            spent: HashSet::new(),
            created: HashMap::new(),
        }
    }

    /// Marks `outpoint` spent. Returns false if it was already spent in this overlay.
    pub fn spend(&mut self, outpoint: OutPoint) -> bool {
        self.created.remove(&outpoint);
        self.spent.insert(outpoint)
    }

    /// Adds a created output.
    pub fn create(&mut self, outpoint: OutPoint, utxo: Utxo) {
        self.spent.remove(&outpoint);
        self.created.insert(outpoint, utxo);
    }

    /// True if `outpoint` was spent in this overlay.
    pub fn is_spent(&self, outpoint: &OutPoint) -> bool {
        self.spent.contains(outpoint)
    }

    /// The base view.
    pub fn base(&self) -> &V {
        &self.base
    }
}

impl<V: UtxoView> UtxoView for OverlayView<V> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, UtxoLookupError> {
        if self.spent.contains(outpoint) {
            return Ok(None);
        }
        if let Some(utxo) = self.created.get(outpoint) {
            return Ok(Some(utxo.clone()));
        }
        self.base.utxo(outpoint)
    }
}
