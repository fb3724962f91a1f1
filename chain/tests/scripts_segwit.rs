//! Input script verification for P2WPKH, P2SH-P2WPKH, P2PKH, P2PK, P2WSH and P2SH-P2WSH spends: correctly signed
//! spends pass; tampered ones (wrong key, flipped byte, signature for another input/amount/sighash type, missing
//! witness), non-miniscript scripts and hostile witnesses are refused without panicking.

mod scripts_common;

use chain::ledger::{verify_input_scripts, TxRejection};
use elements::confidential::{AssetBlindingFactor, Value, ValueBlindingFactor};
use elements::script::Builder;
use elements::{EcdsaSighashType, Script, TxOut};
use elements_miniscript::{Descriptor, ElementsSig};
use rand::{Rng, SeedableRng};
use scripts_common::*;
use std::collections::HashMap;
use std::str::FromStr;

fn explicit(value: u64) -> Value {
    Value::Explicit(value)
}

#[test]
fn p2wpkh_signed_spend_passes() {
    let alice = key(1);
    let spent = vec![explicit_out(p2wpkh(&alice), SPENT_VALUE)];
    let mut tx = unsigned_spend(1);
    sign_p2wpkh(&mut tx, 0, &alice, explicit(SPENT_VALUE));
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));
}

#[test]
fn p2wpkh_signed_by_another_key_is_refused() {
    let alice = key(1);
    let mallory = key(2);
    let spent = vec![explicit_out(p2wpkh(&alice), SPENT_VALUE)];
    let mut tx = unsigned_spend(1);
    // Mallory's signature with Alice's public key: the key hash matches, the signature does not.
    let sig = segwit_sig(
        &tx,
        0,
        &p2pkh(&alice),
        explicit(SPENT_VALUE),
        &mallory,
        EcdsaSighashType::All,
    );
    set_witness(&mut tx, 0, vec![sig, alice.pk.to_bytes()]);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    // Mallory's signature with Mallory's key: the key hash does not match the output.
    sign_p2wpkh(&mut tx, 0, &mallory, explicit(SPENT_VALUE));
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

#[test]
fn p2wpkh_flipped_signature_byte_is_refused() {
    let alice = key(1);
    let spent = vec![explicit_out(p2wpkh(&alice), SPENT_VALUE)];
    let mut tx = unsigned_spend(1);
    let mut sig = segwit_sig(
        &tx,
        0,
        &p2pkh(&alice),
        explicit(SPENT_VALUE),
        &alice,
        EcdsaSighashType::All,
    );
    flip_sig_byte(&mut sig);
    set_witness(&mut tx, 0, vec![sig, alice.pk.to_bytes()]);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

#[test]
fn p2wpkh_signature_for_another_input_is_refused() {
    let alice = key(1);
    let spent = vec![
        explicit_out(p2wpkh(&alice), SPENT_VALUE),
        explicit_out(p2wpkh(&alice), SPENT_VALUE),
    ];
    let mut tx = unsigned_spend(2);
    sign_p2wpkh(&mut tx, 0, &alice, explicit(SPENT_VALUE));
    sign_p2wpkh(&mut tx, 1, &alice, explicit(SPENT_VALUE));
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));
    // Input 0's witness copied onto input 1.
    let witness0 = tx.input[0].witness.script_witness.to_vec();
    set_witness(&mut tx, 1, witness0);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 1);
}

#[test]
fn p2wpkh_signature_over_another_amount_is_refused() {
    let alice = key(1);
    let spent = vec![explicit_out(p2wpkh(&alice), SPENT_VALUE)];
    let mut tx = unsigned_spend(1);
    sign_p2wpkh(&mut tx, 0, &alice, explicit(SPENT_VALUE - 1));
    let detail = expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    assert!(detail.contains("not satisfied"), "{detail}");
}

#[test]
fn p2wpkh_spending_a_confidential_output_signs_its_commitment() {
    let alice = key(1);
    let commitment = Value::new_confidential_from_assetid(
        &*SECP,
        SPENT_VALUE,
        policy_asset(),
        ValueBlindingFactor::from_slice(&[3; 32]).expect("blinding factor"),
        AssetBlindingFactor::from_slice(&[4; 32]).expect("blinding factor"),
    );
    let mut spent_out = explicit_out(p2wpkh(&alice), SPENT_VALUE);
    spent_out.value = commitment;
    let spent = vec![spent_out];
    let mut tx = unsigned_spend(1);
    sign_p2wpkh(&mut tx, 0, &alice, commitment);
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));
    // Signing the explicit amount instead of the commitment the output carries fails.
    sign_p2wpkh(&mut tx, 0, &alice, explicit(SPENT_VALUE));
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

