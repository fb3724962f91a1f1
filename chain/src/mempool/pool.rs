//! The [`Mempool`] itself: its indexes, read queries, and the graph bookkeeping shared by admission, removal and
//! block updates (parent/child links and the ancestor/descendant aggregates, kept incrementally).

use super::entry::MempoolEntry;
use super::fee_rate::PackageRate;
use super::limits::MempoolLimits;
use elements::{OutPoint, Transaction, Txid};
use std::collections::{BTreeSet, HashMap};

/// Unconfirmed transactions waiting for a block. Pure: no IO, no clock (times come in as arguments).
///
/// Invariants (checked by [`Mempool::check_invariants`]):
/// - no two pooled transactions spend the same output or claim the same peg-in (first seen wins, no RBF);
/// - every pooled transaction's in-mempool parents are pooled (a child never outlives its parent's removal);
/// - each entry's ancestor and descendant aggregates equal the sums over its actual ancestor/descendant sets.
#[derive(Debug)]
pub struct Mempool {
    pub(super) limits: MempoolLimits,
    pub(super) entries: HashMap<Txid, MempoolEntry>,
    /// Which pooled transaction spends each output.
    pub(super) spenders: HashMap<OutPoint, Txid>,
    /// Which pooled transaction claims each parent-chain output through a peg-in input.
    pub(super) pegin_claimers: HashMap<OutPoint, Txid>,
    /// Eviction order: lowest descendant-package fee rate first, ties by txid.
    pub(super) by_descendant_rate: BTreeSet<(PackageRate, Txid)>,
    pub(super) total_weight: u64,
    pub(super) total_vsize: u64,
    pub(super) total_fee: u64,
}

/// Summary numbers of the mempool (for `getmempoolinfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolInfo {
    /// Number of transactions.
    pub size: usize,
    /// Sum of their virtual sizes.
    pub bytes: u64,
    /// Sum of their weights (what the size cap limits).
    pub usage: u64,
    /// Sum of their fees, in satoshis of the policy asset.
    pub total_fee: u64,
    /// The fee rate (sat per 1000 vbytes) a new transaction must pay now: the relay minimum while a
    /// maximum-weight standard transaction still fits, otherwise one more than the lowest descendant-package rate
    /// in the pool (what an admission would have to beat to evict something), and never below the relay minimum.
    pub min_fee_rate_now: u64,
    /// The size cap, [`MempoolLimits::max_weight_total`].
    pub max_weight_total: usize,
}

impl Mempool {
    /// An empty mempool with `limits`.
    pub fn new(limits: MempoolLimits) -> Self {
        Mempool {
            limits,
            entries: HashMap::new(),
            spenders: HashMap::new(),
            pegin_claimers: HashMap::new(),
            by_descendant_rate: BTreeSet::new(),
            total_weight: 0,
            total_vsize: 0,
            total_fee: 0,
        }
    }

    /// Its limits.
    pub fn limits(&self) -> &MempoolLimits {
        &self.limits
    }

    /// Number of pooled transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no transaction is pooled.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True if `txid` is pooled.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }

    /// The pooled transaction `txid`.
    pub fn get(&self, txid: &Txid) -> Option<&Transaction> {
        self.entries.get(txid).map(|entry| &entry.tx)
    }

    /// The pooled entry `txid` (fee, sizes, time, links, aggregates).
    pub fn entry(&self, txid: &Txid) -> Option<&MempoolEntry> {
        self.entries.get(txid)
    }

    /// The pooled transaction spending `outpoint`, if any (peg-in claims are not outputs of this chain and are not
    /// reported here; see [`Mempool::pegin_claimer_of`]).
    pub fn spender_of(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spenders.get(outpoint).copied()
    }

    /// The pooled transaction whose peg-in input claims the parent-chain output `outpoint`, if any.
    pub fn pegin_claimer_of(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.pegin_claimers.get(outpoint).copied()
    }

    /// All pooled txids, highest own fee rate first, ties by ascending txid.
    pub fn txids(&self) -> Vec<Txid> {
        let mut ranked: Vec<(PackageRate, Txid)> = self
            .entries
            .values()
            .map(|entry| (entry.fee_rate(), entry.txid))
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked.into_iter().map(|(_, txid)| txid).collect()
    }

