//! Block templates: which pooled transactions a proposer puts in its block.

use super::fee_rate::PackageRate;
use super::Mempool;
use elements::{Transaction, Txid};
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

/// The transactions for a block (without the coinbase), in a valid order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockTemplate {
    /// Transactions, every parent before its children.
    pub transactions: Vec<Transaction>,
    /// Sum of their fees, in satoshis of the policy asset (what the coinbase may claim).
    pub total_fee: u64,
    /// Sum of their weights; never above the `max_weight` asked for.
    pub total_weight: usize,
}

/// A candidate's package not yet in the template: itself with its ancestors not yet included.
#[derive(Clone, Copy)]
struct Package {
    fee: u64,
    vsize: u64,
    weight: u64,
}

impl Package {
    fn rate(&self) -> PackageRate {
        PackageRate::new(self.fee, self.vsize)
    }
}

impl Mempool {
    /// Picks transactions for a block of at most `max_weight` weight (the caller leaves room for the header,
    /// the transaction count and the coinbase).
    ///
    /// Greedy by ancestor-package fee rate, like Bitcoin Core's `CreateNewBlock` simplified: repeatedly take the
    /// candidate whose package (itself plus its ancestors not yet included) has the highest fee rate, ties by
    /// lowest txid, so the result is deterministic; add the whole package, parents first, if it fits, else skip
    /// that candidate; after each inclusion the packages of the included transactions' descendants shrink and are
    /// re-ranked. A high-fee child thus pulls in its low-fee parent (child pays for parent).
    ///
    /// Cost: `O(n log n)` plus, per included transaction, a walk of its (limit-bounded) descendants.
    pub fn template(&self, max_weight: usize) -> BlockTemplate {
        let max_weight = max_weight as u64;
        let mut packages: HashMap<Txid, Package> = HashMap::with_capacity(self.entries.len());
        let mut ranked: BTreeSet<(Reverse<PackageRate>, Txid)> = BTreeSet::new();
        for entry in self.entries.values() {
            let package = Package {
                fee: entry.ancestor_fee,
                vsize: entry.ancestor_vsize,
                weight: entry.ancestor_weight,
            };
            packages.insert(entry.txid, package);
            ranked.insert((Reverse(package.rate()), entry.txid));
        }

        let mut included: BTreeSet<Txid> = BTreeSet::new();
        let mut template = BlockTemplate::default();
        let mut total_weight: u64 = 0;
        while let Some((_, candidate)) = ranked.pop_first() {
            let Some(package) = packages.get(&candidate).copied() else {
                continue;
            };
            if total_weight.saturating_add(package.weight) > max_weight {
                continue;
            }
            let mut members: Vec<(usize, Txid)> = self
                .ancestors_of(&candidate)
                .into_iter()
                .chain([candidate])
                .filter(|txid| !included.contains(txid))
                .filter_map(|txid| self.entries.get(&txid).map(|e| (e.ancestor_count, txid)))
                .collect();
            members.sort();
            for (_, member) in members {
                let Some(entry) = self.entries.get(&member) else {
                    continue;
                };
                included.insert(member);
                if let Some(own) = packages.remove(&member) {
                    ranked.remove(&(Reverse(own.rate()), member));
                }
                for descendant in self.descendants_of(&member) {
                    if included.contains(&descendant) {
                        continue;
                    }
                    if let Some(package) = packages.get_mut(&descendant) {
                        ranked.remove(&(Reverse(package.rate()), descendant));
                        package.fee = package.fee.saturating_sub(entry.fee);
                        package.vsize = package.vsize.saturating_sub(entry.vsize as u64);
                        package.weight = package.weight.saturating_sub(entry.weight as u64);
                        ranked.insert((Reverse(package.rate()), descendant));
                    }
                }
                total_weight += entry.weight as u64;
                template.total_fee = template.total_fee.saturating_add(entry.fee);
                template.transactions.push(entry.tx.clone());
            }
        }
        template.total_weight = usize::try_from(total_weight).unwrap_or(usize::MAX);
        template
    }
}
