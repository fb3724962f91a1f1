//! The PeerSwap-style swap HTLC as a P2WSH miniscript: policy
//! `or(and(pk(A),sha256(H)), or(and(pk(A),pk(B)), and(pk(B),older(N))))`, written as the miniscript
//! `or_i(and_v(v:pk(A),sha256(H)),or_i(and_v(v:pk(A),pk(B)),and_v(v:pk(B),older(N))))` (the policy compiler is
//! not enabled in our elements-miniscript build). Each of its three paths spends; the refund path is refused before
//! the relative timeout, with the timelock disabled or in the wrong unit; the preimage path with a wrong preimage.

mod scripts_common;

use bitcoin::hashes::{sha256, Hash as _};
use chain::ledger::verify_input_scripts;
use elements::confidential::Value;
use elements::{EcdsaSighashType, Script, Sequence, Transaction, TxOut};
use elements_miniscript::{Descriptor, ElementsSig, Preimage32, Satisfier};
use scripts_common::*;
use std::collections::HashMap;
use std::str::FromStr;

/// Relative timeout of the refund path, in blocks.
const TIMEOUT: u32 = 144;
const PREIMAGE: [u8; 32] = [0x42; 32];

/// A = the claimer (preimage holder), B = the refund party.
fn alice() -> Key {
    key(1)
}
fn bob() -> Key {
    key(2)
}

fn htlc() -> Descriptor<bitcoin::PublicKey> {
    let hash = sha256::Hash::hash(&PREIMAGE);
    let text = format!(
        "elwsh(or_i(and_v(v:pk({a}),sha256({hash})),or_i(and_v(v:pk({a}),pk({b})),and_v(v:pk({b}),older({TIMEOUT})))))",
        a = alice().pk,
        b = bob().pk,
    );
    Descriptor::<bitcoin::PublicKey>::from_str(&text).expect("valid HTLC descriptor")
}

/// What the spender has: signatures, a preimage, whether it claims the timeout.
struct HtlcSatisfier {
    sigs: HashMap<bitcoin::PublicKey, ElementsSig>,
    preimage: Option<Preimage32>,
    timeout: bool,
}

impl Satisfier<bitcoin::PublicKey> for HtlcSatisfier {
    fn lookup_ecdsa_sig(&self, pk: &bitcoin::PublicKey) -> Option<ElementsSig> {
        self.sigs.get(pk).copied()
    }
    fn lookup_sha256(&self, _: &sha256::Hash) -> Option<Preimage32> {
        self.preimage
    }
    fn check_older(&self, _: Sequence) -> bool {
        self.timeout
    }
}

/// Builds a spend of the HTLC with `sequence` and `version`, signed by `signers`, satisfied with what is given.
fn spend(
    sequence: u32,
    version: u32,
    signers: &[Key],
    preimage: Option<Preimage32>,
    timeout: bool,
) -> (Transaction, Vec<TxOut>) {
    let desc = htlc();
    let spent = vec![explicit_out(desc.script_pubkey(), SPENT_VALUE)];
    let code = desc.script_code().expect("witness script");
    let mut tx = unsigned_spend(1);
    tx.version = version;
    tx.input[0].sequence = Sequence::from_consensus(sequence);
    let mut sigs = HashMap::new();
    for signer in signers {
        let bytes = segwit_sig(
            &tx,
            0,
            &code,
            Value::Explicit(SPENT_VALUE),
            signer,
            EcdsaSighashType::All,
        );
        let sig = elements::secp256k1_zkp::ecdsa::Signature::from_der(&bytes[..bytes.len() - 1])
            .expect("der");
        sigs.insert(signer.pk, (sig, EcdsaSighashType::All));
    }
    let satisfier = HtlcSatisfier {
        sigs,
        preimage,
        timeout,
    };
    desc.satisfy(&mut tx.input[0], &satisfier)
        .expect("the HTLC is satisfiable with this data");
    (tx, spent)
}

#[test]
fn preimage_path_spends_with_the_right_preimage() {
    let (tx, spent) = spend(0xffff_fffd, 2, &[alice()], Some(PREIMAGE), false);
    assert_eq!(
        tx.input[0].witness.script_witness.len(),
        4,
        "sha256 preimage, sig, branch selector, script"
    );
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));
}