#[test]
fn p2wpkh_sighash_type_must_match_what_was_signed() {
    let alice = key(1);
    let spent = vec![explicit_out(p2wpkh(&alice), SPENT_VALUE)];
    let mut tx = unsigned_spend(1);
    // A SIGHASH_SINGLE signature is valid as such.
    let single = segwit_sig(
        &tx,
        0,
        &p2pkh(&alice),
        explicit(SPENT_VALUE),
        &alice,
        EcdsaSighashType::Single,
    );
    set_witness(&mut tx, 0, vec![single.clone(), alice.pk.to_bytes()]);
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));
    // The same signature relabelled as SIGHASH_ALL is refused.
    let mut relabelled = single;
    *relabelled.last_mut().expect("sighash byte") = EcdsaSighashType::All as u8;
    set_witness(&mut tx, 0, vec![relabelled, alice.pk.to_bytes()]);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    // An ALL signature with an undefined byte that the interpreter would normalise to ALL (0x05) is refused.
    let mut undefined = segwit_sig(
        &tx,
        0,
        &p2pkh(&alice),
        explicit(SPENT_VALUE),
        &alice,
        EcdsaSighashType::All,
    );
    *undefined.last_mut().expect("sighash byte") = 0x05;
    set_witness(&mut tx, 0, vec![undefined, alice.pk.to_bytes()]);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

#[test]
fn p2wpkh_missing_or_malformed_witness_is_refused() {
    let alice = key(1);
    let spent = vec![explicit_out(p2wpkh(&alice), SPENT_VALUE)];
    let mut tx = unsigned_spend(1);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    sign_p2wpkh(&mut tx, 0, &alice, explicit(SPENT_VALUE));
    let good = tx.input[0].witness.script_witness.to_vec();
    // Only the public key.
    set_witness(&mut tx, 0, vec![good[1].clone()]);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    // An extra item (cleanstack).
    set_witness(&mut tx, 0, vec![vec![7], good[0].clone(), good[1].clone()]);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    // A non-empty scriptSig on a native segwit spend.
    set_witness(&mut tx, 0, good.clone());
    tx.input[0].script_sig = Builder::new().push_slice(&[1, 2, 3]).into_script();
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

#[test]
fn p2sh_p2wpkh_signed_spend_passes_and_tampered_is_refused() {
    let alice = key(1);
    let redeem = p2wpkh(&alice);
    let spk = Script::new_p2sh(&redeem.script_hash());
    let spent = vec![explicit_out(spk, SPENT_VALUE)];
    let mut tx = unsigned_spend(1);
    tx.input[0].script_sig = Builder::new().push_slice(redeem.as_bytes()).into_script();
    let mut sig = segwit_sig(
        &tx,
        0,
        &p2pkh(&alice),
        explicit(SPENT_VALUE),
        &alice,
        EcdsaSighashType::All,
    );
    set_witness(&mut tx, 0, vec![sig.clone(), alice.pk.to_bytes()]);
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));
    flip_sig_byte(&mut sig);
    set_witness(&mut tx, 0, vec![sig, alice.pk.to_bytes()]);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    // Without the redeem script in the scriptSig.
    sign_p2wpkh(&mut tx, 0, &alice, explicit(SPENT_VALUE));
    tx.input[0].script_sig = Script::new();
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

#[test]
fn p2pkh_signed_spend_passes_and_tampered_is_refused() {
    let alice = key(1);
    let spk = p2pkh(&alice);
    let spent = vec![explicit_out(spk.clone(), SPENT_VALUE)];
    let mut tx = unsigned_spend(1);
    let sig = legacy_sig(&tx, 0, &spk, &alice, EcdsaSighashType::All);
    tx.input[0].script_sig = Builder::new()
        .push_slice(&sig)
        .push_slice(&alice.pk.to_bytes())
        .into_script();
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));

    let mallory = key(2);
    let wrong = legacy_sig(&tx, 0, &spk, &mallory, EcdsaSighashType::All);
    tx.input[0].script_sig = Builder::new()
        .push_slice(&wrong)
        .push_slice(&alice.pk.to_bytes())
        .into_script();
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);

    let mut flipped = sig;
    flip_sig_byte(&mut flipped);
    tx.input[0].script_sig = Builder::new()
        .push_slice(&flipped)
        .push_slice(&alice.pk.to_bytes())
        .into_script();
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

