//! Admission: chains of unconfirmed transactions, duplicates, conflicts (no RBF), fees, standardness, chain
//! limits, test_accept, queries and removal.

mod mempool_common;

use chain::ledger::{RejectionClass, TxRejection};
use chain::mempool::{Mempool, MempoolLimits};
use mempool_common::*;

#[test]
fn chain_of_unconfirmed_transactions_is_accepted_and_linked() {
    let (chain, coins) = funded_chain(1, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let parent = spend(&coins, &[99_000]);
    let child = spend(&[out(&parent, 0)], &[98_000]);
    let grandchild = spend(&[out(&child, 0)], &[97_500]);

    let accepted = accept(&mut pool, &chain, &parent, 10).expect("parent");
    assert_eq!(accepted.fee, 1_000);
    assert_eq!(accepted.txid, parent.txid());
    assert_eq!(accepted.vsize, parent.weight().div_ceil(4));
    assert_eq!(accepted.fee_rate, 1_000 * 1000 / accepted.vsize as u64);
    accept(&mut pool, &chain, &child, 20).expect("child of an unconfirmed parent");
    accept(&mut pool, &chain, &grandchild, 30).expect("grandchild");

    assert_eq!(pool.len(), 3);
    let child_entry = pool.entry(&child.txid()).expect("child pooled");
    assert_eq!(child_entry.fee, 1_000);
    assert_eq!(child_entry.time_ms, 20);
    assert!(child_entry.depends.contains(&parent.txid()));
    assert!(child_entry.spent_by.contains(&grandchild.txid()));
    assert_eq!(child_entry.ancestor_count, 2);
    assert_eq!(child_entry.descendant_count, 2);
    let parent_entry = pool.entry(&parent.txid()).expect("parent pooled");
    assert_eq!(parent_entry.descendant_count, 3);
    assert_eq!(parent_entry.descendant_fee, 2_500);
    assert_eq!(pool.spender_of(&coins[0]), Some(parent.txid()));
    assert_eq!(pool.spender_of(&out(&parent, 0)), Some(child.txid()));
    assert_eq!(pool.get(&grandchild.txid()), Some(&grandchild));

    let info = pool.info();
    assert_eq!(info.size, 3);
    assert_eq!(info.total_fee, 2_500);
    let weights: usize = [&parent, &child, &grandchild]
        .iter()
        .map(|t| t.weight())
        .sum();
    assert_eq!(info.usage, weights as u64);
    assert_eq!(info.min_fee_rate_now, 100);
}

#[test]
fn duplicate_is_refused_as_already_known() {
    let (chain, coins) = funded_chain(1, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let tx = spend(&coins, &[99_000]);
    accept(&mut pool, &chain, &tx, 0).expect("first");
    let refused = accept(&mut pool, &chain, &tx, 1).expect_err("duplicate");
    assert_eq!(
        refused,
        TxRejection::AlreadyKnown {
            reason: "txn-already-in-mempool"
        }
    );
    assert_eq!(refused.class(), RejectionClass::AlreadyKnown);
    assert_eq!(pool.len(), 1);
}

#[test]
fn conflict_is_refused_naming_the_first_seen_transaction() {
    let (chain, coins) = funded_chain(2, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let first = spend(&coins[..1], &[99_000]);
    accept(&mut pool, &chain, &first, 0).expect("first");
    // A higher fee does not replace it: no RBF.
    let second = spend(&[coins[1], coins[0]], &[150_000]);
    let refused = accept(&mut pool, &chain, &second, 1).expect_err("conflict");
    assert_eq!(
        refused,
        TxRejection::DoubleSpend {
            reason: "txn-mempool-conflict",
            input: 1,
            outpoint: coins[0].to_string(),
            spent_by: first.txid().to_string(),
        }
    );
    assert_eq!(refused.class(), RejectionClass::Conflict);
    assert!(pool.contains(&first.txid()));
    assert!(!pool.contains(&second.txid()));
    assert_eq!(pool.spender_of(&coins[1]), None);
}

#[test]
fn fee_below_min_relay_is_refused() {
    let (chain, coins) = funded_chain(2, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let tx = spend(&coins[..1], &[100_000]);
    let vsize = tx.weight().div_ceil(4);
    let required = (100 * vsize as u64).div_ceil(1000);
    let refused = accept(&mut pool, &chain, &tx, 0).expect_err("zero fee");
    assert_eq!(
        refused,
        TxRejection::FeeTooLow {
            fee: 0,
            required,
            vsize
        }
    );
    let just_below = spend(&coins[..1], &[100_000 - (required - 1)]);
    assert!(matches!(
        accept(&mut pool, &chain, &just_below, 0),
        Err(TxRejection::FeeTooLow { .. })
    ));
    let exact = spend(&coins[1..2], &[100_000 - required]);
    accept(&mut pool, &chain, &exact, 0).expect("exactly the minimum");
    assert_eq!(pool.len(), 1);
}

#[test]
fn non_standard_weight_is_refused_before_validation() {
    let (chain, coins) = funded_chain(1, 100_000);
    let mut pool = Mempool::new(MempoolLimits {
        max_tx_weight: 2_000,
        ..MempoolLimits::default()
    });
    let heavy = spend_padded(&coins, &[90_000], 600);
    assert!(heavy.weight() > 2_000);
    let mut validator_called = false;
    let refused = pool
        .accept(heavy, 0, &chain, |view, tx| {
            validator_called = true;
            fake_validate(view, tx)
        })
        .expect_err("too heavy");
    assert_eq!(refused.reason(), "tx-size");
    assert!(!validator_called);
    assert!(pool.is_empty());
}

#[test]
fn validation_errors_pass_through_unchanged() {
    let (chain, coins) = funded_chain(1, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let orphan = spend(&[out(&spend(&coins, &[1]), 0)], &[1]);
    let refused = accept(&mut pool, &chain, &orphan, 0).expect_err("unknown input");
    assert_eq!(
        refused,
        TxRejection::MissingInput {
            input: 0,
            outpoint: orphan.input[0].previous_output.to_string()
        }
    );
    let custom = TxRejection::Script {
        input: 0,
        detail: "signature does not verify".into(),
    };
    let tx = spend(&coins, &[90_000]);
    let refused = pool
        .accept(tx, 0, &chain, |_, _| Err(custom.clone()))
        .expect_err("validator refuses");
    assert_eq!(refused, custom);
    assert!(pool.is_empty());
}

#[test]
fn coinbase_is_refused() {
    let (chain, _) = funded_chain(1, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let refused = accept(&mut pool, &chain, &coinbase(1), 0).expect_err("coinbase");
    assert_eq!(refused.reason(), "coinbase");
}

#[test]
fn too_long_chain_is_refused_at_the_ancestor_limit() {
    let (chain, coins) = funded_chain(1, 1_000_000);
    let mut pool = Mempool::new(MempoolLimits {
        max_ancestors: 5,
        max_descendants: 100,
        ..MempoolLimits::default()
    });
    let mut previous = coins[0];
    let mut value = 1_000_000;
    for _ in 0..5 {
        value -= 1_000;
        let tx = spend(&[previous], &[value]);
        accept(&mut pool, &chain, &tx, 0).expect("within the limit");
        previous = out(&tx, 0);
    }
    let sixth = spend(&[previous], &[value - 1_000]);
    let refused = accept(&mut pool, &chain, &sixth, 0).expect_err("sixth in chain");
    assert_eq!(refused.reason(), "too-long-mempool-chain");
    assert_eq!(pool.len(), 5);
}

#[test]
fn too_many_descendants_is_refused() {
    let (chain, coins) = funded_chain(1, 1_000_000);
    let mut pool = Mempool::new(MempoolLimits {
        max_ancestors: 100,
        max_descendants: 4,
        ..MempoolLimits::default()
    });
    let fan = spend(&coins, &[100_000; 6]);
    accept(&mut pool, &chain, &fan, 0).expect("fan-out parent");
    for vout in 0..3 {
        accept(&mut pool, &chain, &spend(&[out(&fan, vout)], &[99_000]), 0).expect("child");
    }
    let refused = accept(&mut pool, &chain, &spend(&[out(&fan, 3)], &[99_000]), 0)
        .expect_err("fourth child gives the parent 5 descendants");
    assert_eq!(refused.reason(), "too-long-mempool-chain");
    assert!(refused.to_string().contains(&fan.txid().to_string()));
}

#[test]
fn test_accept_checks_without_changing_the_pool() {
    let (chain, coins) = funded_chain(1, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let parent = spend(&coins, &[99_000]);
    let tested = pool
        .test_accept(&parent, &chain, fake_validate)
        .expect("would be accepted");
    assert_eq!(tested.fee, 1_000);
    assert!(pool.is_empty());
    accept(&mut pool, &chain, &parent, 0).expect("accepted");
    assert_eq!(
        pool.test_accept(&parent, &chain, fake_validate),
        Err(TxRejection::AlreadyKnown {
            reason: "txn-already-in-mempool"
        })
    );
    let conflict = spend(&coins, &[98_000]);
    assert_eq!(
        pool.test_accept(&conflict, &chain, fake_validate)
            .map_err(|e| e.reason()),
        Err("txn-mempool-conflict")
    );
    let child = spend(&[out(&parent, 0)], &[98_000]);
    pool.test_accept(&child, &chain, fake_validate)
        .expect("child of a pooled parent would be accepted");
    assert_eq!(pool.len(), 1);
}

#[test]
fn remove_takes_descendants_and_frees_outputs() {
    let (chain, coins) = funded_chain(2, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let parent = spend(&coins[..1], &[99_000]);
    let child = spend(&[out(&parent, 0)], &[98_000]);
    let other = spend(&coins[1..], &[99_000]);
    for tx in [&parent, &child, &other] {
        accept(&mut pool, &chain, tx, 0).expect("accepted");
    }
    let mut removed = pool.remove(&parent.txid());
    removed.sort();
    let mut expected = vec![parent.txid(), child.txid()];
    expected.sort();
    assert_eq!(removed, expected);
    pool.check_invariants().expect("invariants after remove");
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.spender_of(&coins[0]), None);
    assert!(pool.remove(&parent.txid()).is_empty());
    // The freed output can be spent again.
    accept(&mut pool, &chain, &spend(&coins[..1], &[97_000]), 0).expect("respend");
}

#[test]
fn removing_a_middle_transaction_updates_ancestor_aggregates() {
    let (chain, coins) = funded_chain(1, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let a = spend(&coins, &[99_000]);
    let b = spend(&[out(&a, 0)], &[98_000]);
    let c = spend(&[out(&b, 0)], &[97_000]);
    for tx in [&a, &b, &c] {
        accept(&mut pool, &chain, tx, 0).expect("accepted");
    }
    pool.remove(&b.txid());
    pool.check_invariants().expect("invariants");
    let a_entry = pool.entry(&a.txid()).expect("a stays");
    assert_eq!(a_entry.descendant_count, 1);
    assert_eq!(a_entry.descendant_fee, 1_000);
    assert!(a_entry.spent_by.is_empty());
    assert!(!pool.contains(&c.txid()));
}

#[test]
fn txids_are_sorted_by_descending_fee_rate() {
    let (chain, coins) = funded_chain(3, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let low = spend(&coins[..1], &[99_900]);
    let high = spend(&coins[1..2], &[90_000]);
    let mid = spend(&coins[2..], &[99_000]);
    for tx in [&low, &high, &mid] {
        accept(&mut pool, &chain, tx, 0).expect("accepted");
    }
    assert_eq!(pool.txids(), vec![high.txid(), mid.txid(), low.txid()]);
}

#[test]
fn expired_transactions_leave_with_descendants() {
    let (chain, coins) = funded_chain(2, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let old = spend(&coins[..1], &[99_000]);
    let young_child = spend(&[out(&old, 0)], &[98_000]);
    let young = spend(&coins[1..], &[99_000]);
    accept(&mut pool, &chain, &old, 1_000).expect("old");
    accept(&mut pool, &chain, &young_child, 5_000).expect("young child");
    accept(&mut pool, &chain, &young, 5_000).expect("young");
    let removed = pool.remove_older_than(2_000);
    assert_eq!(removed.len(), 2);
    assert!(pool.contains(&young.txid()));
    assert_eq!(pool.len(), 1);
    pool.check_invariants().expect("invariants");
}

/// Validates explicit amounts like [`fake_validate`], letting every peg-in input claim 100,000.
fn pegin_validate(
    view: &dyn chain::ledger::UtxoView,
    tx: &elements::Transaction,
) -> Result<chain::ledger::ValidatedTx, TxRejection> {
    let mut value_in = 0;
    for (index, input) in tx.input.iter().enumerate() {
        if input.is_pegin {
            value_in += 100_000;
            continue;
        }
        let coin = view
            .utxo(&input.previous_output)?
            .ok_or(TxRejection::MissingInput {
                input: index,
                outpoint: input.previous_output.to_string(),
            })?;
        value_in += coin.txout.value.explicit().unwrap_or(0);
    }
    let value_out: u64 = tx
        .output
        .iter()
        .map(|o| o.value.explicit().unwrap_or(0))
        .sum();
    let weight = tx.weight();
    Ok(chain::ledger::ValidatedTx {
        txid: tx.txid(),
        fee: value_in - value_out,
        weight,
        vsize: weight.div_ceil(4),
        spent: Vec::new(),
        created: (0..tx.output.len() as u32)
            .map(|vout| {
                (
                    out(tx, vout),
                    confirmed(tx.output[vout as usize].clone(), 2),
                )
            })
            .collect(),
        pegouts: Vec::new(),
        issuances: Vec::new(),
    })
}

#[test]
fn two_claims_of_the_same_pegin_conflict() {
    let (chain, _) = funded_chain(1, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let bitcoin_output = out(&spend(&[], &[42]), 3);
    let mut claim = spend(&[bitcoin_output], &[99_000]);
    claim.input[0].is_pegin = true;
    let mut rival = spend(&[bitcoin_output], &[98_000]);
    rival.input[0].is_pegin = true;
    let accepted = pool
        .accept(claim.clone(), 0, &chain, pegin_validate)
        .expect("claim");
    assert_eq!(accepted.fee, 1_000);
    assert_eq!(pool.pegin_claimer_of(&bitcoin_output), Some(claim.txid()));
    assert_eq!(pool.spender_of(&bitcoin_output), None);
    let refused = pool
        .accept(rival, 0, &chain, pegin_validate)
        .expect_err("second claim");
    assert_eq!(
        refused,
        TxRejection::DoubleSpend {
            reason: "txn-mempool-conflict",
            input: 0,
            outpoint: bitcoin_output.to_string(),
            spent_by: claim.txid().to_string(),
        }
    );
    pool.check_invariants().expect("invariants");
    pool.remove(&claim.txid());
    assert_eq!(pool.pegin_claimer_of(&bitcoin_output), None);
}

#[test]
fn real_validator_plugs_in_and_its_verdict_is_kept() {
    use chain::ledger::{validate_transaction, LedgerContext, RefusePegins};
    let ctx = LedgerContext {
        height: 10,
        lock_time_cutoff: 1_700_000_000,
        policy_asset: policy_asset(),
        genesis_hash: elements::BlockHash::from_byte_array([1; 32]),
        parent_genesis_hash: [2; 32],
        fee_script: elements::Script::new(),
        coinbase_maturity: 100,
        block_time: 1_700_000_600,
    };
    let (chain, coins) = funded_chain(1, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    // Elements pays fees to an explicit output with an empty script.
    let mut tx = spend(&coins, &[99_000, 1_000]);
    tx.output[1].script_pubkey = elements::Script::new();
    let direct = validate_transaction(&ctx, &chain, &RefusePegins, &tx);
    let through_pool = pool.accept(tx.clone(), 0, &chain, |view, tx| {
        validate_transaction(&ctx, &view, &RefusePegins, tx)
    });
    match (direct, through_pool) {
        (Ok(validated), Ok(accepted)) => {
            assert_eq!(accepted.fee, 1_000);
            assert_eq!(accepted.fee, validated.fee);
            assert!(pool.contains(&tx.txid()));
            // Its child validates against the chain overlaid with the pool.
            let mut child = spend(&[out(&tx, 0)], &[98_500, 500]);
            child.output[1].script_pubkey = elements::Script::new();
            let accepted = pool
                .accept(child, 1, &chain, |view, tx| {
                    validate_transaction(&ctx, &view, &RefusePegins, tx)
                })
                .expect("child of a pooled parent");
            assert_eq!(accepted.fee, 500);
            assert_eq!(pool.template(4_000_000).total_fee, 1_500);
        }
        (Err(direct), Err(through_pool)) => {
            eprintln!("refused by the real validator: {direct}");
            assert_eq!(through_pool, direct);
            assert!(pool.is_empty());
        }
        (direct, through_pool) => panic!("direct {direct:?} but through the pool {through_pool:?}"),
    }
}

#[test]
fn input_spent_twice_by_the_same_transaction_is_refused_even_by_a_lax_validator() {
    let (chain, coins) = funded_chain(1, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let twice = spend(&[coins[0], coins[0]], &[150_000]);
    let refused = accept(&mut pool, &chain, &twice, 0).expect_err("duplicate input");
    assert_eq!(refused.reason(), "bad-txns-inputs-duplicate");
    assert!(pool.is_empty());
}
