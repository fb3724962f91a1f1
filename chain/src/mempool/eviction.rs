//! Choosing what to evict when the pool is full.

use super::fee_rate::PackageRate;
use super::Mempool;
use crate::ledger::TxRejection;
use elements::Txid;
use std::collections::BTreeSet;

impl Mempool {
    /// The packages to evict to free `to_free` weight for a new transaction paying `new_rate`: lowest descendant
    /// fee rate first (ties by txid), each taken with all its descendants so no child outlives its parent.
    /// Transactions in `protected` (the newcomer's ancestors) are skipped: evicting them would evict the newcomer.
    /// Refused with "mempool full" if a package that would have to go pays at least `new_rate`, or if evicting
    /// everything allowed still frees too little.
    pub(super) fn plan_eviction(
        &self,
        to_free: u64,
        new_rate: PackageRate,
        protected: &BTreeSet<Txid>,
    ) -> Result<BTreeSet<Txid>, TxRejection> {
        let mut evict: BTreeSet<Txid> = BTreeSet::new();
        let mut freed: u64 = 0;
        for (rate, txid) in &self.by_descendant_rate {
            if freed >= to_free {
                break;
            }
            if evict.contains(txid) || protected.contains(txid) {
                continue;
            }
            if *rate >= new_rate {
                return Err(mempool_full(new_rate, Some(*rate)));
            }
            for member in self.with_descendants([*txid]) {
                if evict.insert(member) {
                    freed += self.entries.get(&member).map_or(0, |e| e.weight as u64);
                }
            }
        }
        if freed < to_free {
            return Err(mempool_full(new_rate, None));
        }
        Ok(evict)
    }
}

fn mempool_full(new_rate: PackageRate, blocking: Option<PackageRate>) -> TxRejection {
    let detail = match blocking {
        Some(blocking) => format!(
            "fee rate {} sat/kvB is not above the {} sat/kvB of the packages that would have to be evicted",
            new_rate.per_kvb(),
            blocking.per_kvb()
        ),
        None => format!(
            "no room can be made for a transaction paying {} sat/kvB",
            new_rate.per_kvb()
        ),
    };
    TxRejection::Policy {
        reason: "mempool full",
        detail,
    }
}
