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

/// Scripts longer than this can never be spent (Bitcoin's and Elements' `MAX_SCRIPT_SIZE`).
pub const MAX_SCRIPT_SIZE: usize = 10_000;

/// Whether an output enters the UTXO set: not a fee output (empty script), not provably unspendable (`OP_RETURN`
/// first, which includes peg-outs, or a script longer than [`MAX_SCRIPT_SIZE`]).
/// Same rule as rust-elements' `Script::is_provably_unspendable` (used by validation), stated once here.
pub fn is_spendable(out: &TxOut) -> bool {
    !out.script_pubkey.is_provably_unspendable()
}

/// What a block does to the UTXO set, read off the block alone (no validation): the outputs it spends from
/// before the block, and the spendable outputs it leaves. An output created and spent inside the block appears in
/// neither. Peg-in inputs spend nothing of ours. Genesis outputs are spendable (as in Elements) and are not
/// marked coinbase.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UtxoChanges {
    /// Outputs from earlier blocks spent by this block, in order.
    pub spent: Vec<OutPoint>,
    /// Outputs this block leaves unspent, in order.
    pub created: Vec<(OutPoint, Utxo)>,
}

/// See [`UtxoChanges`].
pub fn block_utxo_changes(block: &elements::Block) -> UtxoChanges {
    let height = block.header.height;
    let time = block.header.time;
    let mut created: Vec<(OutPoint, Utxo)> = Vec::new();
    let mut index: HashMap<OutPoint, usize> = HashMap::new();
    let mut spent_inside: HashSet<OutPoint> = HashSet::new();
    let mut spent = Vec::new();
    for tx in &block.txdata {
        let coinbase = tx.is_coinbase();
        if !coinbase {
            for input in tx.input.iter().filter(|input| !input.is_pegin) {
                let outpoint = input.previous_output;
                if index.contains_key(&outpoint) {
                    spent_inside.insert(outpoint);
                } else {
                    spent.push(outpoint);
                }
            }
        }
        let txid = tx.txid();
        for (vout, out) in tx.output.iter().enumerate() {
            if !is_spendable(out) {
                continue;
            }
            let Ok(vout) = u32::try_from(vout) else {
                continue;
            };
            let outpoint = OutPoint::new(txid, vout);
            index.insert(outpoint, created.len());
            created.push((
                outpoint,
                Utxo {
                    txout: out.clone(),
                    height,
                    time,
                    is_coinbase: coinbase && height > 0,
                },
            ));
        }
    }
    created.retain(|(outpoint, _)| !spent_inside.contains(outpoint));
    UtxoChanges { spent, created }
}