#[test]
fn p2pk_signed_spend_passes_and_wrong_key_is_refused() {
    let alice = key(1);
    let spk = Builder::new()
        .push_slice(&alice.pk.to_bytes())
        .push_opcode(elements::opcodes::all::OP_CHECKSIG)
        .into_script();
    let spent = vec![explicit_out(spk.clone(), SPENT_VALUE)];
    let mut tx = unsigned_spend(1);
    let sig = legacy_sig(&tx, 0, &spk, &alice, EcdsaSighashType::All);
    tx.input[0].script_sig = Builder::new().push_slice(&sig).into_script();
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));
    let wrong = legacy_sig(&tx, 0, &spk, &key(2), EcdsaSighashType::All);
    tx.input[0].script_sig = Builder::new().push_slice(&wrong).into_script();
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

/// ECDSA signature pair over the segwit v0 sighash, for descriptor satisfiers.
fn elements_sig(tx: &elements::Transaction, index: usize, code: &Script, key: &Key) -> ElementsSig {
    let bytes = segwit_sig(
        tx,
        index,
        code,
        explicit(SPENT_VALUE),
        key,
        EcdsaSighashType::All,
    );
    let sig = elements::secp256k1_zkp::ecdsa::Signature::from_der(&bytes[..bytes.len() - 1])
        .expect("der");
    (sig, EcdsaSighashType::All)
}

fn check_two_of_two(descriptor: &str) {
    let (alice, bob, mallory) = (key(1), key(2), key(3));
    let desc = Descriptor::<bitcoin::PublicKey>::from_str(
        &descriptor
            .replace("A", &alice.pk.to_string())
            .replace("B", &bob.pk.to_string()),
    )
    .expect("descriptor");
    let spent = vec![explicit_out(desc.script_pubkey(), SPENT_VALUE)];
    let code = desc.script_code().expect("script code");
    let mut tx = unsigned_spend(1);

    let mut sigs: HashMap<bitcoin::PublicKey, ElementsSig> = HashMap::new();
    sigs.insert(alice.pk, elements_sig(&tx, 0, &code, &alice));
    sigs.insert(bob.pk, elements_sig(&tx, 0, &code, &bob));
    desc.satisfy(&mut tx.input[0], &sigs).expect("satisfiable");
    assert_eq!(
        verify_input_scripts(&ctx(), &tx, &spent),
        Ok(()),
        "{descriptor}"
    );

    // Bob's slot signed by Mallory.
    let mut forged = sigs.clone();
    forged.insert(bob.pk, elements_sig(&tx, 0, &code, &mallory));
    desc.satisfy(&mut tx.input[0], &forged)
        .expect("satisfiable");
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);

    // Only one signature: Bob's slot left empty.
    desc.satisfy(&mut tx.input[0], &sigs).expect("satisfiable");
    let mut items = tx.input[0].witness.script_witness.to_vec();
    // Witness: [<empty for CHECKMULTISIG bug>, sigA, sigB, script]; blank Bob's signature.
    let bob_slot = items.len() - 2;
    items[bob_slot] = Vec::new();
    set_witness(&mut tx, 0, items);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

#[test]
fn p2wsh_multisig_passes_and_forged_signature_is_refused() {
    check_two_of_two("elwsh(multi(2,A,B))");
}

#[test]
fn p2sh_p2wsh_multisig_passes_and_forged_signature_is_refused() {
    check_two_of_two("elsh(wsh(multi(2,A,B)))");
}

