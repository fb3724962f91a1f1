//! Helpers for the input-script tests: keys, unsigned spends, Elements sighashes and signatures.
#![allow(dead_code)]

use chain::ledger::{LedgerContext, TxRejection};
use elements::confidential::{Asset, Nonce, Value};
use elements::secp256k1_zkp::{All, Keypair, Message, Secp256k1, SecretKey};
use elements::sighash::{Prevouts, ScriptPath, SighashCache};
use elements::{
    AssetId, AssetIssuance, BlockHash, EcdsaSighashType, LockTime, OutPoint, SchnorrSighashType,
    Script, Sequence, Transaction, TxIn, TxInWitness, TxOut, TxOutWitness, Txid,
};
use std::sync::LazyLock;

/// One secp context for the test process.
pub static SECP: LazyLock<Secp256k1<All>> = LazyLock::new(Secp256k1::new);

/// Value of every spent output in these tests.
pub const SPENT_VALUE: u64 = 100_000;

/// A test key pair.
#[derive(Clone, Copy)]
pub struct Key {
    pub sk: SecretKey,
    pub pk: bitcoin::PublicKey,
    pub keypair: Keypair,
}

impl Key {
    /// x-only public key (Taproot).
    pub fn xonly(&self) -> bitcoin::key::XOnlyPublicKey {
        self.keypair.x_only_public_key().0
    }
}

/// A deterministic key from a seed byte (1..=255).
pub fn key(seed: u8) -> Key {
    let sk = SecretKey::from_slice(&[seed; 32]).expect("valid secret key");
    let keypair = Keypair::from_secret_key(&SECP, &sk);
    let pk = bitcoin::PublicKey::new(sk.public_key(&SECP));
    Key { sk, pk, keypair }
}

pub fn policy_asset() -> AssetId {
    AssetId::from_byte_array([0x5a; 32])
}

/// A ledger context whose genesis hash goes into Taproot sighashes.
pub fn ctx() -> LedgerContext {
    LedgerContext {
        height: 10,
        lock_time_cutoff: 1_700_000_000,
        policy_asset: policy_asset(),
        genesis_hash: BlockHash::from_byte_array([0x11; 32]),
        parent_genesis_hash: [0x22; 32],
        fee_script: Script::new(),
        coinbase_maturity: 100,
        block_time: 1_700_000_600,
    }
}

/// An explicit output of the policy asset.
pub fn explicit_out(script_pubkey: Script, value: u64) -> TxOut {
    TxOut {
        asset: Asset::Explicit(policy_asset()),
        value: Value::Explicit(value),
        nonce: Nonce::Null,
        script_pubkey,
        witness: TxOutWitness::default(),
    }
}

/// An unsigned version-2 spend of `n_inputs` outputs (fake outpoints) paying one output and a fee.
pub fn unsigned_spend(n_inputs: usize) -> Transaction {
    let input = (0..n_inputs)
        .map(|i| TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array([i as u8 + 1; 32]), i as u32),
            is_pegin: false,
            script_sig: Script::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            asset_issuance: AssetIssuance::default(),
            witness: TxInWitness::default(),
        })
        .collect();
    let pay = SPENT_VALUE * n_inputs as u64 - 1_000;
    Transaction {
        version: 2,
        lock_time: LockTime::ZERO,
        input,
        output: vec![
            explicit_out(
                Script::new_v0_wpkh(&key(200).pk.wpubkey_hash().expect("compressed")),
                pay,
            ),
            TxOut::new_fee(1_000, policy_asset()),
        ],
    }
}

/// An ECDSA signature (DER + sighash byte) over a segwit v0 (Elements BIP143) sighash.
pub fn segwit_sig(
    tx: &Transaction,
    index: usize,
    script_code: &Script,
    value: Value,
    key: &Key,
    ty: EcdsaSighashType,
) -> Vec<u8> {
    let sighash = SighashCache::new(tx).segwitv0_sighash(index, script_code, value, ty);
    let msg = Message::from_digest_slice(sighash.as_ref()).expect("32 bytes");
    let mut sig = SECP.sign_ecdsa(&msg, &key.sk).serialize_der().to_vec();
    sig.push(ty.as_u32() as u8);
    sig
}

