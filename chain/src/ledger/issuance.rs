//! Asset issuance and reissuance as Elements defines them (`src/issuance.cpp`, `VerifyAmounts` in
//! `src/confidential_validation.cpp`).
//!
//! - New issuance (`asset_blinding_nonce` zero): entropy = `AssetId::generate_asset_entropy(prevout,
//!   contract_hash = asset_entropy field)`, asset = `AssetId::from_entropy(entropy)`, reissuance token =
//!   `AssetId::reissuance_token_from_entropy(entropy, amount is confidential)`. It may issue the asset (`amount`)
//!   and reissuance tokens (`inflation_keys`).
//! - Reissuance (`asset_blinding_nonce` non-zero): the `asset_entropy` field *is* the entropy; it issues only the
//!   asset (`inflation_keys` must be null), and the input must spend the reissuance token: the spent output's asset
//!   commitment must equal the token's generator blinded with `asset_blinding_nonce`. As in Elements, an explicit
//!   (unblinded) token output can therefore never authorise a reissuance: the token must be blinded. The token id
//!   depends on whether the *reissuance* amount is confidential, exactly as in Elements.
//! - Amounts: null (nothing issued), explicit in 1..=MAX_MONEY with no rangeproof, or a Pedersen commitment with a
//!   valid rangeproof in the input witness (`amount_rangeproof` / `inflation_keys_rangeproof`, proven against the
//!   unblinded asset generator and an empty script). The rangeproofs are verified by [`verify_issuance_amount`],
//!   called from [`super::verify_amounts`].

use super::{TxRejection, MAX_MONEY};
use elements::confidential::Value;
use elements::issuance::AssetEntropy;
use elements::secp256k1_zkp::{Generator, PedersenCommitment, Tweak, SECP256K1};
use elements::{AssetId, Transaction, TxIn, TxOut};

/// One issuance or reissuance in a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuanceRecord {
    /// Index of the input carrying it.
    pub input: usize,
    /// The asset issued.
    pub asset: AssetId,
    /// The reissuance token: for a new issuance that creates tokens, their id; for a reissuance, the token it had
    /// to spend; `None` for a new issuance that creates no tokens.
    pub token: Option<AssetId>,
    /// Amount of the asset issued when explicit (`None`: confidential or nothing issued).
    pub amount: Option<u64>,
    /// Amount of reissuance tokens issued when explicit (`None`: confidential, or none issued).
    pub token_amount: Option<u64>,
    /// A reissuance of an existing asset.
    pub is_reissuance: bool,
    /// The asset entropy (what a later reissuance names in its `asset_entropy` field).
    pub entropy: [u8; 32],
}

/// The ids of an input's issuance: (entropy, asset, reissuance token). Meaningful only if the input has an
/// issuance.
pub fn issuance_ids(input: &TxIn) -> (AssetEntropy, AssetId, AssetId) {
    let issuance = &input.asset_issuance;
    let entropy = if issuance.asset_blinding_nonce.is_null() {
        AssetId::generate_asset_entropy(
            input.previous_output,
            issuance.asset_entropy.into_contract_hash(),
        )
    } else {
        issuance.asset_entropy
    };
    let asset = AssetId::from_entropy(entropy);
    let token = AssetId::reissuance_token_from_entropy(entropy, issuance.amount.is_confidential());
    (entropy, asset, token)
}

/// The context-free issuance rules of input `index`; `None` if it has no issuance. Refuses ("Issuance" rejections):
/// an explicit amount of zero or above MAX_MONEY, an explicit amount with a rangeproof, a confidential amount
/// without one ("bad-txns-issuance-amount" / "bad-txns-issuance-token-amount"), and a reissuance that issues
/// reissuance tokens ("bad-txns-reissuance-inflation-keys").
pub fn issuance_record(
    tx: &Transaction,
    index: usize,
) -> Result<Option<IssuanceRecord>, TxRejection> {
    let Some(input) = tx.input.get(index) else {
        return Ok(None);
    };
    if !input.has_issuance() {
        return Ok(None);
    }
    let issuance = &input.asset_issuance;
    let is_reissuance = !issuance.asset_blinding_nonce.is_null();
    let (entropy, asset, token) = issuance_ids(input);

    let amount = check_amount(
        index,
        "bad-txns-issuance-amount",
        "asset amount",
        issuance.amount,
        !input.witness.amount_rangeproof.is_empty(),
    )?;
    if is_reissuance && !issuance.inflation_keys.is_null() {
        return Err(TxRejection::Issuance {
            reason: "bad-txns-reissuance-inflation-keys",
            input: index,
            detail: "a reissuance cannot issue reissuance tokens (inflation_keys must be null)"
                .into(),
        });
    }
    let token_amount = check_amount(
        index,
        "bad-txns-issuance-token-amount",
        "reissuance token amount",
        issuance.inflation_keys,
        !input.witness.inflation_keys_rangeproof.is_empty(),
    )?;
    let creates_tokens = !issuance.inflation_keys.is_null();
    Ok(Some(IssuanceRecord {
        input: index,
        asset,
        token: (is_reissuance || creates_tokens).then_some(token),
        amount,
        token_amount,
        is_reissuance,
        entropy: entropy.to_byte_array(),
    }))
}

