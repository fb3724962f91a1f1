//! The size cap: eviction of the lowest descendant-fee-rate packages, descendants with them, and refusal of a
//! newcomer that does not pay more than what would be evicted.

mod mempool_common;

use chain::ledger::TxRejection;
use mempool_common::*;

/// Pool with room for exactly three unit transactions holding: `a` (fee 200) with child `a_child` (fee 1800) — a
/// package at 1000 per unit — and `b` (fee 5000).
struct Full {
    chain: std::collections::HashMap<elements::OutPoint, chain::ledger::Utxo>,
    coins: Vec<elements::OutPoint>,
    pool: chain::mempool::Mempool,
    a: elements::Transaction,
    a_child: elements::Transaction,
    b: elements::Transaction,
}

fn full_pool() -> Full {
    let (chain, coins) = funded_chain(6, 100_000);
    let mut pool = pool_with_cap(3 * unit_weight());
    let a = spend(&coins[..1], &[99_800]);
    let a_child = spend(&[out(&a, 0)], &[98_000]);
    let b = spend(&coins[1..2], &[95_000]);
    for tx in [&a, &a_child, &b] {
        assert_eq!(tx.weight(), unit_weight());
        let accepted = accept(&mut pool, &chain, tx, 0).expect("room");
        assert!(accepted.evicted.is_empty());
    }
    assert_eq!(pool.info().usage, 3 * unit_weight() as u64);
    Full {
        chain,
        coins,
        pool,
        a,
        a_child,
        b,
    }
}

#[test]
fn lowest_package_is_evicted_with_its_descendants() {
    let Full {
        chain,
        coins,
        mut pool,
        a,
        a_child,
        b,
    } = full_pool();
    // 3000 per unit beats the a-package's 1000 per unit.
    let newcomer = spend(&coins[2..3], &[97_000]);
    let accepted = accept(&mut pool, &chain, &newcomer, 1).expect("evicts the a package");
    let mut expected = vec![a.txid(), a_child.txid()];
    expected.sort();
    assert_eq!(accepted.evicted, expected);
    assert!(!pool.contains(&a.txid()));
    assert!(
        !pool.contains(&a_child.txid()),
        "a child must not outlive its evicted parent"
    );
    assert!(pool.contains(&b.txid()));
    assert!(pool.contains(&newcomer.txid()));
    assert_eq!(pool.spender_of(&coins[0]), None);
    assert!(pool.info().usage <= pool.info().max_weight_total as u64);
}

#[test]
fn newcomer_not_paying_more_than_the_evicted_is_refused_and_nothing_changes() {
    let Full {
        chain,
        coins,
        mut pool,
        a,
        a_child,
        b,
    } = full_pool();
    let before = pool.info();
    // 1000 per unit: equal to the a-package's rate, not above it.
    let equal = spend(&coins[2..3], &[99_000]);
    let refused = accept(&mut pool, &chain, &equal, 1).expect_err("not above");
    assert!(matches!(
        refused,
        TxRejection::Policy {
            reason: "mempool full",
            ..
        }
    ));
    let low = spend(&coins[3..4], &[99_900]);
    assert_eq!(
        accept(&mut pool, &chain, &low, 1).map_err(|e| e.reason()),
        Err("mempool full")
    );
    assert_eq!(pool.info(), before);
    for tx in [&a, &a_child, &b] {
        assert!(pool.contains(&tx.txid()));
    }
    // min_fee_rate_now tells what must be beaten: above the a-package's rate.
    let package_rate = 2_000 * 1000 / (2 * unit_weight().div_ceil(4) as u64);
    assert_eq!(before.min_fee_rate_now, package_rate + 1);
}

#[test]
fn test_accept_reports_mempool_full_too() {
    let Full {
        chain, coins, pool, ..
    } = full_pool();
    let low = spend(&coins[3..4], &[99_900]);
    assert_eq!(
        pool.test_accept(&low, &chain, fake_validate)
            .map_err(|e| e.reason()),
        Err("mempool full")
    );
    let high = spend(&coins[3..4], &[90_000]);
    let tested = pool
        .test_accept(&high, &chain, fake_validate)
        .expect("would evict");
    assert!(tested.evicted.is_empty(), "test_accept evicts nothing");
    assert_eq!(pool.len(), 3);
}

#[test]
fn newcomer_never_evicts_its_own_ancestors() {
    let (chain, coins) = funded_chain(4, 100_000);
    let mut pool = pool_with_cap(2 * unit_weight());
    let low_parent = spend(&coins[..1], &[99_900]); // 100 fee: the lowest package
    let mid = spend(&coins[1..2], &[99_000]); // 1000 fee
    accept(&mut pool, &chain, &low_parent, 0).expect("room");
    accept(&mut pool, &chain, &mid, 0).expect("room");
    // A high-fee child of the lowest package: evicting its parent would evict itself, so `mid` goes.
    let child = spend(&[out(&low_parent, 0)], &[90_000]);
    let accepted = accept(&mut pool, &chain, &child, 1).expect("evicts mid");
    assert_eq!(accepted.evicted, vec![mid.txid()]);
    assert!(pool.contains(&low_parent.txid()));
    assert!(pool.contains(&child.txid()));
}

#[test]
fn transaction_larger_than_the_whole_pool_is_refused() {
    let (chain, coins) = funded_chain(1, 100_000);
    let mut pool = pool_with_cap(unit_weight() / 2);
    let refused = accept(&mut pool, &chain, &spend(&coins, &[1_000]), 0).expect_err("too big");
    assert_eq!(refused.reason(), "mempool full");
    assert!(pool.is_empty());
}
