//! Confidential transactions (blinded with rust-elements' `Transaction::blind`), issuance, reissuance and an
//! atomic two-asset swap, through `verify_amounts` and `validate_transaction` (scripts included).

mod ledger_common;

use chain::ledger::{
    issuance_ids, validate_transaction, verify_amounts, IssuanceRecord, RefusePegins, TxRejection,
    Utxo,
};
use elements::confidential::{AssetBlindingFactor, Value, ValueBlindingFactor};
use elements::issuance::{AssetEntropy, ContractHash};
use elements::secp256k1_zkp::{PedersenCommitment, SecretKey};
use elements::{
    AssetBlindingNonce, AssetId, OutPoint, RangeProofMessage, Transaction, TxOut, TxOutSecrets,
};
use ledger_common::*;
use std::collections::HashMap;

fn utxo_of(t: &Transaction, vout: u32) -> (OutPoint, Utxo) {
    (
        OutPoint::new(t.txid(), vout),
        Utxo {
            txout: t.output[vout as usize].clone(),
            height: 500,
            time: CUTOFF - 100_000,
            is_coinbase: false,
        },
    )
}

fn secrets_of(blinded: &[(usize, TxOutSecrets)], vout: usize) -> TxOutSecrets {
    blinded
        .iter()
        .find(|(index, _)| *index == vout)
        .map(|(_, s)| *s)
        .expect("output was blinded")
}

/// Key 1 owns 100_000 explicit L-BTC; pays 60_000 to key 2 and 39_000 back, both blinded, fee 1_000.
struct Blinded {
    view: HashMap<OutPoint, Utxo>,
    tx: Transaction,
    spent: Vec<TxOut>,
    secrets: Vec<(usize, TxOutSecrets)>,
}

fn blinded_spend() -> Blinded {
    let owner = key(1);
    let (outpoint, utxo) = coin(9, 0, lbtc_out(p2wpkh(&owner), 100_000), 10, false);
    let spent = vec![utxo.txout.clone()];
    let mut t = tx(
        vec![input(outpoint)],
        vec![
            to_blind(policy_asset(), p2wpkh(&key(2)), 60_000, blinding_pk(2)),
            to_blind(policy_asset(), p2wpkh(&owner), 39_000, blinding_pk(1)),
            fee_out(1_000),
        ],
    );
    let secrets = blind(&mut t, &[explicit_secrets(policy_asset(), 100_000)], 1);
    sign_all(&mut t, &[owner], &spent);
    Blinded {
        view: view(&[(outpoint, utxo)]),
        tx: t,
        spent,
        secrets,
    }
}

#[test]
fn blinded_transaction_validates() {
    let b = blinded_spend();
    assert!(b.tx.output[0].value.is_confidential() && b.tx.output[0].asset.is_confidential());
    assert!(b.tx.output[1].value.is_confidential());
    assert!(b.tx.output[2].value.is_explicit());
    let validated =
        validate_transaction(&ctx(), &b.view, &RefusePegins, &b.tx).expect("valid CT spend");
    assert_eq!(validated.fee, 1_000);
    assert_eq!(validated.created.len(), 2);
    // rust-elements' own checker agrees on this transaction.
    b.tx.verify_tx_amt_proofs(&SECP, &b.spent)
        .expect("rust-elements agrees");
}

#[test]
fn tampered_rangeproof_is_refused() {
    let mut b = blinded_spend();
    let proof0 = b.tx.output[0].witness.rangeproof.clone();
    b.tx.output[0].witness.rangeproof = b.tx.output[1].witness.rangeproof.clone();
    b.tx.output[1].witness.rangeproof = proof0;
    assert_reason(
        verify_amounts(&ctx(), &b.tx, &b.spent),
        "bad-txns-rangeproof-invalid",
    );
    assert_reason(
        validate_transaction(&ctx(), &b.view, &RefusePegins, &b.tx),
        "bad-txns-rangeproof-invalid",
    );

    let mut missing = blinded_spend();
    missing.tx.output[1].witness.rangeproof = elements::confidential::RangeProof::EMPTY;
    assert_reason(
        verify_amounts(&ctx(), &missing.tx, &missing.spent),
        "bad-txns-rangeproof-invalid",
    );
}

