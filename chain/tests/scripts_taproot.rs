//! Taproot spends of an `eltr(internal, pk(leaf))` output with Elements' BIP341 sighash (which commits to the
//! chain's genesis hash): key path and script path pass when signed correctly and are refused when tampered.

mod scripts_common;

use chain::ledger::verify_input_scripts;
use elements::schnorr::TapTweak;
use elements::secp256k1_zkp::Keypair;
use elements::taproot::LeafVersion;
use elements::{BlockHash, SchnorrSighashType, Script, Transaction, TxOut};
use elements_miniscript::descriptor::Tr;
use elements_miniscript::Descriptor;
use scripts_common::*;
use std::str::FromStr;

fn internal() -> Key {
    key(7)
}
fn leaf_key() -> Key {
    key(8)
}

fn descriptor() -> Tr<bitcoin::PublicKey> {
    let text = format!("eltr({},pk({}))", internal().pk, leaf_key().pk);
    match Descriptor::<bitcoin::PublicKey>::from_str(&text).expect("valid eltr descriptor") {
        Descriptor::Tr(tr) => tr,
        other => panic!("expected a Tr descriptor, got {other}"),
    }
}

fn leaf_script(tr: &Tr<bitcoin::PublicKey>) -> Script {
    let (_, leaf) = tr.iter_scripts().next().expect("one leaf");
    leaf.encode()
}

fn tweaked_keypair(tr: &Tr<bitcoin::PublicKey>) -> Keypair {
    internal()
        .keypair
        .tap_tweak(&*SECP, tr.spend_info().merkle_root())
        .to_inner()
}

/// Two inputs, both spending outputs of the descriptor (different values).
fn setup() -> (Tr<bitcoin::PublicKey>, Transaction, Vec<TxOut>) {
    let tr = descriptor();
    let spk = Descriptor::<bitcoin::PublicKey>::Tr(tr.clone()).script_pubkey();
    let spent = vec![
        explicit_out(spk.clone(), SPENT_VALUE),
        explicit_out(spk, SPENT_VALUE),
    ];
    (tr, unsigned_spend(2), spent)
}

fn key_path_sign(tx: &mut Transaction, spent: &[TxOut], tr: &Tr<bitcoin::PublicKey>, index: usize) {
    let sig = taproot_key_sig(
        tx,
        index,
        spent,
        &tweaked_keypair(tr),
        ctx().genesis_hash,
        SchnorrSighashType::Default,
    );
    set_witness(tx, index, vec![sig]);
}

fn script_path_witness(tr: &Tr<bitcoin::PublicKey>, sig: Vec<u8>) -> Vec<Vec<u8>> {
    let leaf = leaf_script(tr);
    let control = tr
        .spend_info()
        .control_block(&(leaf.clone(), LeafVersion::default()))
        .expect("leaf in tree");
    vec![sig, leaf.to_bytes(), control.serialize()]
}

fn script_path_sign(
    tx: &mut Transaction,
    spent: &[TxOut],
    tr: &Tr<bitcoin::PublicKey>,
    index: usize,
) {
    let leaf = leaf_script(tr);
    let sig = taproot_leaf_sig(
        tx,
        index,
        spent,
        &leaf,
        &leaf_key(),
        ctx().genesis_hash,
        SchnorrSighashType::Default,
    );
    let witness = script_path_witness(tr, sig);
    set_witness(tx, index, witness);
}

#[test]
fn key_path_spend_passes() {
    let (tr, mut tx, spent) = setup();
    key_path_sign(&mut tx, &spent, &tr, 0);
    key_path_sign(&mut tx, &spent, &tr, 1);
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));
}

#[test]
fn key_path_with_explicit_sighash_all_byte_passes_but_explicit_default_byte_is_refused() {
    let (tr, mut tx, spent) = setup();
    key_path_sign(&mut tx, &spent, &tr, 0);
    let all = taproot_key_sig(
        &tx,
        1,
        &spent,
        &tweaked_keypair(&tr),
        ctx().genesis_hash,
        SchnorrSighashType::All,
    );
    assert_eq!(all.len(), 65);
    set_witness(&mut tx, 1, vec![all]);
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));
    // BIP341: a 65-byte signature with hash type 0x00 is invalid.
    let mut explicit_default = taproot_key_sig(
        &tx,
        1,
        &spent,
        &tweaked_keypair(&tr),
        ctx().genesis_hash,
        SchnorrSighashType::Default,
    );
    explicit_default.push(0x00);
    set_witness(&mut tx, 1, vec![explicit_default]);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 1);
}

