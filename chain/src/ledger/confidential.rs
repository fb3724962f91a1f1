//! Value and asset balance: Elements' `VerifyAmounts` (`src/confidential_validation.cpp`) and `HasValidFee`, with
//! an exact-arithmetic fast path for transactions with nothing confidential.
//!
//! rust-elements' `Transaction::verify_tx_amt_proofs` is not used: it does not verify issuance rangeproofs,
//! refuses zero-value `OP_RETURN` outputs that Elements allows, and does not apply Elements' "minimum value 0 only
//! for unspendable scripts" rangeproof rule. This module does all of that with secp256k1-zkp directly.

use super::{
    issuance_records, verify_issuance_amount, verify_reissuance_token, IssuanceRecord,
    LedgerContext, TxRejection, MAX_MONEY,
};
use elements::confidential::{Asset, Value};
use elements::secp256k1_zkp::{self, Generator, PedersenCommitment, SECP256K1};
use elements::{AssetId, Transaction, TxOut};
use std::collections::BTreeMap;

/// Checks that the transaction's inputs (`spent[i]` is what input `i` spends, the claimed output for a peg-in)
/// plus its issuances balance its outputs, per asset, and returns the fee paid in the policy asset.
///
/// Rules:
/// - fee outputs (empty scriptPubKey) are explicit, in the policy asset ("bad-txns-fee-asset"), each in
///   1..=MAX_MONEY and in total at most MAX_MONEY ("bad-txns-fee-outofrange");
/// - issuances follow [`super::issuance_record`] and a reissuance spends its blinded token
///   ([`verify_reissuance_token`]);
/// - nothing confidential anywhere: exact per-asset sums ("bad-txns-in-ne-out"), no curve operations;
/// - otherwise Elements' `VerifyAmounts`: Pedersen balance ("bad-txns-in-ne-out"), a valid rangeproof for every
///   confidential output value ("bad-txns-rangeproof-invalid"), a valid surjection proof for every confidential
///   output asset over the inputs' and issuances' generators in Elements' order ("bad-txns-surjectionproof-invalid"),
///   issuance rangeproofs ("bad-txns-issuance-rangeproof");
/// - in both: null or zero-valued inputs, null outputs, spendable zero-value outputs, and proofs attached to explicit
///   values or assets are refused.
///
/// Never panics.
pub fn verify_amounts(
    ctx: &LedgerContext,
    tx: &Transaction,
    spent: &[TxOut],
) -> Result<u64, TxRejection> {
    let records = issuance_records(tx)?;
    verify_amounts_with_issuances(ctx, tx, spent, &records)
}

/// [`verify_amounts`] with the transaction's issuance records already computed by [`issuance_records`] (so a
/// caller that needs them does not derive the asset ids twice).
pub fn verify_amounts_with_issuances(
    ctx: &LedgerContext,
    tx: &Transaction,
    spent: &[TxOut],
    records: &[IssuanceRecord],
) -> Result<u64, TxRejection> {
    if spent.len() != tx.input.len() {
        return Err(amounts(
            "bad-txns-in-ne-out",
            format!(
                "{} spent outputs given for {} inputs",
                spent.len(),
                tx.input.len()
            ),
        ));
    }
    let fee = check_fees(ctx, tx)?;
    for record in records.iter().filter(|r| r.is_reissuance) {
        let Some(spent_out) = spent.get(record.input) else {
            continue;
        };
        verify_reissuance_token(tx, record.input, spent_out)?;
    }
    check_proof_placement(tx)?;
    if is_all_explicit(tx, spent) {
        verify_explicit_balance(tx, spent, records)?;
    } else {
        verify_confidential_balance(tx, spent)?;
    }
    Ok(fee)
}

/// The fee in the policy asset: the sum of the fee outputs, after the fee rules of [`verify_amounts`].
pub fn check_fees(ctx: &LedgerContext, tx: &Transaction) -> Result<u64, TxRejection> {
    let mut total: u64 = 0;
    for (index, out) in tx.output.iter().enumerate() {
        if !out.script_pubkey.is_empty() {
            continue;
        }
        let (asset, value) = match (out.asset, out.value) {
            (Asset::Explicit(asset), Value::Explicit(value)) => (asset, value),
            _ => {
                return Err(amounts(
                    "bad-txns-fee-asset",
                    format!(
                    "output {index} has an empty scriptPubKey (a fee output) but is not explicit"
                ),
                ))
            }
        };
        if asset != ctx.policy_asset {
            return Err(amounts(
                "bad-txns-fee-asset",
                format!(
                    "fee output {index} pays in {asset}, not the policy asset {}",
                    ctx.policy_asset
                ),
            ));
        }
        if value == 0 || value > MAX_MONEY {
            return Err(amounts(
                "bad-txns-fee-outofrange",
                format!("fee output {index} is {value}, outside 1..=MAX_MONEY"),
            ));
        }
        total = total
            .checked_add(value)
            .filter(|t| *t <= MAX_MONEY)
            .ok_or_else(|| {
                amounts(
                    "bad-txns-fee-outofrange",
                    format!("fees add up to more than MAX_MONEY at output {index}"),
                )
            })?;
    }
    Ok(total)
}