#[test]
fn tampered_value_commitment_is_refused() {
    let mut b = blinded_spend();
    let s = secrets_of(&b.secrets, 0);
    let generator = b.tx.output[0].asset.commitment().unwrap();
    // Same blinding factor and generator, one unit more.
    let inflated = PedersenCommitment::new(&SECP, s.value + 1, s.value_bf.into_inner(), generator);
    let honest = PedersenCommitment::new(&SECP, s.value, s.value_bf.into_inner(), generator);
    assert_eq!(
        b.tx.output[0].value,
        Value::Confidential(honest),
        "secrets match the output"
    );
    b.tx.output[0].value = Value::Confidential(inflated);
    let err = assert_reason(
        verify_amounts(&ctx(), &b.tx, &b.spent),
        "bad-txns-in-ne-out",
    );
    assert!(err.to_string().contains("do not balance"), "{err}");
}

#[test]
fn tampered_surjection_proof_is_refused() {
    let mut b = blinded_spend();
    let proof0 = b.tx.output[0].witness.surjection_proof.clone();
    b.tx.output[0].witness.surjection_proof = b.tx.output[1].witness.surjection_proof.clone();
    b.tx.output[1].witness.surjection_proof = proof0;
    assert_reason(
        verify_amounts(&ctx(), &b.tx, &b.spent),
        "bad-txns-surjectionproof-invalid",
    );
}

#[test]
fn proofs_on_explicit_outputs_are_refused() {
    let mut b = blinded_spend();
    b.tx.output[2].witness.rangeproof = b.tx.output[0].witness.rangeproof.clone();
    assert_reason(
        verify_amounts(&ctx(), &b.tx, &b.spent),
        "bad-txns-superfluous-proof",
    );
}

#[test]
fn confidential_two_in_two_out_spend_of_blinded_outputs_validates() {
    let b = blinded_spend();
    let coins = [utxo_of(&b.tx, 0), utxo_of(&b.tx, 1)];
    let spent: Vec<TxOut> = coins.iter().map(|(_, u)| u.txout.clone()).collect();
    let mut t = tx(
        vec![input(coins[0].0), input(coins[1].0)],
        vec![
            to_blind(policy_asset(), p2wpkh(&key(3)), 50_000, blinding_pk(3)),
            to_blind(policy_asset(), p2wpkh(&key(2)), 48_500, blinding_pk(2)),
            fee_out(500),
        ],
    );
    let inputs = [secrets_of(&b.secrets, 0), secrets_of(&b.secrets, 1)];
    blind(&mut t, &inputs, 2);
    sign_all(&mut t, &[key(2), key(1)], &spent);
    let validated = validate_transaction(&ctx(), &view(&coins), &RefusePegins, &t)
        .expect("valid CT 2-in/2-out");
    assert_eq!(validated.fee, 500);
    assert_eq!(validated.spent.len(), 2);

    // Claiming a larger fee than the inputs leave breaks the balance.
    let mut greedy = t.clone();
    greedy.output[2] = fee_out(501);
    assert_reason(
        verify_amounts(&ctx(), &greedy, &spent),
        "bad-txns-in-ne-out",
    );
}

fn contract() -> ContractHash {
    ContractHash::from_byte_array([0xc0; 32])
}

#[test]
fn explicit_issuance_with_reissuance_tokens_validates_and_is_recorded() {
    let owner = key(1);
    let (outpoint, utxo) = coin(9, 0, lbtc_out(p2wpkh(&owner), 100_000), 10, false);
    let v = view(&[(outpoint, utxo.clone())]);
    let spent = vec![utxo.txout];
    let asset = AssetId::new_issuance(outpoint, contract());
    let token = AssetId::new_reissuance_token(outpoint, contract(), false);
    let make = |amount: u64, issued_out: u64| {
        let mut i = input(outpoint);
        i.asset_issuance.asset_entropy = AssetEntropy::from_byte_array(contract().to_byte_array());
        i.asset_issuance.amount = Value::Explicit(amount);
        i.asset_issuance.inflation_keys = Value::Explicit(10);
        let mut t = tx(
            vec![i],
            vec![
                explicit_out(asset, p2wpkh(&owner), issued_out),
                explicit_out(token, p2wpkh(&owner), 10),
                lbtc_out(p2wpkh(&owner), 99_000),
                fee_out(1_000),
            ],
        );
        sign_all(&mut t, &[owner], &spent);
        t
    };
    let t = make(1_000_000, 1_000_000);
    let validated = validate_transaction(&ctx(), &v, &RefusePegins, &t).expect("valid issuance");
    assert_eq!(
        validated.issuances,
        vec![IssuanceRecord {
            input: 0,
            asset,
            token: Some(token),
            amount: Some(1_000_000),
            token_amount: Some(10),
            is_reissuance: false,
            entropy: AssetEntropy::to_byte_array(AssetId::generate_asset_entropy(
                outpoint,
                contract()
            )),
        }]
    );
    assert_eq!(validated.created.len(), 3);

    assert_reason(
        validate_transaction(&ctx(), &v, &RefusePegins, &make(1_000_000, 1_000_001)),
        "bad-txns-in-ne-out",
    );
    let zero = make(0, 1);
    let err = assert_reason(
        verify_amounts(&ctx(), &zero, &spent),
        "bad-txns-issuance-amount",
    );
    assert!(matches!(err, TxRejection::Issuance { input: 0, .. }));
    let huge = make(chain::ledger::MAX_MONEY + 1, 1);
    assert_reason(
        verify_amounts(&ctx(), &huge, &spent),
        "bad-txns-issuance-amount",
    );
}