    /// Summary numbers (see [`MempoolInfo`]).
    pub fn info(&self) -> MempoolInfo {
        let room_for_any = self
            .total_weight
            .saturating_add(self.limits.max_tx_weight as u64)
            <= self.limits.max_weight_total as u64;
        let min_fee_rate_now = match self.by_descendant_rate.first() {
            Some((lowest, _)) if !room_for_any => lowest
                .per_kvb()
                .saturating_add(1)
                .max(self.limits.min_relay_fee_rate),
            _ => self.limits.min_relay_fee_rate,
        };
        MempoolInfo {
            size: self.entries.len(),
            bytes: self.total_vsize,
            usage: self.total_weight,
            total_fee: self.total_fee,
            min_fee_rate_now,
            max_weight_total: self.limits.max_weight_total,
        }
    }

    /// Removes `txid` and every pooled transaction descending from it. Returns the removed txids (empty if `txid`
    /// is not pooled).
    pub fn remove(&mut self, txid: &Txid) -> Vec<Txid> {
        if !self.entries.contains_key(txid) {
            return Vec::new();
        }
        let removed = self.with_descendants([*txid]);
        self.remove_entries(&removed);
        removed.into_iter().collect()
    }

    /// Removes every transaction accepted before `cutoff_ms` (milliseconds, caller's clock), with its descendants.
    /// Returns the removed txids. Scans the whole pool: call it rarely (e.g. once a block).
    pub fn remove_older_than(&mut self, cutoff_ms: u64) -> Vec<Txid> {
        let old: Vec<Txid> = self
            .entries
            .values()
            .filter(|entry| entry.time_ms < cutoff_ms)
            .map(|entry| entry.txid)
            .collect();
        if old.is_empty() {
            return Vec::new();
        }
        let removed = self.with_descendants(old);
        self.remove_entries(&removed);
        removed.into_iter().collect()
    }

    /// The in-mempool ancestors of `txid`, not counting itself.
    pub(super) fn ancestors_of(&self, txid: &Txid) -> BTreeSet<Txid> {
        let parents = self
            .entries
            .get(txid)
            .map(|entry| entry.depends.iter().copied().collect())
            .unwrap_or_default();
        self.walk(parents, |entry| &entry.depends)
    }

    /// The in-mempool descendants of `txid`, not counting itself.
    pub(super) fn descendants_of(&self, txid: &Txid) -> BTreeSet<Txid> {
        let children = self
            .entries
            .get(txid)
            .map(|entry| entry.spent_by.iter().copied().collect())
            .unwrap_or_default();
        self.walk(children, |entry| &entry.spent_by)
    }

    /// `roots` (those pooled) and all their in-mempool descendants.
    pub(super) fn with_descendants(&self, roots: impl IntoIterator<Item = Txid>) -> BTreeSet<Txid> {
        let pooled: Vec<Txid> = roots
            .into_iter()
            .filter(|txid| self.entries.contains_key(txid))
            .collect();
        self.walk(pooled, |entry| &entry.spent_by)
    }

    /// Everything reachable from `start` (included) along `next` links.
    fn walk(
        &self,
        start: Vec<Txid>,
        next: impl Fn(&MempoolEntry) -> &BTreeSet<Txid>,
    ) -> BTreeSet<Txid> {
        let mut seen: BTreeSet<Txid> = start.iter().copied().collect();
        let mut stack = start;
        while let Some(txid) = stack.pop() {
            if let Some(entry) = self.entries.get(&txid) {
                for linked in next(entry) {
                    if seen.insert(*linked) {
                        stack.push(*linked);
                    }
                }
            }
        }
        seen
    }

    /// Adds `entry`, whose `depends` and ancestor aggregates the caller computed against the current pool: links it
    /// to its parents, adds it to every ancestor's descendant aggregates, indexes its spends and peg-in claims.
    pub(super) fn insert_entry(&mut self, entry: MempoolEntry) {
        let txid = entry.txid;
        for ancestor in self.walk(entry.depends.iter().copied().collect(), |e| &e.depends) {
            self.adjust_descendants(&ancestor, entry.fee, entry.vsize as u64, 1, true);
        }
        for parent in &entry.depends {
            if let Some(parent_entry) = self.entries.get_mut(parent) {
                parent_entry.spent_by.insert(txid);
            }
        }
        for outpoint in &entry.spends {
            self.spenders.insert(*outpoint, txid);
        }
        for outpoint in &entry.pegin_claims {
            self.pegin_claimers.insert(*outpoint, txid);
        }
        self.total_weight += entry.weight as u64;
        self.total_vsize += entry.vsize as u64;
        self.total_fee = self.total_fee.saturating_add(entry.fee);
        self.by_descendant_rate
            .insert((entry.descendant_rate(), txid));
        self.entries.insert(txid, entry);
    }