/// An ECDSA signature (DER + sighash byte) over a legacy sighash.
pub fn legacy_sig(
    tx: &Transaction,
    index: usize,
    script_code: &Script,
    key: &Key,
    ty: EcdsaSighashType,
) -> Vec<u8> {
    let sighash = SighashCache::new(tx).legacy_sighash(index, script_code, ty);
    let msg = Message::from_digest_slice(sighash.as_ref()).expect("32 bytes");
    let mut sig = SECP.sign_ecdsa(&msg, &key.sk).serialize_der().to_vec();
    sig.push(ty.as_u32() as u8);
    sig
}

/// A Schnorr signature over an Elements BIP341 key path sighash, made with an already tweaked key pair.
pub fn taproot_key_sig(
    tx: &Transaction,
    index: usize,
    spent: &[TxOut],
    tweaked: &Keypair,
    genesis: BlockHash,
    ty: SchnorrSighashType,
) -> Vec<u8> {
    let sighash = SighashCache::new(tx)
        .taproot_key_spend_signature_hash(index, &Prevouts::All(spent), ty, genesis)
        .expect("sighash");
    schnorr_sign(sighash.as_ref(), tweaked, ty)
}

/// A Schnorr signature over an Elements BIP341 script path sighash for `leaf` (Tapscript leaf version).
pub fn taproot_leaf_sig(
    tx: &Transaction,
    index: usize,
    spent: &[TxOut],
    leaf: &Script,
    key: &Key,
    genesis: BlockHash,
    ty: SchnorrSighashType,
) -> Vec<u8> {
    let leaf_hash = ScriptPath::with_defaults(leaf).leaf_hash();
    let sighash = SighashCache::new(tx)
        .taproot_script_spend_signature_hash(index, &Prevouts::All(spent), leaf_hash, ty, genesis)
        .expect("sighash");
    schnorr_sign(sighash.as_ref(), &key.keypair, ty)
}

fn schnorr_sign(digest: &[u8], keypair: &Keypair, ty: SchnorrSighashType) -> Vec<u8> {
    let msg = Message::from_digest_slice(digest).expect("32 bytes");
    let sig = SECP.sign_schnorr_no_aux_rand(&msg, keypair);
    let mut bytes = sig.as_ref().to_vec();
    if ty != SchnorrSighashType::Default {
        bytes.push(ty as u8);
    }
    bytes
}

/// Sets input `index`'s witness.
pub fn set_witness(tx: &mut Transaction, index: usize, items: Vec<Vec<u8>>) {
    tx.input[index].witness.script_witness = items.into();
}

/// The P2PKH script of a key (the BIP143 scriptCode of P2WPKH).
pub fn p2pkh(key: &Key) -> Script {
    Script::new_p2pkh(&key.pk.pubkey_hash())
}

/// The P2WPKH script of a key.
pub fn p2wpkh(key: &Key) -> Script {
    Script::new_v0_wpkh(&key.pk.wpubkey_hash().expect("compressed"))
}

/// Signs input `index` as a P2WPKH spend of `value` (sighash ALL).
pub fn sign_p2wpkh(tx: &mut Transaction, index: usize, key: &Key, value: Value) {
    let sig = segwit_sig(tx, index, &p2pkh(key), value, key, EcdsaSighashType::All);
    set_witness(tx, index, vec![sig, key.pk.to_bytes()]);
}

/// Flips one bit inside the DER body of a signature (keeps it parseable most of the time, never valid).
pub fn flip_sig_byte(sig: &mut [u8]) {
    let at = sig.len() - 5;
    sig[at] ^= 0x01;
}

/// Asserts a script rejection at `input` and returns its detail.
pub fn expect_script_rejection(result: Result<(), TxRejection>, input: usize) -> String {
    match result {
        Err(TxRejection::Script { input: got, detail }) => {
            assert_eq!(got, input, "rejected input index (detail: {detail})");
            detail
        }
        other => panic!("expected a script rejection of input {input}, got {other:?}"),
    }
}