fn is_all_explicit(tx: &Transaction, spent: &[TxOut]) -> bool {
    spent
        .iter()
        .all(|o| o.asset.is_explicit() && o.value.is_explicit())
        && tx
            .output
            .iter()
            .all(|o| o.asset.is_explicit() && o.value.is_explicit())
        && tx.input.iter().all(|i| {
            !i.has_issuance()
                || (!i.asset_issuance.amount.is_confidential()
                    && !i.asset_issuance.inflation_keys.is_confidential()
                    && i.asset_issuance.asset_blinding_nonce.is_null())
        })
}

/// Elements refuses a rangeproof on an explicit value and a surjection proof on an explicit asset.
fn check_proof_placement(tx: &Transaction) -> Result<(), TxRejection> {
    for (index, out) in tx.output.iter().enumerate() {
        if out.value.is_explicit() && !out.witness.rangeproof.is_empty() {
            return Err(amounts(
                "bad-txns-superfluous-proof",
                format!("output {index} has an explicit value and a rangeproof"),
            ));
        }
        if out.asset.is_explicit() && !out.witness.surjection_proof.is_empty() {
            return Err(amounts(
                "bad-txns-superfluous-proof",
                format!("output {index} has an explicit asset and a surjection proof"),
            ));
        }
    }
    Ok(())
}

fn spent_explicit_value(index: usize, out: &TxOut) -> Result<u64, TxRejection> {
    match out.value {
        Value::Explicit(v) if v > 0 && v <= MAX_MONEY => Ok(v),
        Value::Explicit(v) => Err(amounts(
            "bad-txns-in-ne-out",
            format!("input {index} spends an explicit value {v}, outside 1..=MAX_MONEY"),
        )),
        _ => Err(amounts(
            "bad-txns-in-ne-out",
            format!("input {index} spends an output with a null value"),
        )),
    }
}

/// A zero explicit output value is allowed only on an unspendable script (Elements: a spendable 0-value output
/// of reissuance tokens would allow reissuance without tokens). `Ok(None)` = skip it.
fn output_explicit_value(
    index: usize,
    out: &TxOut,
    value: u64,
) -> Result<Option<u64>, TxRejection> {
    if value == 0 {
        if out.script_pubkey.is_provably_unspendable() {
            return Ok(None);
        }
        return Err(amounts(
            "bad-txns-in-ne-out",
            format!("output {index} is a spendable output of value 0"),
        ));
    }
    Ok(Some(value))
}

fn verify_explicit_balance(
    tx: &Transaction,
    spent: &[TxOut],
    records: &[IssuanceRecord],
) -> Result<(), TxRejection> {
    let mut balance: BTreeMap<AssetId, i128> = BTreeMap::new();
    for (index, out) in spent.iter().enumerate() {
        let Asset::Explicit(asset) = out.asset else {
            return Err(amounts(
                "bad-txns-in-ne-out",
                format!("input {index} spends an output with a null asset"),
            ));
        };
        let value = spent_explicit_value(index, out)?;
        *balance.entry(asset).or_default() += i128::from(value);
    }
    for record in records {
        if let Some(amount) = record.amount {
            *balance.entry(record.asset).or_default() += i128::from(amount);
        }
        if let (Some(amount), Some(token)) = (record.token_amount, record.token) {
            *balance.entry(token).or_default() += i128::from(amount);
        }
    }
    for (index, out) in tx.output.iter().enumerate() {
        let (Asset::Explicit(asset), Value::Explicit(value)) = (out.asset, out.value) else {
            return Err(amounts(
                "bad-txns-in-ne-out",
                format!("output {index} has a null asset or value"),
            ));
        };
        if let Some(value) = output_explicit_value(index, out, value)? {
            *balance.entry(asset).or_default() -= i128::from(value);
        }
    }
    match balance.iter().find(|(_, diff)| **diff != 0) {
        None => Ok(()),
        Some((asset, diff)) => Err(amounts(
            "bad-txns-in-ne-out",
            if *diff > 0 {
                format!("inputs and issuances of {asset} exceed outputs by {diff}")
            } else {
                format!(
                    "outputs of {asset} exceed inputs and issuances by {}",
                    -diff
                )
            },
        )),
    }
}

fn generator_of(asset: &Asset) -> Option<Generator> {
    match asset {
        Asset::Null => None,
        Asset::Explicit(id) => Some(Generator::new_unblinded(SECP256K1, id.into_tag())),
        Asset::Confidential(generator) => Some(*generator),
    }
}