#[test]
fn non_miniscript_scripts_are_refused_with_a_reason() {
    let alice = key(1);
    let mut tx = unsigned_spend(1);

    // A P2WSH whose witness script is valid Script but not miniscript: OP_ADD 3 OP_EQUAL.
    let script = Builder::new()
        .push_opcode(elements::opcodes::all::OP_ADD)
        .push_int(3)
        .push_opcode(elements::opcodes::all::OP_EQUAL)
        .into_script();
    let spent = vec![explicit_out(
        Script::new_v0_wsh(&script.wscript_hash()),
        SPENT_VALUE,
    )];
    set_witness(&mut tx, 0, vec![vec![1], vec![2], script.to_bytes()]);
    let detail = expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    assert!(detail.contains("miniscript"), "{detail}");

    // An OP_RETURN output.
    let spent = vec![explicit_out(Script::new_op_return(b"data"), SPENT_VALUE)];
    set_witness(&mut tx, 0, vec![]);
    let detail = expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    assert!(detail.contains("miniscript"), "{detail}");

    // A witness program of an unknown version (v2).
    let v2 = Builder::new()
        .push_int(2)
        .push_slice(&[9; 32])
        .into_script();
    let spent = vec![explicit_out(v2, SPENT_VALUE)];
    sign_p2wpkh(&mut tx, 0, &alice, explicit(SPENT_VALUE));
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

#[test]
fn spent_outputs_must_match_the_inputs() {
    let alice = key(1);
    let spent = vec![explicit_out(p2wpkh(&alice), SPENT_VALUE)];
    let mut tx = unsigned_spend(2);
    sign_p2wpkh(&mut tx, 0, &alice, explicit(SPENT_VALUE));
    let result = verify_input_scripts(&ctx(), &tx, &spent);
    assert!(
        matches!(&result, Err(TxRejection::Script { detail, .. }) if detail.contains("1 spent outputs were given for 2 inputs")),
        "{result:?}"
    );
    let none: Vec<TxOut> = Vec::new();
    assert!(verify_input_scripts(&ctx(), &tx, &none).is_err());
}

#[test]
fn hostile_witnesses_are_refused_without_panicking() {
    let alice = key(1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let wsh_script = Builder::new()
        .push_slice(&alice.pk.to_bytes())
        .push_opcode(elements::opcodes::all::OP_CHECKSIG)
        .into_script();
    let taproot = Builder::new()
        .push_int(1)
        .push_slice(&[7; 32])
        .into_script();
    let spks = [
        p2wpkh(&alice),
        Script::new_v0_wsh(&wsh_script.wscript_hash()),
        Script::new_p2sh(&p2wpkh(&alice).script_hash()),
        p2pkh(&alice),
        taproot,
    ];
    let mut tx = unsigned_spend(1);
    let good_sig = segwit_sig(
        &tx,
        0,
        &p2pkh(&alice),
        explicit(SPENT_VALUE),
        &alice,
        EcdsaSighashType::All,
    );
    for round in 0..3000 {
        let spk = spks[round % spks.len()].clone();
        let spent = vec![explicit_out(spk, SPENT_VALUE)];
        let n_items = rng.gen_range(0..6);
        let items: Vec<Vec<u8>> = (0..n_items)
            .map(|_| match rng.gen_range(0..8) {
                0 => Vec::new(),
                1 => vec![1],
                2 => alice.pk.to_bytes(),
                3 => wsh_script.to_bytes(),
                4 => {
                    let mut sig = good_sig.clone();
                    let at = rng.gen_range(0..sig.len());
                    sig[at] ^= rng.gen_range(1..=255u8);
                    sig
                }
                5 => vec![0x50; rng.gen_range(1..80)],
                6 => (0..rng.gen_range(1..200)).map(|_| rng.gen()).collect(),
                _ => (0..rng.gen_range(60..70)).map(|_| rng.gen()).collect(),
            })
            .collect();
        set_witness(&mut tx, 0, items);
        let sig_len = rng.gen_range(0..4);
        tx.input[0].script_sig = Script::from((0..sig_len).map(|_| rng.gen()).collect::<Vec<u8>>());
        expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    }
}

#[test]
fn legacy_checksigfromstack_covenants_are_refused() {
    let (alice, bob) = (key(1), key(2));
    let desc = Descriptor::<bitcoin::PublicKey>::from_str(&format!(
        "elcovwsh({},pk({}))",
        alice.pk, bob.pk
    ))
    .expect("covenant descriptor");
    let script = desc.explicit_script().expect("witness script");
    let spent = vec![explicit_out(desc.script_pubkey(), SPENT_VALUE)];
    let mut tx = unsigned_spend(1);
    let mut witness = vec![vec![7u8; 8]; 12];
    witness.push(script.to_bytes());
    set_witness(&mut tx, 0, witness);
    let detail = expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    assert!(detail.contains("OP_CODESEPARATOR"), "{detail}");
}
