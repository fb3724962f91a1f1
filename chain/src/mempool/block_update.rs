//! Keeping the pool consistent with the chain after a block: [`Mempool::block_connected`].

use super::Mempool;
use crate::ledger::{OverlayView, TxRejection, UtxoView, ValidatedTx};
use elements::{Block, Transaction, Txid};
use std::collections::{BTreeMap, BTreeSet};

impl Mempool {
    /// Updates the pool after `block` was connected; `chain` is the UTXO view of the new tip.
    ///
    /// 1. The block's transactions leave the pool (they are confirmed; their pooled children stay).
    /// 2. Pooled transactions spending an output (or claiming a peg-in) that a block transaction spent are dropped
    ///    with their descendants: [`TxRejection::DoubleSpend`] "bad-txns-inputs-missingorspent" naming the block
    ///    transaction; each descendant gets [`TxRejection::MissingInput`] for the input spending a dropped parent.
    /// 3. Every remaining transaction is re-validated with `revalidate` in dependency order (parents first, ties
    ///    by txid) against `chain` overlaid with the outputs of those already re-validated, and dropped with its
    ///    descendants if it fails (a lock time or coinbase maturity now judged at the new height, a peg-in no longer
    ///    claimable, …). The caller's closure validates with the context of the block after this one. Survivors'
    ///    created outputs are replaced by the re-validated ones (their height is now the next block's).
    ///
    /// Returns each dropped transaction with the reason, in the order decided. Confirmed transactions are not
    /// listed. Re-validation costs one validation per pooled transaction.
    pub fn block_connected(
        &mut self,
        block: &Block,
        chain: &dyn UtxoView,
        mut revalidate: impl FnMut(&dyn UtxoView, &Transaction) -> Result<ValidatedTx, TxRejection>,
    ) -> Vec<(Txid, TxRejection)> {
        let mut dropped: Vec<(Txid, TxRejection)> = Vec::new();

        let mut mined: BTreeSet<Txid> = BTreeSet::new();
        let mut conflicts: BTreeMap<Txid, TxRejection> = BTreeMap::new();
        for block_tx in &block.txdata {
            let block_txid = block_tx.txid();
            if self.entries.contains_key(&block_txid) {
                mined.insert(block_txid);
                continue;
            }
            if block_tx.is_coinbase() {
                continue;
            }
            for input in &block_tx.input {
                let outpoint = input.previous_output;
                let pooled = if input.is_pegin {
                    self.pegin_claimers.get(&outpoint)
                } else {
                    self.spenders.get(&outpoint)
                };
                let Some(spender) = pooled.copied() else {
                    continue;
                };
                let input_index = self
                    .entries
                    .get(&spender)
                    .and_then(|entry| {
                        entry.tx.input.iter().position(|i| {
                            i.previous_output == outpoint && i.is_pegin == input.is_pegin
                        })
                    })
                    .unwrap_or(0);
                conflicts
                    .entry(spender)
                    .or_insert(TxRejection::DoubleSpend {
                        reason: "bad-txns-inputs-missingorspent",
                        input: input_index,
                        outpoint: outpoint.to_string(),
                        spent_by: block_txid.to_string(),
                    });
            }
        }
        self.remove_entries(&mined);

        let mut conflicted = self.with_descendants(conflicts.keys().copied());
        for txid in &conflicted {
            let reason = match conflicts.remove(txid) {
                Some(reason) => reason,
                None => self.missing_parent_reason(txid, &conflicted),
            };
            dropped.push((*txid, reason));
        }
        self.remove_entries(&conflicted);
        conflicted.clear();

        let mut order: Vec<(usize, Txid)> = self
            .entries
            .values()
            .map(|entry| (entry.ancestor_count, entry.txid))
            .collect();
        order.sort();
        let mut view = OverlayView::new(chain);
        let mut invalid: BTreeSet<Txid> = BTreeSet::new();
        for (_, txid) in order {
            if invalid.contains(&txid) {
                continue;
            }
            let Some(entry) = self.entries.get(&txid) else {
                continue;
            };
            match revalidate(&view, &entry.tx) {
                Ok(validated) => {
                    for outpoint in &entry.spends {
                        view.spend(*outpoint);
                    }
                    // The validator dates created outputs at the next block: refresh them so later admissions
                    // judge sequence locks on unconfirmed parents at the right height.
                    let mut created = validated.created;
                    created.sort_by_key(|(outpoint, _)| outpoint.vout);
                    for (outpoint, utxo) in &created {
                        view.create(*outpoint, utxo.clone());
                    }
                    if let Some(entry) = self.entries.get_mut(&txid) {
                        entry.created = created;
                    }
                }
                Err(reason) => {
                    let with_descendants = self.with_descendants([txid]);
                    dropped.push((txid, reason));
                    for descendant in with_descendants.iter().filter(|d| **d != txid) {
                        if invalid.insert(*descendant) {
                            let reason = self.missing_parent_reason(descendant, &with_descendants);
                            dropped.push((*descendant, reason));
                        }
                    }
                    invalid.insert(txid);
                }
            }
        }
        self.remove_entries(&invalid);
        dropped
    }

    /// Why `txid` must go when the transactions in `removed` go: the first input spending one of them.
    fn missing_parent_reason(&self, txid: &Txid, removed: &BTreeSet<Txid>) -> TxRejection {
        let missing =
            self.entries.get(txid).and_then(|entry| {
                entry.tx.input.iter().enumerate().find(|(_, input)| {
                    !input.is_pegin && removed.contains(&input.previous_output.txid)
                })
            });
        match missing {
            Some((input, txin)) => TxRejection::MissingInput {
                input,
                outpoint: txin.previous_output.to_string(),
            },
            None => TxRejection::Policy {
                reason: "mempool-parent-removed",
                detail: format!("{txid} was removed with a parent"),
            },
        }
    }
}