fn verify_confidential_balance(tx: &Transaction, spent: &[TxOut]) -> Result<(), TxRejection> {
    // Surjection proof domain, in Elements' order: each input's asset, then its issuance's asset, then its tokens.
    let mut domain: Vec<Generator> = Vec::with_capacity(tx.input.len());
    let mut ins: Vec<PedersenCommitment> = Vec::with_capacity(tx.input.len());
    let mut outs: Vec<PedersenCommitment> = Vec::with_capacity(tx.output.len());

    for (index, (input, out)) in tx.input.iter().zip(spent).enumerate() {
        let generator = generator_of(&out.asset).ok_or_else(|| {
            amounts(
                "bad-txns-in-ne-out",
                format!("input {index} spends an output with a null asset"),
            )
        })?;
        domain.push(generator);
        let commitment = match out.value {
            Value::Confidential(c) => c,
            _ => PedersenCommitment::new_unblinded(
                SECP256K1,
                spent_explicit_value(index, out)?,
                generator,
            ),
        };
        ins.push(commitment);

        if !input.has_issuance() {
            continue;
        }
        let (_, asset, token) = super::issuance_ids(input);
        let issuance = &input.asset_issuance;
        if !issuance.amount.is_null() {
            let (g, c) = verify_issuance_amount(
                index,
                asset,
                issuance.amount,
                input.witness.amount_rangeproof.as_ref(),
            )?;
            domain.push(g);
            ins.push(c);
        }
        if !issuance.inflation_keys.is_null() {
            let (g, c) = verify_issuance_amount(
                index,
                token,
                issuance.inflation_keys,
                input.witness.inflation_keys_rangeproof.as_ref(),
            )?;
            domain.push(g);
            ins.push(c);
        }
    }

    let mut output_generators: Vec<Generator> = Vec::with_capacity(tx.output.len());
    for (index, out) in tx.output.iter().enumerate() {
        let generator = generator_of(&out.asset).ok_or_else(|| {
            amounts(
                "bad-txns-in-ne-out",
                format!("output {index} has a null asset"),
            )
        })?;
        output_generators.push(generator);
        match out.value {
            Value::Null => {
                return Err(amounts(
                    "bad-txns-in-ne-out",
                    format!("output {index} has a null value"),
                ))
            }
            Value::Explicit(v) => {
                if let Some(v) = output_explicit_value(index, out, v)? {
                    outs.push(PedersenCommitment::new_unblinded(SECP256K1, v, generator));
                }
            }
            Value::Confidential(c) => outs.push(c),
        }
    }

    if !secp256k1_zkp::verify_commitments_sum_to_equal(SECP256K1, &ins, &outs) {
        return Err(amounts(
            "bad-txns-in-ne-out",
            "the value commitments of inputs and issuances do not balance those of the outputs"
                .into(),
        ));
    }

    for (index, (out, generator)) in tx.output.iter().zip(&output_generators).enumerate() {
        let Value::Confidential(commitment) = out.value else {
            continue;
        };
        let proof = out.witness.rangeproof.as_ref().ok_or_else(|| {
            amounts(
                "bad-txns-rangeproof-invalid",
                format!("confidential output {index} has no rangeproof"),
            )
        })?;
        let min_value = super::proof_cache::verify_rangeproof(
            proof,
            commitment,
            out.script_pubkey.as_bytes(),
            *generator,
        )
        .map_err(|e| {
            amounts(
                "bad-txns-rangeproof-invalid",
                format!("rangeproof of output {index} does not verify: {e}"),
            )
        })?;
        if min_value == 0 && !out.script_pubkey.is_provably_unspendable() {
            return Err(amounts(
                "bad-txns-rangeproof-invalid",
                format!("rangeproof of spendable output {index} allows the value 0"),
            ));
        }
    }

    for (index, (out, generator)) in tx.output.iter().zip(&output_generators).enumerate() {
        if !out.asset.is_confidential() {
            continue;
        }
        let proof = out.witness.surjection_proof.as_ref().ok_or_else(|| {
            amounts(
                "bad-txns-surjectionproof-invalid",
                format!("output {index} has a confidential asset and no surjection proof"),
            )
        })?;
        if !super::proof_cache::verify_surjection(proof, *generator, &domain) {
            return Err(amounts(
                "bad-txns-surjectionproof-invalid",
                format!("surjection proof of output {index} does not verify against the inputs' and issuances' assets"),
            ));
        }
    }
    Ok(())
}

/// The process-wide secp256k1-zkp context.
pub(crate) fn secp() -> &'static secp256k1_zkp::Secp256k1<secp256k1_zkp::All> {
    SECP256K1
}

fn amounts(reason: &'static str, detail: String) -> TxRejection {
    TxRejection::Amounts { reason, detail }
}
