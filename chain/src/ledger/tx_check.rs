//! Context-free transaction rules: Elements' `CheckTransaction` (`src/consensus/tx_check.cpp`), plus the rules
//! that a coinbase carries no issuance and no peg-in.

use super::TxRejection;
use elements::confidential::{Asset, Value};
use elements::Transaction;
use std::collections::HashSet;

/// Largest amount of any asset an explicit value may carry: 21 million coins of 10^8 units (Elements' `MAX_MONEY`).
pub const MAX_MONEY: u64 = 21_000_000 * 100_000_000;

/// Shortest coinbase scriptSig (bytes).
pub const MIN_COINBASE_SCRIPT_SIG: usize = 2;

/// Longest coinbase scriptSig (bytes).
pub const MAX_COINBASE_SCRIPT_SIG: usize = 100;

/// Applies the rules that need nothing but the transaction itself:
/// - at least one input ("bad-txns-vin-empty") and one output ("bad-txns-vout-empty");
/// - weight (witness included) at most [`crate::MAX_BLOCK_WEIGHT`] ("bad-txns-oversize");
/// - every output has a value and an asset ("bad-txns-vout-amount-invalid", "bad-txns-vout-asset-invalid"), explicit
///   values at most [`MAX_MONEY`] ("bad-txns-vout-toolarge") and their sum too ("bad-txns-txouttotal-toolarge");
/// - no input spends the same outpoint twice ("bad-txns-inputs-duplicate");
/// - a coinbase has a scriptSig of 2..=100 bytes ("bad-cb-length"), no fee output ("bad-cb-fee"), no issuance
///   ("bad-cb-issuance") and no peg-in ("bad-cb-pegin");
/// - any other transaction has no null prevout ("bad-txns-prevout-null").
///
/// Never panics, whatever the (decoded) transaction holds.
pub fn check_transaction(tx: &Transaction) -> Result<(), TxRejection> {
    if tx.input.is_empty() {
        return Err(structure(
            "bad-txns-vin-empty",
            "the transaction has no inputs",
        ));
    }
    if tx.output.is_empty() {
        return Err(structure(
            "bad-txns-vout-empty",
            "the transaction has no outputs",
        ));
    }
    let weight = tx.weight();
    if weight > crate::MAX_BLOCK_WEIGHT {
        return Err(structure(
            "bad-txns-oversize",
            format!(
                "weight {weight} exceeds the block weight limit {}",
                crate::MAX_BLOCK_WEIGHT
            ),
        ));
    }
    check_output_values(tx)?;

    let mut seen = HashSet::with_capacity(tx.input.len());
    for (index, input) in tx.input.iter().enumerate() {
        if !seen.insert(input.previous_output) {
            return Err(structure(
                "bad-txns-inputs-duplicate",
                format!(
                    "input {index} spends {} a second time",
                    input.previous_output
                ),
            ));
        }
    }

    if tx.is_coinbase() {
        check_coinbase_shape(tx)
    } else {
        for (index, input) in tx.input.iter().enumerate() {
            if input.previous_output.is_null() {
                return Err(structure(
                    "bad-txns-prevout-null",
                    format!(
                        "input {index} has a null prevout in a transaction that is not a coinbase"
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn check_output_values(tx: &Transaction) -> Result<(), TxRejection> {
    let mut total: u64 = 0;
    for (index, output) in tx.output.iter().enumerate() {
        if matches!(output.asset, Asset::Null) {
            return Err(structure(
                "bad-txns-vout-asset-invalid",
                format!("output {index} has a null asset"),
            ));
        }
        let value = match output.value {
            Value::Null => {
                return Err(structure(
                    "bad-txns-vout-amount-invalid",
                    format!("output {index} has a null value"),
                ))
            }
            Value::Confidential(_) => continue,
            Value::Explicit(value) => value,
        };
        if value > MAX_MONEY {
            return Err(structure(
                "bad-txns-vout-toolarge",
                format!("output {index} carries {value}, above MAX_MONEY {MAX_MONEY}"),
            ));
        }
        total = match total.checked_add(value) {
            Some(sum) if sum <= MAX_MONEY => sum,
            _ => {
                return Err(structure(
                    "bad-txns-txouttotal-toolarge",
                    format!("explicit output values add up to more than MAX_MONEY {MAX_MONEY} at output {index}"),
                ))
            }
        };
    }
    Ok(())
}

fn check_coinbase_shape(tx: &Transaction) -> Result<(), TxRejection> {
    let Some(input) = tx.input.first() else {
        return Err(structure("bad-txns-vin-empty", "the coinbase has no input"));
    };
    let len = input.script_sig.len();
    if !(MIN_COINBASE_SCRIPT_SIG..=MAX_COINBASE_SCRIPT_SIG).contains(&len) {
        return Err(structure(
            "bad-cb-length",
            format!(
                "coinbase scriptSig is {len} bytes, outside {MIN_COINBASE_SCRIPT_SIG}..={MAX_COINBASE_SCRIPT_SIG}"
            ),
        ));
    }
    if input.has_issuance() {
        return Err(structure(
            "bad-cb-issuance",
            "the coinbase input carries an asset issuance",
        ));
    }
    if input.is_pegin {
        return Err(structure(
            "bad-cb-pegin",
            "the coinbase input is flagged as a peg-in",
        ));
    }
    if let Some(index) = tx.output.iter().position(|o| o.is_fee()) {
        return Err(structure(
            "bad-cb-fee",
            format!("coinbase output {index} is a fee output (empty scriptPubKey)"),
        ));
    }
    Ok(())
}

fn structure(reason: &'static str, detail: impl Into<String>) -> TxRejection {
    TxRejection::Structure {
        reason,
        detail: detail.into(),
    }
}
