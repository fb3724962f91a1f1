//! Admission of a new transaction: [`Mempool::accept`] and [`Mempool::test_accept`].
//!
//! Cost: hash lookups per input, walks bounded by the ancestor/descendant limits, and `O(log n)` index updates per
//! touched entry; eviction walks the eviction index from its low end only as far as needed. No full rescans.

use super::entry::MempoolEntry;
use super::fee_rate::{required_fee, PackageRate};
use super::view::MempoolView;
use super::Mempool;
use crate::ledger::{TxRejection, UtxoView, ValidatedTx};
use elements::{OutPoint, Transaction, Txid};
use std::collections::{BTreeSet, HashSet};

/// What an accepted (or test-accepted) transaction pays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedTx {
    /// Its txid.
    pub txid: Txid,
    /// Fee in satoshis of the policy asset.
    pub fee: u64,
    /// Virtual size.
    pub vsize: usize,
    /// Weight.
    pub weight: usize,
    /// Fee rate in satoshis per 1000 vbytes, rounded down.
    pub fee_rate: u64,
    /// Transactions evicted to make room (empty for [`Mempool::test_accept`], which evicts nothing, and when the
    /// pool had room).
    pub evicted: Vec<Txid>,
}

/// Everything admission decided, computed without changing the pool.
struct AdmissionPlan {
    validated: ValidatedTx,
    depends: BTreeSet<Txid>,
    ancestors: BTreeSet<Txid>,
    spends: Vec<OutPoint>,
    pegin_claims: Vec<OutPoint>,
    evict: BTreeSet<Txid>,
    accepted: AcceptedTx,
}

impl Mempool {
    /// Admits `tx` if it passes every check below, evicting lower-fee-rate packages if the pool is full. `chain` is
    /// the UTXO view at the current tip; `validate` is called once with the chain view overlaid with the pool and
    /// must run full transaction validation (the caller passes a closure calling
    /// `ledger::validate_transaction(&ctx, &view, pegins, tx)` with the context of the next block). `now_ms` is
    /// recorded as the entry's time.
    ///
    /// Checks, in order (the first failure is returned):
    /// 1. not already pooled ([`TxRejection::AlreadyKnown`] "txn-already-in-mempool");
    /// 2. not a coinbase ([`TxRejection::Structure`] "coinbase");
    /// 3. standard weight: at most [`MempoolLimits::max_tx_weight`](crate::mempool::MempoolLimits::max_tx_weight)
    ///    ([`TxRejection::Policy`] "tx-size"), checked before validation so oversized junk costs nothing;
    /// 4. no input spent twice by the transaction itself ([`TxRejection::Structure`] "bad-txns-inputs-duplicate"),
    ///    and no conflict with a pooled transaction (same output spent or same peg-in claimed):
    ///    [`TxRejection::DoubleSpend`] "txn-mempool-conflict" naming the pooled spender. **No replace-by-fee: the
    ///    first transaction seen wins.** RBF would need fee-bump rules, descendant accounting and pinning defences;
    ///    members relay every accepted transaction to each other at once, so their first-seen choices differ only
    ///    while a conflict is in flight, and the block that confirms one of them settles it everywhere;
    /// 5. validation by the caller's closure against the chain view overlaid with the pool ([`MempoolView`]), so a
    ///    child of an unconfirmed parent validates; its errors are returned unchanged;
    /// 6. fee at least `ceil(min_relay_fee_rate * vsize / 1000)` ([`TxRejection::FeeTooLow`]);
    /// 7. chain limits: at most `max_ancestors` in-mempool ancestors counting itself, and no ancestor ending up
    ///    with more than `max_descendants` descendants counting itself ([`TxRejection::Policy`]
    ///    "too-long-mempool-chain");
    /// 8. size cap: if the pool's weight plus the new one exceeds `max_weight_total`, the packages with the lowest
    ///    descendant fee rate (a transaction and everything spending it, so no child outlives its parent) are
    ///    evicted, lowest first (ties by txid), until it fits; the new transaction's own fee rate must be strictly
    ///    above the rate of every package evicted, else it is refused with [`TxRejection::Policy`] "mempool full"
    ///    and nothing is evicted. The new transaction's own ancestors are never evicted for it.
    pub fn accept(
        &mut self,
        tx: Transaction,
        now_ms: u64,
        chain: &dyn UtxoView,
        validate: impl FnOnce(&dyn UtxoView, &Transaction) -> Result<ValidatedTx, TxRejection>,
    ) -> Result<AcceptedTx, TxRejection> {
        let plan = self.plan(&tx, chain, validate)?;
        self.remove_entries(&plan.evict);
        let mut accepted = plan.accepted;
        accepted.evicted = plan.evict.into_iter().collect();
        let entry = build_entry(
            self,
            tx,
            now_ms,
            plan.validated,
            plan.depends,
            &plan.ancestors,
            plan.spends,
            plan.pegin_claims,
        );
        self.insert_entry(entry);
        Ok(accepted)
    }

