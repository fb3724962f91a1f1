//! One pooled transaction with its links to in-mempool parents and children and its package aggregates.

use super::fee_rate::PackageRate;
use crate::ledger::Utxo;
use elements::{OutPoint, Transaction, Txid};
use std::collections::BTreeSet;

/// A transaction in the mempool.
#[derive(Clone, Debug)]
pub struct MempoolEntry {
    /// The transaction.
    pub tx: Transaction,
    /// Its txid.
    pub txid: Txid,
    /// Fee paid, in satoshis of the policy asset (from validation).
    pub fee: u64,
    /// Weight (from validation).
    pub weight: usize,
    /// Virtual size (from validation).
    pub vsize: usize,
    /// When it was accepted, milliseconds since the Unix epoch as given by the caller.
    pub time_ms: u64,
    /// In-mempool parents: pooled transactions whose outputs this one spends.
    pub depends: BTreeSet<Txid>,
    /// In-mempool children: pooled transactions spending this one's outputs.
    pub spent_by: BTreeSet<Txid>,
    /// Outputs it spends (peg-in inputs excluded: they claim parent-chain outputs, see `pegin_claims`).
    pub spends: Vec<OutPoint>,
    /// Parent-chain outputs its peg-in inputs claim.
    pub pegin_claims: Vec<OutPoint>,
    /// Spendable outputs it creates, sorted by output index (from validation).
    pub created: Vec<(OutPoint, Utxo)>,
    /// Number of in-mempool ancestors, counting itself.
    pub ancestor_count: usize,
    /// Fee of itself and all in-mempool ancestors.
    pub ancestor_fee: u64,
    /// Virtual size of itself and all in-mempool ancestors.
    pub ancestor_vsize: u64,
    /// Weight of itself and all in-mempool ancestors.
    pub ancestor_weight: u64,
    /// Number of in-mempool descendants, counting itself.
    pub descendant_count: usize,
    /// Fee of itself and all in-mempool descendants.
    pub descendant_fee: u64,
    /// Virtual size of itself and all in-mempool descendants.
    pub descendant_vsize: u64,
}

impl MempoolEntry {
    /// Its own fee rate.
    pub fn fee_rate(&self) -> PackageRate {
        PackageRate::new(self.fee, self.vsize as u64)
    }

    /// The fee rate of itself with all its in-mempool ancestors (what a miner gets for including the package).
    pub fn ancestor_rate(&self) -> PackageRate {
        PackageRate::new(self.ancestor_fee, self.ancestor_vsize)
    }

    /// The fee rate of itself with all its in-mempool descendants (what eviction removes together).
    pub fn descendant_rate(&self) -> PackageRate {
        PackageRate::new(self.descendant_fee, self.descendant_vsize)
    }

    /// The output it created at `outpoint`, if any.
    pub fn created_output(&self, outpoint: &OutPoint) -> Option<&Utxo> {
        self.created
            .binary_search_by_key(&outpoint.vout, |(created, _)| created.vout)
            .ok()
            .and_then(|index| self.created.get(index))
            .filter(|(created, _)| created == outpoint)
            .map(|(_, utxo)| utxo)
    }
}
