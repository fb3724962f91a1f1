//! After a block: confirmed transactions leave, conflicting ones leave with their descendants, the rest is
//! re-validated against the new chain state in dependency order.

mod mempool_common;

use chain::ledger::{TxRejection, Utxo, UtxoView, ValidatedTx};
use chain::mempool::{Mempool, MempoolLimits};
use elements::{Block, BlockHash, BlockHeader, OutPoint, Transaction, TxMerkleNode, Txid};
use mempool_common::*;
use std::collections::HashMap;

fn block(txdata: Vec<Transaction>) -> Block {
    Block {
        header: BlockHeader {
            version: 0x2000_0000,
            prev_blockhash: BlockHash::from_byte_array([0; 32]),
            merkle_root: TxMerkleNode::from_byte_array([0; 32]),
            time: 1_700_000_100,
            height: 2,
            ext: Default::default(),
        },
        txdata,
    }
}

/// `chain` after connecting `block`: block inputs spent, block outputs created at height 2.
fn connect(chain: &HashMap<OutPoint, Utxo>, block: &Block) -> HashMap<OutPoint, Utxo> {
    let mut next = chain.clone();
    for tx in &block.txdata {
        if !tx.is_coinbase() {
            for input in &tx.input {
                assert!(
                    next.remove(&input.previous_output).is_some(),
                    "block spends a missing output"
                );
            }
        }
        for (vout, txout) in tx.output.iter().enumerate() {
            next.insert(
                OutPoint::new(tx.txid(), vout as u32),
                confirmed(txout.clone(), 2),
            );
        }
    }
    next
}

fn dropped_map(dropped: Vec<(Txid, TxRejection)>) -> HashMap<Txid, TxRejection> {
    let count = dropped.len();
    let map: HashMap<Txid, TxRejection> = dropped.into_iter().collect();
    assert_eq!(map.len(), count, "a txid reported twice");
    map
}