    /// Runs every check [`Mempool::accept`] runs, including whether room could be made, without changing the pool
    /// (for `testmempoolaccept`).
    pub fn test_accept(
        &self,
        tx: &Transaction,
        chain: &dyn UtxoView,
        validate: impl FnOnce(&dyn UtxoView, &Transaction) -> Result<ValidatedTx, TxRejection>,
    ) -> Result<AcceptedTx, TxRejection> {
        self.plan(tx, chain, validate).map(|plan| plan.accepted)
    }

    fn plan(
        &self,
        tx: &Transaction,
        chain: &dyn UtxoView,
        validate: impl FnOnce(&dyn UtxoView, &Transaction) -> Result<ValidatedTx, TxRejection>,
    ) -> Result<AdmissionPlan, TxRejection> {
        let txid = tx.txid();
        if self.entries.contains_key(&txid) {
            return Err(TxRejection::AlreadyKnown {
                reason: "txn-already-in-mempool",
            });
        }
        if tx.is_coinbase() {
            return Err(TxRejection::Structure {
                reason: "coinbase",
                detail: format!(
                    "{txid} is a coinbase transaction, valid only as the first of a block"
                ),
            });
        }
        let weight = tx.weight();
        if weight > self.limits.max_tx_weight {
            return Err(TxRejection::Policy {
                reason: "tx-size",
                detail: format!(
                    "weight {weight} exceeds the standard maximum {}",
                    self.limits.max_tx_weight
                ),
            });
        }
        let (spends, pegin_claims) = self.check_conflicts(tx)?;

        let validated = validate(&MempoolView::new(chain, self), tx)?;

        let required = required_fee(self.limits.min_relay_fee_rate, validated.vsize);
        if validated.fee < required {
            return Err(TxRejection::FeeTooLow {
                fee: validated.fee,
                required,
                vsize: validated.vsize,
            });
        }

        let depends: BTreeSet<Txid> = spends
            .iter()
            .map(|outpoint| outpoint.txid)
            .filter(|parent| self.entries.contains_key(parent))
            .collect();
        let ancestors = self.check_chain_limits(&depends)?;

        let own_rate = PackageRate::new(validated.fee, validated.vsize as u64);
        let projected = self.total_weight.saturating_add(validated.weight as u64);
        let evict = if projected > self.limits.max_weight_total as u64 {
            let to_free = projected - self.limits.max_weight_total as u64;
            self.plan_eviction(to_free, own_rate, &ancestors)?
        } else {
            BTreeSet::new()
        };

        let accepted = AcceptedTx {
            txid,
            fee: validated.fee,
            vsize: validated.vsize,
            weight: validated.weight,
            fee_rate: own_rate.per_kvb(),
            evicted: Vec::new(),
        };
        Ok(AdmissionPlan {
            validated,
            depends,
            ancestors,
            spends,
            pegin_claims,
            evict,
            accepted,
        })
    }