/// A confidential issuance of 1_000_000 units with 1 reissuance token, everything blinded. Returns the
/// transaction, the blinded outputs' secrets and the issuance record.
struct ConfidentialIssuance {
    tx: Transaction,
    spent: Vec<TxOut>,
    view: HashMap<OutPoint, Utxo>,
    secrets: Vec<(usize, TxOutSecrets)>,
    asset: AssetId,
    token: AssetId,
    entropy: [u8; 32],
}

fn confidential_issuance() -> ConfidentialIssuance {
    let owner = key(1);
    let (outpoint, utxo) = coin(9, 0, lbtc_out(p2wpkh(&owner), 100_000), 10, false);
    let spent = vec![utxo.txout.clone()];
    let mut i = input(outpoint);
    i.asset_issuance.asset_entropy = AssetEntropy::from_byte_array(contract().to_byte_array());
    i.asset_issuance.amount = Value::Explicit(1_000_000);
    let issue_vbf = ValueBlindingFactor::from_slice(&[3; 32]).unwrap();
    let token_vbf = ValueBlindingFactor::from_slice(&[4; 32]).unwrap();
    let sk = SecretKey::from_slice(&[5; 32]).unwrap();
    // Blind the asset amount with rust-elements (it proves against the asset's generator, as Elements wants).
    i.blind_issuances_with_bfs(&SECP, issue_vbf, token_vbf, sk, sk)
        .expect("issuance blinded");
    assert!(i.asset_issuance.amount.is_confidential());
    let (entropy, asset, token) = issuance_ids(&i);
    // Elements: the token of a confidential issuance is derived with the "confidential" flag.
    assert_eq!(
        token,
        AssetId::new_reissuance_token(outpoint, contract(), true)
    );
    // The token amount is blinded by hand against that token's generator: rust-elements'
    // `blind_issuances_with_bfs` derives the token id while the amount is still explicit (the non-confidential
    // token), which Elements' VerifyAmounts refuses.
    let (keys, keys_proof) = Value::Explicit(1)
        .blind_with_shared_secret(
            &SECP,
            token_vbf,
            sk,
            &elements::Script::new(),
            &RangeProofMessage::new(token, AssetBlindingFactor::zero()),
        )
        .expect("token amount blinded");
    i.asset_issuance.inflation_keys = keys;
    i.witness.inflation_keys_rangeproof = keys_proof;
    let mut t = tx(
        vec![i],
        vec![
            to_blind(asset, p2wpkh(&owner), 1_000_000, blinding_pk(1)),
            to_blind(token, p2wpkh(&owner), 1, blinding_pk(1)),
            to_blind(policy_asset(), p2wpkh(&owner), 99_000, blinding_pk(1)),
            fee_out(1_000),
        ],
    );
    let inputs = [
        explicit_secrets(policy_asset(), 100_000),
        TxOutSecrets::new(asset, AssetBlindingFactor::zero(), 1_000_000, issue_vbf),
        TxOutSecrets::new(token, AssetBlindingFactor::zero(), 1, token_vbf),
    ];
    let secrets = blind(&mut t, &inputs, 3);
    sign_all(&mut t, &[owner], &spent);
    ConfidentialIssuance {
        tx: t,
        spent,
        view: view(&[(outpoint, utxo)]),
        secrets,
        asset,
        token,
        entropy: entropy.to_byte_array(),
    }
}

#[test]
fn confidential_issuance_with_reissuance_tokens_validates() {
    let c = confidential_issuance();
    let validated = validate_transaction(&ctx(), &c.view, &RefusePegins, &c.tx)
        .expect("valid confidential issuance");
    assert_eq!(validated.issuances.len(), 1);
    let record = &validated.issuances[0];
    assert_eq!((record.asset, record.token), (c.asset, Some(c.token)));
    assert_eq!((record.amount, record.token_amount), (None, None));
    assert!(!record.is_reissuance);
}