#[test]
fn block_removes_confirmed_and_conflicting_transactions_and_their_descendants() {
    let (chain, coins) = funded_chain(4, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let p = spend(&coins[..1], &[99_000]);
    let p_child = spend(&[out(&p, 0)], &[98_000]);
    let x = spend(&coins[1..2], &[99_000]);
    let x_child = spend(&[out(&x, 0)], &[98_000]);
    let x_grandchild = spend(&[out(&x_child, 0)], &[97_000]);
    let z = spend(&coins[2..3], &[99_000]);
    for tx in [&p, &p_child, &x, &x_child, &x_grandchild, &z] {
        accept(&mut pool, &chain, tx, 0).expect("accepted");
    }
    // The block confirms p and a different spend of x's coin.
    let x_rival = spend(&coins[1..2], &[99_500]);
    let block = block(vec![coinbase(2), p.clone(), x_rival.clone()]);
    let new_chain = connect(&chain, &block);

    let mut validated = Vec::new();
    let dropped = pool.block_connected(&block, &new_chain, |view, tx| {
        validated.push(tx.txid());
        fake_validate(view, tx)
    });
    pool.check_invariants().expect("invariants after the block");
    let dropped = dropped_map(dropped);

    assert_eq!(dropped.len(), 3);
    assert_eq!(
        dropped.get(&x.txid()),
        Some(&TxRejection::DoubleSpend {
            reason: "bad-txns-inputs-missingorspent",
            input: 0,
            outpoint: coins[1].to_string(),
            spent_by: x_rival.txid().to_string(),
        })
    );
    assert_eq!(
        dropped.get(&x_child.txid()),
        Some(&TxRejection::MissingInput {
            input: 0,
            outpoint: out(&x, 0).to_string()
        })
    );
    assert_eq!(
        dropped.get(&x_grandchild.txid()),
        Some(&TxRejection::MissingInput {
            input: 0,
            outpoint: out(&x_child, 0).to_string()
        })
    );
    assert!(!dropped.contains_key(&p.txid()), "confirmed is not dropped");

    let mut remaining = pool.txids();
    remaining.sort();
    let mut expected = vec![p_child.txid(), z.txid()];
    expected.sort();
    assert_eq!(remaining, expected);
    // p's child now spends a confirmed output: no pooled ancestors left.
    let child_entry = pool.entry(&p_child.txid()).expect("stays");
    assert!(child_entry.depends.is_empty());
    assert_eq!(child_entry.ancestor_count, 1);
    assert_eq!(child_entry.ancestor_fee, 1_000);
    // Only the survivors were re-validated, against the new chain (p's output is confirmed there).
    validated.sort();
    assert_eq!(validated, expected);
    assert_eq!(pool.spender_of(&coins[1]), None);
    // The confirmed parent's output is still marked spent by the pooled child.
    assert_eq!(pool.spender_of(&out(&p, 0)), Some(p_child.txid()));
}

#[test]
fn revalidation_drops_failures_with_descendants_and_validates_parents_first() {
    let (chain, coins) = funded_chain(3, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let a = spend(&coins[..1], &[99_000]);
    let a_child = spend(&[out(&a, 0)], &[98_000]);
    let a_grandchild = spend(&[out(&a_child, 0)], &[97_000]);
    let b = spend(&coins[1..2], &[99_000]);
    let b_child = spend(&[out(&b, 0)], &[98_000]);
    let c = spend(&coins[2..], &[99_000]);
    // Accept in an order where txid order differs from dependency order for some of them.
    for tx in [&a, &b, &c, &a_child, &b_child, &a_grandchild] {
        accept(&mut pool, &chain, tx, 0).expect("accepted");
    }
    // An empty block (coinbase only): nothing confirmed, but the new rules refuse b (say, a lock time).
    let block = block(vec![coinbase(3)]);
    let new_chain = connect(&chain, &block);
    let b_txid = b.txid();
    let refusal = TxRejection::NotFinal {
        reason: "bad-txns-nonfinal",
        detail: "lock time not reached".into(),
    };
    let mut order = Vec::new();
    let dropped = pool.block_connected(&block, &new_chain, |view: &dyn UtxoView, tx| {
        order.push(tx.txid());
        if tx.txid() == b_txid {
            return Err(refusal.clone());
        }
        // fake_validate fails with MissingInput if a child is validated before its parent.
        fake_validate(view, tx)
    });
    pool.check_invariants().expect("invariants");
    assert_eq!(
        dropped,
        vec![
            (b.txid(), refusal.clone()),
            (
                b_child.txid(),
                TxRejection::MissingInput {
                    input: 0,
                    outpoint: out(&b, 0).to_string()
                }
            )
        ]
    );
    assert!(
        !order.contains(&b_child.txid()),
        "a dropped parent's child is not validated"
    );
    let position = |txid: Txid| order.iter().position(|t| *t == txid).expect("validated");
    assert!(position(a.txid()) < position(a_child.txid()));
    assert!(position(a_child.txid()) < position(a_grandchild.txid()));
    assert_eq!(pool.len(), 4);
    assert!(pool.contains(&a_grandchild.txid()));
    assert!(!pool.contains(&b.txid()) && !pool.contains(&b_child.txid()));
    assert_eq!(pool.spender_of(&coins[1]), None);
}

#[test]
fn revalidation_against_the_new_chain_drops_what_it_cannot_find() {
    // The caller's chain view is what re-validation sees: a pooled transaction whose confirmed input vanished
    // (spent by the block through a path the pool did not index) is dropped.
    let (chain, coins) = funded_chain(2, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let a = spend(&coins[..1], &[99_000]);
    let a_child = spend(&[out(&a, 0)], &[98_000]);
    accept(&mut pool, &chain, &a, 0).expect("a");
    accept(&mut pool, &chain, &a_child, 0).expect("child");
    let block = block(vec![coinbase(4)]);
    let mut new_chain = connect(&chain, &block);
    new_chain.remove(&coins[0]);
    let dropped = pool.block_connected(&block, &new_chain, fake_validate);
    assert_eq!(
        dropped,
        vec![
            (
                a.txid(),
                TxRejection::MissingInput {
                    input: 0,
                    outpoint: coins[0].to_string()
                }
            ),
            (
                a_child.txid(),
                TxRejection::MissingInput {
                    input: 0,
                    outpoint: out(&a, 0).to_string()
                }
            )
        ]
    );
    assert!(pool.is_empty());
    pool.check_invariants().expect("invariants");
}

#[test]
fn revalidated_transactions_keep_their_place_and_new_ones_chain_on_them() {
    let (chain, coins) = funded_chain(2, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let a = spend(&coins[..1], &[99_000]);
    let b = spend(&coins[1..], &[99_000]);
    accept(&mut pool, &chain, &a, 0).expect("a");
    accept(&mut pool, &chain, &b, 0).expect("b");
    let block = block(vec![coinbase(5), a.clone()]);
    let new_chain = connect(&chain, &block);
    let dropped = pool.block_connected(
        &block,
        &new_chain,
        |view, tx| -> Result<ValidatedTx, TxRejection> { fake_validate(view, tx) },
    );
    assert!(dropped.is_empty());
    assert_eq!(pool.txids(), vec![b.txid()]);
    // A child of the now-confirmed a and one of the pooled b are accepted against the new chain.
    accept(&mut pool, &new_chain, &spend(&[out(&a, 0)], &[98_000]), 1).expect("child of confirmed");
    accept(&mut pool, &new_chain, &spend(&[out(&b, 0)], &[98_000]), 1).expect("child of pooled");
    assert_eq!(pool.len(), 3);
    assert_eq!(pool.info().total_fee, 3_000);
}

#[test]
fn revalidation_refreshes_the_height_of_unconfirmed_outputs() {
    let (chain, coins) = funded_chain(1, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let parent = spend(&coins, &[99_000]);
    let child = spend(&[out(&parent, 0)], &[98_000]);
    // Validators date created outputs at the block they would be in.
    let dated = |height: u32| {
        move |view: &dyn UtxoView, tx: &Transaction| {
            let mut validated = fake_validate(view, tx)?;
            for (_, utxo) in &mut validated.created {
                utxo.height = height;
            }
            Ok(validated)
        }
    };
    pool.accept(parent.clone(), 0, &chain, dated(11))
        .expect("parent");
    pool.accept(child.clone(), 0, &chain, dated(11))
        .expect("child");
    let block = block(vec![coinbase(6)]);
    let new_chain = connect(&chain, &block);
    assert!(pool
        .block_connected(&block, &new_chain, dated(12))
        .is_empty());
    for txid in [parent.txid(), child.txid()] {
        let entry = pool.entry(&txid).expect("stays");
        assert!(entry.created.iter().all(|(_, utxo)| utxo.height == 12));
    }
    // The mempool view now reports the refreshed height to a grandchild's validator.
    let grandchild = spend(&[out(&child, 0)], &[97_000]);
    pool.accept(grandchild, 0, &chain, |view, tx| {
        let coin = view
            .utxo(&tx.input[0].previous_output)?
            .expect("pooled output visible");
        assert_eq!(coin.height, 12);
        fake_validate(view, tx)
    })
    .expect("grandchild");
}

#[test]
fn block_claiming_a_pooled_pegin_drops_the_pooled_claim() {
    let (chain, _) = funded_chain(1, 100_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let bitcoin_output = out(&spend(&[], &[42]), 1);
    let mut claim = spend(&[bitcoin_output], &[0]);
    claim.input[0].is_pegin = true;
    // The fake validator cannot value a peg-in: accept the claim with a validator that trusts it.
    pool.accept(claim.clone(), 0, &chain, |_, tx| {
        let weight = tx.weight();
        Ok(ValidatedTx {
            txid: tx.txid(),
            fee: 1_000,
            weight,
            vsize: weight.div_ceil(4),
            spent: Vec::new(),
            created: Vec::new(),
            pegouts: Vec::new(),
            issuances: Vec::new(),
        })
    })
    .expect("claim");
    let mut rival = spend(&[bitcoin_output], &[1]);
    rival.input[0].is_pegin = true;
    let block = block(vec![coinbase(7), rival.clone()]);
    let dropped = pool.block_connected(&block, &chain, fake_validate);
    assert_eq!(
        dropped,
        vec![(
            claim.txid(),
            TxRejection::DoubleSpend {
                reason: "bad-txns-inputs-missingorspent",
                input: 0,
                outpoint: bitcoin_output.to_string(),
                spent_by: rival.txid().to_string(),
            }
        )]
    );
    assert!(pool.is_empty());
    pool.check_invariants().expect("invariants");
}
