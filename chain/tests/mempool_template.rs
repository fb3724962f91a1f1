//! Block templates: fee-rate order, the weight cap, parents before children, child-pays-for-parent, determinism.

mod mempool_common;

use chain::mempool::{Mempool, MempoolLimits};
use elements::{Transaction, Txid};
use mempool_common::*;
use std::collections::HashSet;

fn txids(transactions: &[Transaction]) -> Vec<Txid> {
    transactions.iter().map(Transaction::txid).collect()
}

/// Every input spending a template transaction comes after it.
fn assert_parents_first(transactions: &[Transaction]) {
    let mut seen: HashSet<Txid> = HashSet::new();
    let all: HashSet<Txid> = transactions.iter().map(Transaction::txid).collect();
    for tx in transactions {
        for input in &tx.input {
            let parent = input.previous_output.txid;
            assert!(
                !all.contains(&parent) || seen.contains(&parent),
                "{} comes before its parent {parent}",
                tx.txid()
            );
        }
        seen.insert(tx.txid());
    }
}

#[test]
fn template_orders_by_fee_rate_and_sums_fees() {
    let (chain, coins) = funded_chain(3, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let low = spend(&coins[..1], &[99_500]);
    let high = spend(&coins[1..2], &[95_000]);
    let mid = spend(&coins[2..], &[98_000]);
    for tx in [&low, &high, &mid] {
        accept(&mut pool, &chain, tx, 0).expect("accepted");
    }
    let template = pool.template(4_000_000);
    assert_eq!(
        txids(&template.transactions),
        vec![high.txid(), mid.txid(), low.txid()]
    );
    assert_eq!(template.total_fee, 500 + 5_000 + 2_000);
    assert_eq!(template.total_weight, 3 * unit_weight());
}

#[test]
fn template_respects_the_weight_cap() {
    let (chain, coins) = funded_chain(10, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    for (index, coin) in coins.iter().enumerate() {
        let tx = spend(&[*coin], &[90_000 - index as u64 * 100]);
        accept(&mut pool, &chain, &tx, 0).expect("accepted");
    }
    let cap = 4 * unit_weight() + unit_weight() / 2;
    let template = pool.template(cap);
    assert_eq!(template.transactions.len(), 4);
    assert!(template.total_weight <= cap);
    // The four best: the highest fees (last coins).
    let fees: u64 = (6..10).map(|index| 10_000 + index * 100).sum();
    assert_eq!(template.total_fee, fees);
    assert_eq!(pool.template(unit_weight() - 1).transactions.len(), 0);
    assert_eq!(pool.template(0), chain::mempool::BlockTemplate::default());
}

#[test]
fn skipped_heavy_transaction_does_not_stop_lighter_ones() {
    let (chain, coins) = funded_chain(2, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let heavy = spend_padded(&coins[..1], &[50_000], 400); // best absolute fee and rate
    let light = spend(&coins[1..], &[99_000]);
    accept(&mut pool, &chain, &heavy, 0).expect("heavy");
    accept(&mut pool, &chain, &light, 0).expect("light");
    let template = pool.template(heavy.weight() - 1);
    assert_eq!(txids(&template.transactions), vec![light.txid()]);
}

#[test]
fn parents_come_before_children_and_child_pays_for_parent() {
    let (chain, coins) = funded_chain(2, 1_000_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let parent = spend(&coins[..1], &[999_900]); // 100 fee: lowest own rate
    let child = spend(&[out(&parent, 0)], &[979_900]); // 20,000 fee
    let grandchild = spend(&[out(&child, 0)], &[979_000]); // 900 fee
    let other = spend(&coins[1..], &[995_000]); // 5,000 fee
                                                // Accept children in order; the pool sees them after their parents.
    for tx in [&parent, &child, &grandchild, &other] {
        accept(&mut pool, &chain, tx, 0).expect("accepted");
    }
    let template = pool.template(4_000_000);
    assert_parents_first(&template.transactions);
    // parent+child package: 20,100 over 2 units beats other's 5,000 over 1 unit.
    assert_eq!(
        txids(&template.transactions),
        vec![parent.txid(), child.txid(), other.txid(), grandchild.txid()]
    );
    // Room for two units only: the parent+child package wins over `other`.
    let two = pool.template(2 * unit_weight());
    assert_eq!(txids(&two.transactions), vec![parent.txid(), child.txid()]);
    assert_eq!(two.total_fee, 20_100);
}

#[test]
fn equal_fee_rates_are_ordered_by_txid() {
    let (chain, coins) = funded_chain(6, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let txs: Vec<Transaction> = coins.iter().map(|c| spend(&[*c], &[99_000])).collect();
    for tx in txs.iter().rev() {
        accept(&mut pool, &chain, tx, 0).expect("accepted");
    }
    let mut expected: Vec<Txid> = txs.iter().map(Transaction::txid).collect();
    expected.sort();
    assert_eq!(txids(&pool.template(4_000_000).transactions), expected);
    assert_eq!(pool.txids(), expected);
}

#[test]
fn large_random_pool_template_is_valid_and_within_cap() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(42);
    let (chain, coins) = funded_chain(200, 1_000_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let mut spendable: Vec<(elements::OutPoint, u64)> =
        coins.iter().map(|c| (*c, 1_000_000)).collect();
    for _ in 0..600 {
        let pick = rng.gen_range(0..spendable.len());
        let (outpoint, value) = spendable.swap_remove(pick);
        let fee = rng.gen_range(100..5_000);
        let Some(rest) = value.checked_sub(fee) else {
            continue;
        };
        let tx = spend(&[outpoint], &[rest / 2, rest - rest / 2]);
        if accept(&mut pool, &chain, &tx, 0).is_ok() {
            spendable.push((out(&tx, 0), rest / 2));
            spendable.push((out(&tx, 1), rest - rest / 2));
        }
    }
    assert!(pool.len() > 300);
    let cap = 50 * unit_weight();
    let template = pool.template(cap);
    assert!(template.total_weight <= cap);
    assert!(template.transactions.len() >= 30);
    assert_parents_first(&template.transactions);
    // Maximal: no left-out transaction whose pooled parents are all in the template still fits.
    let included: HashSet<Txid> = txids(&template.transactions).into_iter().collect();
    let room = cap - template.total_weight;
    for txid in pool.txids() {
        let entry = pool.entry(&txid).expect("pooled");
        if !included.contains(&txid) && entry.depends.iter().all(|p| included.contains(p)) {
            assert!(entry.weight > room, "{txid} fits in the {room} weight left");
        }
    }
    let weight: usize = template.transactions.iter().map(Transaction::weight).sum();
    assert_eq!(weight, template.total_weight);
    let fee: u64 = template
        .transactions
        .iter()
        .map(|tx| pool.entry(&tx.txid()).expect("pooled").fee)
        .sum();
    assert_eq!(fee, template.total_fee);
    // Deterministic.
    assert_eq!(pool.template(cap), template);
    let everything = pool.template(usize::MAX);
    assert_eq!(everything.transactions.len(), pool.len());
    assert_parents_first(&everything.transactions);
}