    /// Refuses `tx` if it spends an output or claims a peg-in a pooled transaction already does (no RBF), or spends
    /// one twice itself (validation refuses that too; checked here so the pool's spender index never depends on the
    /// validator). Returns the outputs it spends and the peg-ins it claims.
    fn check_conflicts(
        &self,
        tx: &Transaction,
    ) -> Result<(Vec<OutPoint>, Vec<OutPoint>), TxRejection> {
        let mut spends = Vec::with_capacity(tx.input.len());
        let mut pegin_claims = Vec::new();
        let mut seen: HashSet<(OutPoint, bool)> = HashSet::with_capacity(tx.input.len());
        for (index, input) in tx.input.iter().enumerate() {
            let outpoint = input.previous_output;
            if !seen.insert((outpoint, input.is_pegin)) {
                return Err(TxRejection::Structure {
                    reason: "bad-txns-inputs-duplicate",
                    detail: format!("input {index} spends {outpoint} a second time"),
                });
            }
            let pooled = if input.is_pegin {
                pegin_claims.push(outpoint);
                self.pegin_claimers.get(&outpoint)
            } else {
                spends.push(outpoint);
                self.spenders.get(&outpoint)
            };
            if let Some(spent_by) = pooled {
                return Err(TxRejection::DoubleSpend {
                    reason: "txn-mempool-conflict",
                    input: index,
                    outpoint: outpoint.to_string(),
                    spent_by: spent_by.to_string(),
                });
            }
        }
        Ok((spends, pegin_claims))
    }

    /// The in-mempool ancestors of a transaction with parents `depends`, refused if it or any ancestor would break
    /// the ancestor/descendant limits. The walk stops as soon as the ancestor limit is passed.
    fn check_chain_limits(&self, depends: &BTreeSet<Txid>) -> Result<BTreeSet<Txid>, TxRejection> {
        let max_ancestors = self.limits.max_ancestors;
        let mut ancestors: BTreeSet<Txid> = BTreeSet::new();
        let mut stack: Vec<Txid> = depends.iter().copied().collect();
        while let Some(txid) = stack.pop() {
            if !ancestors.insert(txid) {
                continue;
            }
            if ancestors.len() + 1 > max_ancestors {
                return Err(TxRejection::Policy {
                    reason: "too-long-mempool-chain",
                    detail: format!(
                        "more than {} unconfirmed ancestors counting itself [limit: {max_ancestors}]",
                        ancestors.len()
                    ),
                });
            }
            if let Some(entry) = self.entries.get(&txid) {
                stack.extend(entry.depends.iter().copied());
            }
        }
        for ancestor in &ancestors {
            let count = self
                .entries
                .get(ancestor)
                .map_or(0, |entry| entry.descendant_count);
            if count + 1 > self.limits.max_descendants {
                return Err(TxRejection::Policy {
                    reason: "too-long-mempool-chain",
                    detail: format!(
                        "exceeds descendant limit for {ancestor}: {} descendants counting itself [limit: {}]",
                        count + 1,
                        self.limits.max_descendants
                    ),
                });
            }
        }
        Ok(ancestors)
    }
}

/// The entry for an admitted transaction, with ancestor aggregates summed over `ancestors` as they are pooled now.
#[allow(clippy::too_many_arguments)]
fn build_entry(
    pool: &Mempool,
    tx: Transaction,
    now_ms: u64,
    validated: ValidatedTx,
    depends: BTreeSet<Txid>,
    ancestors: &BTreeSet<Txid>,
    spends: Vec<OutPoint>,
    pegin_claims: Vec<OutPoint>,
) -> MempoolEntry {
    let mut ancestor_fee = validated.fee;
    let mut ancestor_vsize = validated.vsize as u64;
    let mut ancestor_weight = validated.weight as u64;
    for ancestor in ancestors.iter().filter_map(|txid| pool.entries.get(txid)) {
        ancestor_fee = ancestor_fee.saturating_add(ancestor.fee);
        ancestor_vsize += ancestor.vsize as u64;
        ancestor_weight += ancestor.weight as u64;
    }
    let mut created = validated.created;
    created.sort_by_key(|(outpoint, _)| outpoint.vout);
    MempoolEntry {
        txid: tx.txid(),
        tx,
        fee: validated.fee,
        weight: validated.weight,
        vsize: validated.vsize,
        time_ms: now_ms,
        depends,
        spent_by: BTreeSet::new(),
        spends,
        pegin_claims,
        created,
        ancestor_count: ancestors.len() + 1,
        ancestor_fee,
        ancestor_vsize,
        ancestor_weight,
        descendant_count: 1,
        descendant_fee: validated.fee,
        descendant_vsize: validated.vsize as u64,
    }
}