    /// Removes the pooled transactions in `set`, updating the aggregates of the ancestors and descendants that
    /// stay. Callers make `set` closed under descendants unless the removed transactions were confirmed (mined
    /// transactions leave their pooled children behind, now with fewer ancestors).
    pub(super) fn remove_entries(&mut self, set: &BTreeSet<Txid>) {
        let mut adjustments: Vec<(Txid, Txid)> = Vec::new();
        let mut ancestor_adjustments: Vec<(Txid, Txid)> = Vec::new();
        for txid in set {
            if !self.entries.contains_key(txid) {
                continue;
            }
            for ancestor in self.ancestors_of(txid) {
                if !set.contains(&ancestor) {
                    adjustments.push((ancestor, *txid));
                }
            }
            for descendant in self.descendants_of(txid) {
                if !set.contains(&descendant) {
                    ancestor_adjustments.push((descendant, *txid));
                }
            }
        }
        for (ancestor, removed) in adjustments {
            if let Some((fee, vsize)) = self.entries.get(&removed).map(|e| (e.fee, e.vsize)) {
                self.adjust_descendants(&ancestor, fee, vsize as u64, 1, false);
            }
        }
        for (descendant, removed) in ancestor_adjustments {
            let Some((fee, vsize, weight)) = self
                .entries
                .get(&removed)
                .map(|e| (e.fee, e.vsize as u64, e.weight as u64))
            else {
                continue;
            };
            if let Some(entry) = self.entries.get_mut(&descendant) {
                entry.ancestor_count = entry.ancestor_count.saturating_sub(1);
                entry.ancestor_fee = entry.ancestor_fee.saturating_sub(fee);
                entry.ancestor_vsize = entry.ancestor_vsize.saturating_sub(vsize);
                entry.ancestor_weight = entry.ancestor_weight.saturating_sub(weight);
            }
        }
        for txid in set {
            let Some(entry) = self.entries.remove(txid) else {
                continue;
            };
            self.by_descendant_rate
                .remove(&(entry.descendant_rate(), *txid));
            for outpoint in &entry.spends {
                if self.spenders.get(outpoint) == Some(txid) {
                    self.spenders.remove(outpoint);
                }
            }
            for outpoint in &entry.pegin_claims {
                if self.pegin_claimers.get(outpoint) == Some(txid) {
                    self.pegin_claimers.remove(outpoint);
                }
            }
            for parent in &entry.depends {
                if let Some(parent_entry) = self.entries.get_mut(parent) {
                    parent_entry.spent_by.remove(txid);
                }
            }
            for child in &entry.spent_by {
                if let Some(child_entry) = self.entries.get_mut(child) {
                    child_entry.depends.remove(txid);
                }
            }
            self.total_weight = self.total_weight.saturating_sub(entry.weight as u64);
            self.total_vsize = self.total_vsize.saturating_sub(entry.vsize as u64);
            self.total_fee = self.total_fee.saturating_sub(entry.fee);
        }
    }

    /// Adds (or subtracts) one descendant's fee, vsize and count to `txid`'s descendant aggregates, keeping the
    /// eviction index in step.
    fn adjust_descendants(&mut self, txid: &Txid, fee: u64, vsize: u64, count: usize, add: bool) {
        let Some(entry) = self.entries.get_mut(txid) else {
            return;
        };
        self.by_descendant_rate
            .remove(&(entry.descendant_rate(), *txid));
        if add {
            entry.descendant_fee = entry.descendant_fee.saturating_add(fee);
            entry.descendant_vsize = entry.descendant_vsize.saturating_add(vsize);
            entry.descendant_count = entry.descendant_count.saturating_add(count);
        } else {
            entry.descendant_fee = entry.descendant_fee.saturating_sub(fee);
            entry.descendant_vsize = entry.descendant_vsize.saturating_sub(vsize);
            entry.descendant_count = entry.descendant_count.saturating_sub(count);
        }
        self.by_descendant_rate
            .insert((entry.descendant_rate(), *txid));
    }