#[test]
fn preimage_path_is_refused_with_a_wrong_preimage() {
    let (tx, spent) = spend(0xffff_fffd, 2, &[alice()], Some([0x43; 32]), false);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

#[test]
fn preimage_path_is_refused_when_signed_by_the_wrong_party() {
    // Bob knows the preimage too (it was revealed), but the path needs Alice's key: forge Bob's signature into
    // Alice's slot.
    let (mut tx, spent) = spend(0xffff_fffd, 2, &[alice()], Some(PREIMAGE), false);
    let code = htlc().script_code().expect("witness script");
    let bob_sig = segwit_sig(
        &tx,
        0,
        &code,
        Value::Explicit(SPENT_VALUE),
        &bob(),
        EcdsaSighashType::All,
    );
    let mut items = tx.input[0].witness.script_witness.to_vec();
    let sig_slot = items
        .iter()
        .position(|item| item.len() > 60 && item.len() < 74)
        .expect("a signature in the witness");
    items[sig_slot] = bob_sig;
    set_witness(&mut tx, 0, items);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

#[test]
fn cooperative_path_spends_with_both_signatures() {
    let (tx, spent) = spend(0xffff_fffd, 2, &[alice(), bob()], None, false);
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));
}

#[test]
fn cooperative_path_is_refused_with_a_flipped_signature() {
    let (mut tx, spent) = spend(0xffff_fffd, 2, &[alice(), bob()], None, false);
    let mut items = tx.input[0].witness.script_witness.to_vec();
    flip_sig_byte(&mut items[0]);
    set_witness(&mut tx, 0, items);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

#[test]
fn refund_path_spends_after_the_timeout() {
    for sequence in [TIMEOUT, TIMEOUT + 1, 0xffff] {
        let (tx, spent) = spend(sequence, 2, &[bob()], None, true);
        assert_eq!(
            verify_input_scripts(&ctx(), &tx, &spent),
            Ok(()),
            "sequence {sequence}"
        );
    }
}

#[test]
fn refund_path_is_refused_before_the_timeout() {
    for sequence in [0, 1, TIMEOUT - 1] {
        let (tx, spent) = spend(sequence, 2, &[bob()], None, true);
        let detail = expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
        assert!(!detail.is_empty(), "sequence {sequence}");
    }
}

#[test]
fn refund_path_is_refused_when_the_sequence_disables_or_mismatches_the_timelock() {
    // 0xffffffff: the disable flag is set, so BIP68 enforces nothing; CSV must fail.
    let (tx, spent) = spend(0xffff_ffff, 2, &[bob()], None, true);
    let detail = expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    assert!(detail.contains("disables"), "{detail}");
    // Disable flag with a large value in the low bits.
    let (tx, spent) = spend((1 << 31) | 1000, 2, &[bob()], None, true);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    // Time-based sequence against a block-based timeout.
    let (tx, spent) = spend((1 << 22) | 1000, 2, &[bob()], None, true);
    let detail = expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    assert!(detail.contains("units"), "{detail}");
    // Version 1 transactions have no relative lock times.
    let (tx, spent) = spend(TIMEOUT, 1, &[bob()], None, true);
    let detail = expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
    assert!(detail.contains("version"), "{detail}");
}

#[test]
fn refund_path_is_refused_when_signed_by_the_claimer() {
    let (mut tx, spent) = spend(TIMEOUT, 2, &[bob()], None, true);
    let code = htlc().script_code().expect("witness script");
    let alice_sig = segwit_sig(
        &tx,
        0,
        &code,
        Value::Explicit(SPENT_VALUE),
        &alice(),
        EcdsaSighashType::All,
    );
    let mut items = tx.input[0].witness.script_witness.to_vec();
    items[0] = alice_sig;
    set_witness(&mut tx, 0, items);
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}

#[test]
fn witness_script_must_match_the_output() {
    // A valid spend of the HTLC presented against another P2WSH output.
    let (tx, _) = spend(0xffff_fffd, 2, &[alice(), bob()], None, false);
    let other = Script::new_v0_wsh(&Script::from(vec![0x51]).wscript_hash());
    let spent = vec![explicit_out(other, SPENT_VALUE)];
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &spent), 0);
}
