//! Block connection: coinbase and fee rules, witness commitment, in-block spends, double spends.

mod ledger_common;

use chain::ledger::{
    check_witness_commitment, connect_block, finish_coinbase, genesis_delta, is_witness_commitment,
    BlockLedgerError, RefusePegins, TxRejection, Utxo,
};
use elements::{OutPoint, Transaction, TxOut};
use ledger_common::*;
use std::collections::HashMap;

struct Fixture {
    view: HashMap<OutPoint, Utxo>,
    a: OutPoint,
    b: OutPoint,
    a_out: TxOut,
}

fn fixture() -> Fixture {
    let coin_a = coin(9, 0, lbtc_out(p2wpkh(&key(1)), 100_000), 10, false);
    let coin_b = coin(8, 1, lbtc_out(p2wpkh(&key(2)), 50_000), 10, false);
    Fixture {
        view: view(&[coin_a.clone(), coin_b.clone()]),
        a: coin_a.0,
        b: coin_b.0,
        a_out: coin_a.1.txout,
    }
}

/// Key 1 spends A: 90_000 to key 3, 9_000 change, fee 1_000.
fn tx1(f: &Fixture) -> Transaction {
    let mut t = tx(
        vec![input(f.a)],
        vec![
            lbtc_out(p2wpkh(&key(3)), 90_000),
            lbtc_out(p2wpkh(&key(1)), 9_000),
            fee_out(1_000),
        ],
    );
    sign_all(&mut t, &[key(1)], std::slice::from_ref(&f.a_out));
    t
}

/// Key 2 spends B into one blinded output of 49_500, fee 500.
fn tx2(f: &Fixture) -> Transaction {
    let spent = f.view[&f.b].txout.clone();
    let mut t = tx(
        vec![input(f.b)],
        vec![
            to_blind(policy_asset(), p2wpkh(&key(4)), 49_500, blinding_pk(4)),
            fee_out(500),
        ],
    );
    blind(&mut t, &[explicit_secrets(policy_asset(), 50_000)], 7);
    sign_all(&mut t, &[key(2)], &[spent]);
    t
}

/// Key 3 spends tx1's first output (created in the same block): 89_000 to key 5, fee 1_000.
fn tx3(t1: &Transaction) -> Transaction {
    let spent = t1.output[0].clone();
    let mut t = tx(
        vec![input(OutPoint::new(t1.txid(), 0))],
        vec![lbtc_out(p2wpkh(&key(5)), 89_000), fee_out(1_000)],
    );
    sign_all(&mut t, &[key(3)], &[spent]);
    t
}

fn finished(txs: Vec<Transaction>, fees: u64) -> elements::Block {
    let mut all = vec![coinbase(HEIGHT)];
    all.extend(txs);
    let mut b = block(all);
    finish_coinbase(&mut b, &ctx(), fees);
    b
}

#[test]
fn block_with_an_in_block_spend_connects_with_the_right_delta() {
    let f = fixture();
    let (t1, t2) = (tx1(&f), tx2(&f));
    let t3 = tx3(&t1);
    let b = finished(vec![t1.clone(), t2.clone(), t3.clone()], 2_500);
    let cb = &b.txdata[0];
    assert!(cb
        .output
        .iter()
        .any(|o| is_witness_commitment(&o.script_pubkey)));
    check_witness_commitment(&b).expect("commitment made by finish_coinbase verifies");

    let delta = connect_block(&ctx(), &f.view, &RefusePegins, &b).expect("valid block");
    assert_eq!(delta.fees, 2_500);
    assert_eq!(
        delta.txids,
        vec![cb.txid(), t1.txid(), t2.txid(), t3.txid()]
    );
    assert_eq!(
        delta.spent,
        vec![f.a, f.b],
        "tx1:0 was created and spent inside the block"
    );
    let created: Vec<OutPoint> = delta.created.iter().map(|(o, _)| *o).collect();
    let fee_vout = cb
        .output
        .iter()
        .position(|o| o.script_pubkey == fee_script())
        .expect("fee output") as u32;
    assert_eq!(
        created,
        vec![
            OutPoint::new(cb.txid(), fee_vout),
            OutPoint::new(t1.txid(), 1),
            OutPoint::new(t2.txid(), 0),
            OutPoint::new(t3.txid(), 0),
        ]
    );
    let (_, fee_utxo) = &delta.created[0];
    assert!(fee_utxo.is_coinbase);
    assert_eq!(fee_utxo.txout.value.explicit(), Some(2_500));
    assert!(delta.created[1..]
        .iter()
        .all(|(_, u)| !u.is_coinbase && u.height == HEIGHT));
    assert!(delta.created[2].1.txout.value.is_confidential());
}