    /// Recomputes every link, index and aggregate from scratch and reports the first mismatch with what is kept
    /// incrementally. Costs a full scan: for tests and debugging, not for production paths.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut spenders: HashMap<OutPoint, Txid> = HashMap::new();
        let (mut weight, mut vsize, mut fee) = (0u64, 0u64, 0u64);
        for (txid, entry) in &self.entries {
            if *txid != entry.txid {
                return Err(format!("entry {} is keyed as {txid}", entry.txid));
            }
            for outpoint in &entry.spends {
                if let Some(other) = spenders.insert(*outpoint, *txid) {
                    return Err(format!("{outpoint} spent by both {other} and {txid}"));
                }
                if self.spenders.get(outpoint) != Some(txid) {
                    return Err(format!("spender index misses {outpoint} -> {txid}"));
                }
                if self.entries.contains_key(&outpoint.txid)
                    != entry.depends.contains(&outpoint.txid)
                {
                    return Err(format!(
                        "{txid} depends does not match its inputs ({outpoint})"
                    ));
                }
            }
            for parent in &entry.depends {
                let linked = self
                    .entries
                    .get(parent)
                    .is_some_and(|p| p.spent_by.contains(txid));
                if !linked {
                    return Err(format!(
                        "{txid} depends on {parent}, which is missing or unlinked"
                    ));
                }
            }
            for child in &entry.spent_by {
                let linked = self
                    .entries
                    .get(child)
                    .is_some_and(|c| c.depends.contains(txid));
                if !linked {
                    return Err(format!(
                        "{txid} spent_by {child}, which is missing or unlinked"
                    ));
                }
            }
            let ancestors = self.ancestors_of(txid);
            let sum = |set: &BTreeSet<Txid>, f: &dyn Fn(&MempoolEntry) -> u64| -> u64 {
                set.iter().filter_map(|t| self.entries.get(t)).map(f).sum()
            };
            let expected_ancestors = (
                ancestors.len() + 1,
                sum(&ancestors, &|e| e.fee) + entry.fee,
                sum(&ancestors, &|e| e.vsize as u64) + entry.vsize as u64,
                sum(&ancestors, &|e| e.weight as u64) + entry.weight as u64,
            );
            let kept_ancestors = (
                entry.ancestor_count,
                entry.ancestor_fee,
                entry.ancestor_vsize,
                entry.ancestor_weight,
            );
            if expected_ancestors != kept_ancestors {
                return Err(format!(
                    "{txid} ancestor aggregates {kept_ancestors:?}, expected {expected_ancestors:?}"
                ));
            }
            let descendants = self.descendants_of(txid);
            let expected_descendants = (
                descendants.len() + 1,
                sum(&descendants, &|e| e.fee) + entry.fee,
                sum(&descendants, &|e| e.vsize as u64) + entry.vsize as u64,
            );
            let kept_descendants = (
                entry.descendant_count,
                entry.descendant_fee,
                entry.descendant_vsize,
            );
            if expected_descendants != kept_descendants {
                return Err(format!(
                    "{txid} descendant aggregates {kept_descendants:?}, expected {expected_descendants:?}"
                ));
            }
            if !self
                .by_descendant_rate
                .contains(&(entry.descendant_rate(), *txid))
            {
                return Err(format!("{txid} missing from the eviction index"));
            }
            weight += entry.weight as u64;
            vsize += entry.vsize as u64;
            fee += entry.fee;
        }
        if spenders.len() != self.spenders.len() {
            return Err(format!(
                "spender index has {} outputs, entries spend {}",
                self.spenders.len(),
                spenders.len()
            ));
        }
        if self.by_descendant_rate.len() != self.entries.len() {
            return Err(format!(
                "eviction index has {} keys for {} entries",
                self.by_descendant_rate.len(),
                self.entries.len()
            ));
        }
        if (weight, vsize, fee) != (self.total_weight, self.total_vsize, self.total_fee) {
            return Err(format!(
                "totals (weight, vsize, fee) kept {:?}, actual {:?}",
                (self.total_weight, self.total_vsize, self.total_fee),
                (weight, vsize, fee)
            ));
        }
        Ok(())
    }
}
