//! Helpers for the mempool tests: explicit-amount transactions and a fake validator.
//!
//! Real transaction validation (scripts, proofs, issuance) is tested in the ledger's own tests; the mempool only
//! needs a validator that computes fee, sizes and created outputs and refuses missing inputs, which
//! [`fake_validate`] does from explicit amounts.
#![allow(dead_code)]

use chain::ledger::{TxRejection, Utxo, UtxoView, ValidatedTx};
use chain::mempool::{Mempool, MempoolLimits};
use elements::confidential::{Asset, Nonce, Value};
use elements::{AssetId, LockTime, OutPoint, Script, Sequence, Transaction, TxIn, TxOut, Txid};
use std::collections::HashMap;

/// The policy asset of the tests.
pub fn policy_asset() -> AssetId {
    AssetId::from_byte_array([7u8; 32])
}

/// A chain UTXO set with `count` confirmed outputs of `value` each; returns the set and the outpoints.
pub fn funded_chain(count: usize, value: u64) -> (HashMap<OutPoint, Utxo>, Vec<OutPoint>) {
    let mut chain = HashMap::new();
    let mut outpoints = Vec::new();
    for index in 0..count {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&(index as u64 + 1).to_le_bytes());
        bytes[31] = 0xfe;
        let outpoint = OutPoint::new(Txid::from_byte_array(bytes), 0);
        chain.insert(outpoint, confirmed(explicit_output(value, 0), 1));
        outpoints.push(outpoint);
    }
    (chain, outpoints)
}

/// A confirmed UTXO at `height`.
pub fn confirmed(txout: TxOut, height: u32) -> Utxo {
    Utxo {
        txout,
        height,
        time: 1_700_000_000,
        is_coinbase: false,
    }
}

/// An explicit policy-asset output paying `value` to OP_TRUE followed by `padding` bytes of OP_NOP (to make a
/// transaction heavier).
pub fn explicit_output(value: u64, padding: usize) -> TxOut {
    let mut script = vec![0x51u8];
    script.extend(std::iter::repeat_n(0x61u8, padding));
    TxOut {
        asset: Asset::Explicit(policy_asset()),
        value: Value::Explicit(value),
        nonce: Nonce::Null,
        script_pubkey: Script::from(script),
        witness: Default::default(),
    }
}

/// A transaction spending `inputs` into explicit outputs of `values` (no padding).
pub fn spend(inputs: &[OutPoint], values: &[u64]) -> Transaction {
    spend_padded(inputs, values, 0)
}

/// A transaction spending `inputs` into explicit outputs of `values`, the first padded by `padding` bytes.
pub fn spend_padded(inputs: &[OutPoint], values: &[u64], padding: usize) -> Transaction {
    Transaction {
        version: 2,
        lock_time: LockTime::ZERO,
        input: inputs
            .iter()
            .map(|outpoint| TxIn {
                previous_output: *outpoint,
                sequence: Sequence::MAX,
                ..Default::default()
            })
            .collect(),
        output: values
            .iter()
            .enumerate()
            .map(|(index, value)| explicit_output(*value, if index == 0 { padding } else { 0 }))
            .collect(),
    }
}

/// Output `vout` of `tx`.
pub fn out(tx: &Transaction, vout: u32) -> OutPoint {
    OutPoint::new(tx.txid(), vout)
}

/// A coinbase transaction (null prevout), distinguished by `tag` in its scriptSig.
pub fn coinbase(tag: u8) -> Transaction {
    Transaction {
        version: 2,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::default(),
            script_sig: Script::from(vec![0x01, tag]),
            sequence: Sequence::MAX,
            ..Default::default()
        }],
        output: vec![explicit_output(0, 0)],
    }
}

fn explicit_value(txout: &TxOut) -> u64 {
    match txout.value {
        Value::Explicit(value) => value,
        _ => 0,
    }
}

/// Validates an explicit-amount transaction against `view`: every input must exist (else
/// [`TxRejection::MissingInput`]), outputs must not exceed inputs; fee = inputs - outputs; every output is created.
pub fn fake_validate(view: &dyn UtxoView, tx: &Transaction) -> Result<ValidatedTx, TxRejection> {
    let txid = tx.txid();
    let mut spent = Vec::new();
    let mut value_in: u64 = 0;
    for (index, input) in tx.input.iter().enumerate() {
        let Some(utxo) = view.utxo(&input.previous_output)? else {
            return Err(TxRejection::MissingInput {
                input: index,
                outpoint: input.previous_output.to_string(),
            });
        };
        value_in += explicit_value(&utxo.txout);
        spent.push((input.previous_output, utxo));
    }
    let value_out: u64 = tx.output.iter().map(explicit_value).sum();
    let Some(fee) = value_in.checked_sub(value_out) else {
        return Err(TxRejection::Amounts {
            reason: "bad-txns-in-belowout",
            detail: format!("inputs {value_in} < outputs {value_out}"),
        });
    };
    let created = tx
        .output
        .iter()
        .enumerate()
        .map(|(vout, txout)| {
            (
                OutPoint::new(txid, vout as u32),
                Utxo {
                    txout: txout.clone(),
                    height: u32::MAX,
                    time: 0,
                    is_coinbase: false,
                },
            )
        })
        .collect();
    let weight = tx.weight();
    Ok(ValidatedTx {
        txid,
        fee,
        weight,
        vsize: weight.div_ceil(4),
        spent,
        created,
        pegouts: Vec::new(),
        issuances: Vec::new(),
    })
}

/// A mempool with default limits except `max_weight_total`.
pub fn pool_with_cap(max_weight_total: usize) -> Mempool {
    Mempool::new(MempoolLimits {
        max_weight_total,
        ..MempoolLimits::default()
    })
}

/// Accepts `tx` into `pool` against `chain` with [`fake_validate`], then checks the pool's invariants.
pub fn accept(
    pool: &mut Mempool,
    chain: &HashMap<OutPoint, Utxo>,
    tx: &Transaction,
    now_ms: u64,
) -> Result<chain::mempool::AcceptedTx, TxRejection> {
    let result = pool.accept(tx.clone(), now_ms, chain, fake_validate);
    pool.check_invariants()
        .expect("pool invariants after accept");
    result
}

/// The weight of a 1-input 1-output unpadded test transaction.
pub fn unit_weight() -> usize {
    let (_, outpoints) = funded_chain(1, 1);
    spend(&outpoints, &[1]).weight()
}