#[test]
fn tampered_issuance_rangeproof_is_refused() {
    let mut c = confidential_issuance();
    let w = &mut c.tx.input[0].witness;
    std::mem::swap(&mut w.amount_rangeproof, &mut w.inflation_keys_rangeproof);
    assert_reason(
        verify_amounts(&ctx(), &c.tx, &c.spent),
        "bad-txns-issuance-rangeproof",
    );

    let mut missing = confidential_issuance();
    missing.tx.input[0].witness.amount_rangeproof = elements::confidential::RangeProof::EMPTY;
    assert_reason(
        verify_amounts(&ctx(), &missing.tx, &missing.spent),
        "bad-txns-issuance-amount",
    );
}

/// Reissues 500 units, spending `token_vout` of the issuance as input 0 (the one carrying the reissuance) and the
/// L-BTC output as input 1 for the fee.
fn reissuance(
    c: &ConfidentialIssuance,
    token_vout: u32,
    other_vout: u32,
) -> (Transaction, Vec<TxOut>, HashMap<OutPoint, Utxo>) {
    let owner = key(1);
    let coins = [utxo_of(&c.tx, token_vout), utxo_of(&c.tx, other_vout)];
    let spent: Vec<TxOut> = coins.iter().map(|(_, u)| u.txout.clone()).collect();
    let token_secrets = secrets_of(&c.secrets, 1);
    let mut i = input(coins[0].0);
    i.asset_issuance.asset_blinding_nonce =
        AssetBlindingNonce::from_blinding_factor(token_secrets.asset_bf);
    i.asset_issuance.asset_entropy = AssetEntropy::from_byte_array(c.entropy);
    i.asset_issuance.amount = Value::Explicit(500);
    let reissue_vbf = ValueBlindingFactor::from_slice(&[6; 32]).unwrap();
    let sk = SecretKey::from_slice(&[7; 32]).unwrap();
    i.blind_issuances_with_bfs(&SECP, reissue_vbf, reissue_vbf, sk, sk)
        .expect("reissuance amount blinded");
    let mut t = tx(
        vec![i, input(coins[1].0)],
        vec![
            to_blind(c.asset, p2wpkh(&owner), 500, blinding_pk(1)),
            to_blind(c.token, p2wpkh(&owner), 1, blinding_pk(1)),
            to_blind(policy_asset(), p2wpkh(&owner), 98_000, blinding_pk(1)),
            fee_out(1_000),
        ],
    );
    let inputs = [
        secrets_of(&c.secrets, token_vout as usize),
        TxOutSecrets::new(c.asset, AssetBlindingFactor::zero(), 500, reissue_vbf),
        secrets_of(&c.secrets, other_vout as usize),
    ];
    blind(&mut t, &inputs, 4);
    sign_all(&mut t, &[owner, owner], &spent);
    (t, spent, view(&coins))
}

#[test]
fn reissuance_spending_the_token_validates() {
    let c = confidential_issuance();
    let (t, _, v) = reissuance(&c, 1, 2);
    let validated = validate_transaction(&ctx(), &v, &RefusePegins, &t).expect("valid reissuance");
    assert_eq!(validated.issuances.len(), 1);
    let record = &validated.issuances[0];
    assert!(record.is_reissuance);
    assert_eq!(record.asset, c.asset);
    assert_eq!(record.token, Some(c.token));
    assert_eq!(record.entropy, c.entropy);
}

#[test]
fn reissuance_without_the_token_is_refused() {
    let c = confidential_issuance();
    // Input 0 (carrying the reissuance) spends the issued-asset output, not the token.
    let mut t = reissuance(&c, 1, 2).0;
    t.input.swap(0, 1);
    let (first, second) = t.input.split_at_mut(1);
    std::mem::swap(&mut first[0].asset_issuance, &mut second[0].asset_issuance);
    std::mem::swap(&mut first[0].witness, &mut second[0].witness);
    let coins = [utxo_of(&c.tx, 2), utxo_of(&c.tx, 1)];
    let spent: Vec<TxOut> = coins.iter().map(|(_, u)| u.txout.clone()).collect();
    let err = assert_reason(
        verify_amounts(&ctx(), &t, &spent),
        "bad-txns-reissuance-token",
    );
    assert!(matches!(err, TxRejection::Issuance { input: 0, .. }));
    assert_reason(
        validate_transaction(&ctx(), &view(&coins), &RefusePegins, &t),
        "bad-txns-reissuance-token",
    );

    // An explicit (unblinded) token output cannot authorise a reissuance (Elements' rule).
    let (t, mut spent, _) = reissuance(&c, 1, 2);
    spent[0] = explicit_out(c.token, p2wpkh(&key(1)), 1);
    let err = assert_reason(
        verify_amounts(&ctx(), &t, &spent),
        "bad-txns-reissuance-token",
    );
    assert!(err.to_string().contains("unblinded"), "{err}");
}