/// [`issuance_record`] for every input, in input order.
pub fn issuance_records(tx: &Transaction) -> Result<Vec<IssuanceRecord>, TxRejection> {
    let mut records = Vec::new();
    for index in 0..tx.input.len() {
        if let Some(record) = issuance_record(tx, index)? {
            records.push(record);
        }
    }
    Ok(records)
}

fn check_amount(
    index: usize,
    reason: &'static str,
    what: &str,
    value: Value,
    has_rangeproof: bool,
) -> Result<Option<u64>, TxRejection> {
    let refuse = |detail: String| TxRejection::Issuance {
        reason,
        input: index,
        detail,
    };
    match value {
        Value::Null => Ok(None),
        Value::Explicit(0) => Err(refuse(format!("explicit {what} is zero"))),
        Value::Explicit(v) if v > MAX_MONEY => Err(refuse(format!(
            "explicit {what} {v} is above MAX_MONEY {MAX_MONEY}"
        ))),
        Value::Explicit(_) if has_rangeproof => {
            Err(refuse(format!("explicit {what} comes with a rangeproof")))
        }
        Value::Explicit(v) => Ok(Some(v)),
        Value::Confidential(_) if !has_rangeproof => Err(refuse(format!(
            "confidential {what} has no rangeproof in the input witness"
        ))),
        Value::Confidential(_) => Ok(None),
    }
}

/// The reissuance rule of Elements' `VerifyAmounts`: input `index` (a reissuance) spends `spent`, whose asset must
/// be the commitment `token generator blinded by asset_blinding_nonce`. Refused with "bad-txns-reissuance-token"
/// otherwise (including an explicit spent asset and a nonce that is not a valid scalar).
pub fn verify_reissuance_token(
    tx: &Transaction,
    index: usize,
    spent: &TxOut,
) -> Result<(), TxRejection> {
    let refuse = |detail: String| TxRejection::Issuance {
        reason: "bad-txns-reissuance-token",
        input: index,
        detail,
    };
    let Some(input) = tx.input.get(index) else {
        return Err(refuse("no such input".into()));
    };
    let (_, asset, token) = issuance_ids(input);
    let nonce = input.asset_issuance.asset_blinding_nonce.to_byte_array();
    let blind = Tweak::from_inner(nonce)
        .map_err(|_| refuse("asset_blinding_nonce is not a valid blinding factor".into()))?;
    let expected = Generator::new_blinded(SECP256K1, token.into_tag(), blind);
    match spent.asset.commitment() {
        Some(generator) if generator == expected => Ok(()),
        Some(_) => Err(refuse(format!(
            "reissuance of {asset} does not spend its reissuance token {token} blinded by the input's asset_blinding_nonce"
        ))),
        None => Err(refuse(format!(
            "reissuance of {asset} spends an output with an unblinded asset; Elements requires the reissuance token {token} to be blinded"
        ))),
    }
}

/// Checks one issuance amount (asset or token) of a confidential-path verification and returns the generator of
/// the issued asset (unblinded) and the Pedersen commitment to the amount: explicit amounts are committed with a
/// zero blinding factor; confidential ones must carry a rangeproof proving them against the unblinded generator
/// and an empty script, with Elements' rule that a proof with minimum 0 is valid only for unspendable scripts (an
/// issuance proof commits to the empty script, which counts as unspendable).
pub fn verify_issuance_amount(
    index: usize,
    asset: AssetId,
    value: Value,
    rangeproof: Option<&elements::secp256k1_zkp::RangeProof>,
) -> Result<(Generator, PedersenCommitment), TxRejection> {
    let refuse = |reason: &'static str, detail: String| TxRejection::Issuance {
        reason,
        input: index,
        detail,
    };
    let generator = Generator::new_unblinded(SECP256K1, asset.into_tag());
    match value {
        Value::Explicit(v) if v > 0 && v <= MAX_MONEY => Ok((
            generator,
            PedersenCommitment::new_unblinded(SECP256K1, v, generator),
        )),
        Value::Explicit(v) => Err(refuse(
            "bad-txns-issuance-amount",
            format!("explicit issuance amount {v} of {asset} is outside 1..=MAX_MONEY"),
        )),
        Value::Confidential(commitment) => {
            let proof = rangeproof.ok_or_else(|| {
                refuse(
                    "bad-txns-issuance-rangeproof",
                    format!("confidential issuance of {asset} has no rangeproof"),
                )
            })?;
            proof
                .verify(SECP256K1, commitment, &[], generator)
                .map_err(|e| {
                    refuse(
                        "bad-txns-issuance-rangeproof",
                        format!("rangeproof of the confidential issuance of {asset} does not verify: {e}"),
                    )
                })?;
            Ok((generator, commitment))
        }
        Value::Null => Err(refuse(
            "bad-txns-issuance-amount",
            format!("null issuance amount of {asset}"),
        )),
    }
}