#[test]
fn spending_an_output_of_a_later_transaction_is_missing() {
    let f = fixture();
    let t1 = tx1(&f);
    let t3 = tx3(&t1);
    let b = finished(vec![t3, t1], 2_000);
    let err = connect_block(&ctx(), &f.view, &RefusePegins, &b).unwrap_err();
    assert!(
        matches!(
            err,
            BlockLedgerError::Tx {
                index: 1,
                rejection: TxRejection::MissingInput { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn two_transactions_spending_one_output_are_refused() {
    let f = fixture();
    let t1 = tx1(&f);
    let mut rival = tx(
        vec![input(f.a)],
        vec![lbtc_out(p2wpkh(&key(6)), 99_000), fee_out(1_000)],
    );
    sign_all(&mut rival, &[key(1)], std::slice::from_ref(&f.a_out));
    let b = finished(vec![t1.clone(), rival.clone()], 2_000);
    let err = connect_block(&ctx(), &f.view, &RefusePegins, &b).unwrap_err();
    match &err {
        BlockLedgerError::Tx {
            index: 2,
            txid,
            rejection:
                TxRejection::DoubleSpend {
                    reason,
                    spent_by,
                    input: 0,
                    ..
                },
        } => {
            assert_eq!(*txid, rival.txid());
            assert_eq!(*reason, "bad-txns-inputs-missingorspent");
            assert_eq!(*spent_by, t1.txid().to_string());
        }
        other => panic!("expected a double spend, got {other}"),
    }
    assert_eq!(err.reason(), "bad-txns-inputs-missingorspent");
    assert!(!err.is_internal());
}

#[test]
fn one_transaction_spending_an_output_twice_is_refused() {
    let f = fixture();
    let mut twice = tx(
        vec![input(f.a), input(f.a)],
        vec![lbtc_out(p2wpkh(&key(6)), 199_000), fee_out(1_000)],
    );
    sign_all(
        &mut twice,
        &[key(1), key(1)],
        &[f.a_out.clone(), f.a_out.clone()],
    );
    let b = finished(vec![twice], 1_000);
    let err = connect_block(&ctx(), &f.view, &RefusePegins, &b).unwrap_err();
    assert!(
        matches!(err, BlockLedgerError::Tx { index: 1, .. }),
        "{err}"
    );
    assert_eq!(err.reason(), "bad-txns-inputs-duplicate");
}

#[test]
fn coinbase_claiming_more_than_the_fees_is_refused() {
    let f = fixture();
    let b = finished(vec![tx1(&f)], 1_001);
    let err = connect_block(&ctx(), &f.view, &RefusePegins, &b).unwrap_err();
    assert_eq!(err.reason(), "bad-cb-amount", "{err}");
    // Claiming less than the fees (burning the rest) is allowed; claiming exactly is the norm.
    connect_block(
        &ctx(),
        &f.view,
        &RefusePegins,
        &finished(vec![tx1(&f)], 999),
    )
    .expect("under-claim");
    connect_block(
        &ctx(),
        &f.view,
        &RefusePegins,
        &finished(vec![tx1(&f)], 1_000),
    )
    .expect("exact claim");
    // A block with only a coinbase: no fees, no fee output, no commitment.
    let empty = finished(vec![], 0);
    assert_eq!(empty.txdata[0].output.len(), 1);
    let delta = connect_block(&ctx(), &f.view, &RefusePegins, &empty).expect("empty block");
    assert!(delta.created.is_empty() && delta.spent.is_empty());
    let minting = finished(vec![], 1);
    assert_eq!(
        connect_block(&ctx(), &f.view, &RefusePegins, &minting)
            .unwrap_err()
            .reason(),
        "bad-cb-amount"
    );
}

#[test]
fn coinbase_paying_elsewhere_or_in_another_asset_is_refused() {
    let f = fixture();
    let mut b = finished(vec![tx1(&f)], 1_000);
    let fee_vout = b.txdata[0]
        .output
        .iter()
        .position(|o| o.script_pubkey == fee_script())
        .unwrap();
    b.txdata[0].output[fee_vout].script_pubkey = p2wpkh(&key(66));
    assert_eq!(
        connect_block(&ctx(), &f.view, &RefusePegins, &b)
            .unwrap_err()
            .reason(),
        "bad-cb-payee"
    );

    let mut b = finished(vec![tx1(&f)], 1_000);
    b.txdata[0].output[0] = explicit_out(other_asset(), elements::Script::new_op_return(&[]), 0);
    assert_eq!(
        connect_block(&ctx(), &f.view, &RefusePegins, &b)
            .unwrap_err()
            .reason(),
        "bad-cb-asset"
    );

    let mut b = finished(vec![tx1(&f)], 1_000);
    b.txdata[0].output[0] = lbtc_out(p2wpkh(&key(66)), 0);
    assert_eq!(
        connect_block(&ctx(), &f.view, &RefusePegins, &b)
            .unwrap_err()
            .reason(),
        "bad-cb-amount"
    );
}

#[test]
fn missing_or_wrong_witness_commitment_is_refused() {
    let f = fixture();
    // Missing: no commitment output and no reserved value, but transactions with witnesses.
    let mut b = finished(vec![tx1(&f)], 1_000);
    b.txdata[0]
        .output
        .retain(|o| !is_witness_commitment(&o.script_pubkey));
    b.txdata[0].input[0].witness.script_witness = elements::Witness::new();
    assert_eq!(
        connect_block(&ctx(), &f.view, &RefusePegins, &b)
            .unwrap_err()
            .reason(),
        "unexpected-witness"
    );

    // Wrong: a witness changed after the commitment was made (the signature's sighash byte).
    let mut b = finished(vec![tx1(&f), tx2(&f)], 1_500);
    let mut items = b.txdata[1].input[0].witness.script_witness.to_vec();
    items[0].push(0x01);
    b.txdata[1].input[0].witness.script_witness = items.into();
    assert_eq!(
        connect_block(&ctx(), &f.view, &RefusePegins, &b)
            .unwrap_err()
            .reason(),
        "bad-witness-merkle-match"
    );

    // Wrong: a surjection proof removed from a confidential output after the commitment was made.
    let mut b = finished(vec![tx1(&f), tx2(&f)], 1_500);
    b.txdata[2].output[0].witness.surjection_proof = elements::SurjectionProof::EMPTY;
    assert_eq!(
        check_witness_commitment(&b).unwrap_err().reason(),
        "bad-witness-merkle-match"
    );

    // The reserved value must be one 32-byte item.
    let mut b = finished(vec![tx1(&f)], 1_000);
    b.txdata[0].input[0].witness.script_witness = elements::Witness::new();
    assert_eq!(
        connect_block(&ctx(), &f.view, &RefusePegins, &b)
            .unwrap_err()
            .reason(),
        "bad-witness-nonce-size"
    );
}

#[test]
fn coinbase_position_and_duplicate_txids() {
    let f = fixture();
    let t1 = tx1(&f);
    let no_coinbase = block(vec![t1.clone()]);
    assert_eq!(
        connect_block(&ctx(), &f.view, &RefusePegins, &no_coinbase)
            .unwrap_err()
            .reason(),
        "bad-cb-missing"
    );
    assert_eq!(
        connect_block(&ctx(), &f.view, &RefusePegins, &block(vec![]))
            .unwrap_err()
            .reason(),
        "bad-cb-missing"
    );
    let two = block(vec![coinbase(HEIGHT), coinbase(HEIGHT + 1)]);
    assert_eq!(
        connect_block(&ctx(), &f.view, &RefusePegins, &two)
            .unwrap_err()
            .reason(),
        "bad-cb-multiple"
    );
    let dup = finished(vec![t1.clone(), t1], 2_000);
    assert_eq!(
        connect_block(&ctx(), &f.view, &RefusePegins, &dup)
            .unwrap_err()
            .reason(),
        "bad-txns-duplicate"
    );
    let mut short = block(vec![coinbase(HEIGHT)]);
    short.txdata[0].input[0].script_sig = elements::Script::from(vec![0x01]);
    let err = connect_block(&ctx(), &f.view, &RefusePegins, &short).unwrap_err();
    assert!(matches!(err, BlockLedgerError::Tx { index: 0, .. }));
    assert_eq!(err.reason(), "bad-cb-length");
}

#[test]
fn genesis_outputs_become_spendable_non_coinbase_utxos() {
    let mut cb = coinbase(0);
    cb.output.push(lbtc_out(p2wpkh(&key(1)), 21_000_000));
    let genesis = block(vec![cb.clone()]);
    let delta = genesis_delta(&genesis);
    assert_eq!(delta.txids, vec![cb.txid()]);
    assert_eq!(delta.created.len(), 1, "the OP_RETURN output is not a UTXO");
    let (outpoint, utxo) = &delta.created[0];
    assert_eq!(*outpoint, OutPoint::new(cb.txid(), 1));
    assert_eq!(
        (utxo.height, utxo.time, utxo.is_coinbase),
        (0, BLOCK_TIME, false)
    );

    // Spendable at once (no maturity) by its owner.
    let v = view(&delta.created);
    let mut spend = tx(
        vec![input(*outpoint)],
        vec![lbtc_out(p2wpkh(&key(2)), 20_999_000), fee_out(1_000)],
    );
    sign_all(&mut spend, &[key(1)], std::slice::from_ref(&utxo.txout));
    let mut c = ctx();
    c.height = 1;
    chain::ledger::validate_transaction(&c, &v, &RefusePegins, &spend)
        .expect("genesis coin spendable");
}