#[test]
fn reissuance_cannot_issue_tokens() {
    let c = confidential_issuance();
    let (mut t, spent, _) = reissuance(&c, 1, 2);
    t.input[0].asset_issuance.inflation_keys = Value::Explicit(1);
    assert_reason(
        verify_amounts(&ctx(), &t, &spent),
        "bad-txns-reissuance-inflation-keys",
    );
}

/// Party A (key 1) gives 99_000 L-BTC (fee 1_000 from its 100_000) for party B's (key 2) 500 units of another
/// asset, in one transaction each signs for its own input.
fn swap(blinded: bool) -> (Transaction, Vec<TxOut>, HashMap<OutPoint, Utxo>) {
    let (a, b) = (key(1), key(2));
    let coin_a = coin(9, 0, lbtc_out(p2wpkh(&a), 100_000), 10, false);
    let coin_b = coin(
        8,
        3,
        explicit_out(other_asset(), p2wpkh(&b), 500),
        10,
        false,
    );
    let spent = vec![coin_a.1.txout.clone(), coin_b.1.txout.clone()];
    let outputs = if blinded {
        vec![
            to_blind(other_asset(), p2wpkh(&a), 500, blinding_pk(1)),
            to_blind(policy_asset(), p2wpkh(&b), 99_000, blinding_pk(2)),
            fee_out(1_000),
        ]
    } else {
        vec![
            explicit_out(other_asset(), p2wpkh(&a), 500),
            lbtc_out(p2wpkh(&b), 99_000),
            fee_out(1_000),
        ]
    };
    let mut t = tx(vec![input(coin_a.0), input(coin_b.0)], outputs);
    if blinded {
        blind(
            &mut t,
            &[
                explicit_secrets(policy_asset(), 100_000),
                explicit_secrets(other_asset(), 500),
            ],
            5,
        );
    }
    // Each party signs only its own input (SIGHASH_ALL commits to the whole exchange).
    sign_p2wpkh(&mut t, 0, &a, spent[0].value);
    sign_p2wpkh(&mut t, 1, &b, spent[1].value);
    (t, spent, view(&[coin_a, coin_b]))
}

#[test]
fn atomic_two_asset_swap_validates() {
    for blinded in [false, true] {
        let (t, _, v) = swap(blinded);
        let validated = validate_transaction(&ctx(), &v, &RefusePegins, &t)
            .unwrap_or_else(|e| panic!("swap (blinded {blinded}) refused: {e}"));
        assert_eq!(validated.fee, 1_000);
        assert_eq!(validated.spent.len(), 2);
        assert_eq!(validated.created.len(), 2);
    }
}

#[test]
fn swap_taking_more_than_given_is_refused() {
    let (mut t, spent, _) = swap(false);
    t.output[0] = explicit_out(other_asset(), p2wpkh(&key(1)), 501);
    assert_reason(verify_amounts(&ctx(), &t, &spent), "bad-txns-in-ne-out");
    // And one party changing the deal after the other signed breaks the other's signature.
    let (mut t, _, v) = swap(false);
    t.output[1] = lbtc_out(p2wpkh(&key(2)), 98_000);
    t.output[2] = fee_out(2_000);
    sign_p2wpkh(&mut t, 1, &key(2), Value::Explicit(500));
    assert_reason(
        validate_transaction(&ctx(), &v, &RefusePegins, &t),
        "mandatory-script-verify-flag-failed",
    );
}

#[test]
fn null_or_zero_inputs_are_refused_on_both_paths() {
    let b = blinded_spend();
    let mut spent = b.spent.clone();
    spent[0].value = Value::Explicit(0);
    assert_reason(verify_amounts(&ctx(), &b.tx, &spent), "bad-txns-in-ne-out");
    spent[0].value = Value::Null;
    assert_reason(verify_amounts(&ctx(), &b.tx, &spent), "bad-txns-in-ne-out");
}