#[test]
fn key_path_tampered_spends_are_refused() {
    let (tr, mut tx, spent) = setup();
    key_path_sign(&mut tx, &spent, &tr, 0);

    // Signed with the untweaked internal key.
    let untweaked = taproot_key_sig(
        &tx,
        1,
        &spent,
        &internal().keypair,
        ctx().genesis_hash,
        SchnorrSighashType::Default,
    );
    set_witness(&mut tx, 1, vec![untweaked]);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 1);

    // Signed for another chain (another genesis hash).
    let other_chain = taproot_key_sig(
        &tx,
        1,
        &spent,
        &tweaked_keypair(&tr),
        BlockHash::from_byte_array([0x99; 32]),
        SchnorrSighashType::Default,
    );
    set_witness(&mut tx, 1, vec![other_chain]);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 1);

    // Input 0's signature on input 1.
    let sig0 = tx.input[0].witness.script_witness.to_vec();
    set_witness(&mut tx, 1, sig0);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 1);

    // A flipped byte.
    key_path_sign(&mut tx, &spent, &tr, 1);
    let mut items = tx.input[1].witness.script_witness.to_vec();
    items[0][10] ^= 0x01;
    set_witness(&mut tx, 1, items);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 1);

    // Signed over other spent amounts (the sighash commits to every input's amount).
    key_path_sign(&mut tx, &spent, &tr, 1);
    let mut other_amounts = spent.clone();
    other_amounts[1].value = elements::confidential::Value::Explicit(SPENT_VALUE + 1);
    let sig = taproot_key_sig(
        &tx,
        1,
        &other_amounts,
        &tweaked_keypair(&tr),
        ctx().genesis_hash,
        SchnorrSighashType::Default,
    );
    set_witness(&mut tx, 1, vec![sig]);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 1);

    // No witness at all.
    set_witness(&mut tx, 1, vec![]);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 1);
}

#[test]
fn script_path_spend_passes() {
    let (tr, mut tx, spent) = setup();
    script_path_sign(&mut tx, &spent, &tr, 0);
    key_path_sign(&mut tx, &spent, &tr, 1);
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));
}

#[test]
fn script_path_tampered_spends_are_refused() {
    let (tr, mut tx, spent) = setup();
    key_path_sign(&mut tx, &spent, &tr, 1);
    let leaf = leaf_script(&tr);

    // The leaf signed by the internal key instead of the leaf key.
    let wrong_key = taproot_leaf_sig(
        &tx,
        0,
        &spent,
        &leaf,
        &internal(),
        ctx().genesis_hash,
        SchnorrSighashType::Default,
    );
    set_witness(&mut tx, 0, script_path_witness(&tr, wrong_key));
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);

    // Signed with a key path sighash (no leaf hash) by the leaf key.
    let no_leaf = taproot_key_sig(
        &tx,
        0,
        &spent,
        &leaf_key().keypair,
        ctx().genesis_hash,
        SchnorrSighashType::Default,
    );
    set_witness(&mut tx, 0, script_path_witness(&tr, no_leaf));
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);

    // Another genesis hash.
    let other_chain = taproot_leaf_sig(
        &tx,
        0,
        &spent,
        &leaf,
        &leaf_key(),
        BlockHash::from_byte_array([0x99; 32]),
        SchnorrSighashType::Default,
    );
    set_witness(&mut tx, 0, script_path_witness(&tr, other_chain));
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);

    // A correct signature with a corrupted control block.
    script_path_sign(&mut tx, &spent, &tr, 0);
    let mut items = tx.input[0].witness.script_witness.to_vec();
    let last = items.len() - 1;
    items[last][5] ^= 0x01;
    set_witness(&mut tx, 0, items);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);

    // A correct signature with a non-Tapscript leaf version in the control block.
    script_path_sign(&mut tx, &spent, &tr, 0);
    let mut items = tx.input[0].witness.script_witness.to_vec();
    let last = items.len() - 1;
    items[last][0] = (items[last][0] & 0x01) | 0xc6;
    set_witness(&mut tx, 0, items);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);

    // The signature missing (empty): the leaf's pk() is not satisfied.
    script_path_sign(&mut tx, &spent, &tr, 0);
    let mut items = tx.input[0].witness.script_witness.to_vec();
    items[0] = Vec::new();
    set_witness(&mut tx, 0, items);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}
