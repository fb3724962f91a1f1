//! Fixtures for the ledger tests: keys, a context, coins in a map view, explicit and blinded P2WPKH spends signed
//! with rust-elements' sighash, and blocks.
#![allow(dead_code)]

use chain::ledger::{LedgerContext, Utxo};
use elements::confidential::{Asset, AssetBlindingFactor, Nonce, Value, ValueBlindingFactor};
use elements::secp256k1_zkp::{All, Message, PublicKey, Secp256k1, SecretKey};
use elements::sighash::SighashCache;
use elements::{
    AssetId, AssetIssuance, BlockExtData, BlockHash, BlockHeader, EcdsaSighashType, LockTime,
    OutPoint, Script, Sequence, Transaction, TxIn, TxInWitness, TxMerkleNode, TxOut, TxOutSecrets,
    TxOutWitness, Txid,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::sync::LazyLock;

/// One secp context for the test process.
pub static SECP: LazyLock<Secp256k1<All>> = LazyLock::new(Secp256k1::new);

/// Height of the block the tested transactions go into.
pub const HEIGHT: u32 = 1_000;
/// Lock time cutoff (median time past) of that block.
pub const CUTOFF: u32 = 1_700_000_000;
/// Header time of that block.
pub const BLOCK_TIME: u32 = 1_700_000_300;

/// A test key: secret and compressed public key.
#[derive(Clone, Copy)]
pub struct Key {
    pub sk: SecretKey,
    pub pk: bitcoin::PublicKey,
}

/// A deterministic key from a seed byte (1..=255).
pub fn key(seed: u8) -> Key {
    let sk = SecretKey::from_slice(&[seed; 32]).expect("valid secret key");
    Key {
        sk,
        pk: bitcoin::PublicKey::new(sk.public_key(&SECP)),
    }
}

/// The P2WPKH script of a key.
pub fn p2wpkh(key: &Key) -> Script {
    Script::new_v0_wpkh(&key.pk.wpubkey_hash().expect("compressed"))
}

/// The policy asset of the test chain.
pub fn policy_asset() -> AssetId {
    AssetId::from_byte_array([0x5a; 32])
}

/// Another asset.
pub fn other_asset() -> AssetId {
    AssetId::from_byte_array([0x77; 32])
}

/// The federation's fee script.
pub fn fee_script() -> Script {
    p2wpkh(&key(250))
}

/// Bitcoin mainnet genesis, internal byte order.
pub fn bitcoin_genesis() -> [u8; 32] {
    let mut genesis = [0u8; 32];
    genesis.copy_from_slice(
        &hex::decode("6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000").unwrap(),
    );
    genesis
}

/// The ledger context of the tested block.
pub fn ctx() -> LedgerContext {
    LedgerContext {
        height: HEIGHT,
        lock_time_cutoff: CUTOFF,
        policy_asset: policy_asset(),
        genesis_hash: BlockHash::from_byte_array([0x11; 32]),
        parent_genesis_hash: bitcoin_genesis(),
        fee_script: fee_script(),
        coinbase_maturity: 100,
        block_time: BLOCK_TIME,
    }
}

/// An explicit output.
pub fn explicit_out(asset: AssetId, script_pubkey: Script, value: u64) -> TxOut {
    TxOut {
        asset: Asset::Explicit(asset),
        value: Value::Explicit(value),
        nonce: Nonce::Null,
        script_pubkey,
        witness: TxOutWitness::default(),
    }
}

/// An explicit output of the policy asset.
pub fn lbtc_out(script_pubkey: Script, value: u64) -> TxOut {
    explicit_out(policy_asset(), script_pubkey, value)
}

/// A fee output of the policy asset.
pub fn fee_out(value: u64) -> TxOut {
    TxOut::new_fee(value, policy_asset())
}

/// A coin in the view: output `vout` of a fake transaction `seed`, created at `height`.
pub fn coin(seed: u8, vout: u32, txout: TxOut, height: u32, is_coinbase: bool) -> (OutPoint, Utxo) {
    (
        OutPoint::new(Txid::from_byte_array([seed; 32]), vout),
        Utxo {
            txout,
            height,
            time: CUTOFF - 100_000,
            is_coinbase,
        },
    )
}

/// A map view of coins.
pub fn view(coins: &[(OutPoint, Utxo)]) -> HashMap<OutPoint, Utxo> {
    coins.iter().cloned().collect()
}

/// An input spending `outpoint`, BIP68 disabled, no lock time.
pub fn input(outpoint: OutPoint) -> TxIn {
    TxIn {
        previous_output: outpoint,
        is_pegin: false,
        script_sig: Script::new(),
        sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
        asset_issuance: AssetIssuance::default(),
        witness: TxInWitness::default(),
    }
}

/// An unsigned version-2 transaction.
pub fn tx(inputs: Vec<TxIn>, outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: 2,
        lock_time: LockTime::ZERO,
        input: inputs,
        output: outputs,
    }
}

/// Signs input `index` as a P2WPKH spend (sighash ALL) of an output of `value` (explicit or committed).
pub fn sign_p2wpkh(tx: &mut Transaction, index: usize, key: &Key, value: Value) {
    let script_code = Script::new_p2pkh(&key.pk.pubkey_hash());
    let sighash =
        SighashCache::new(&*tx).segwitv0_sighash(index, &script_code, value, EcdsaSighashType::All);
    let msg = Message::from_digest_slice(sighash.as_ref()).expect("32 bytes");
    let mut sig = SECP.sign_ecdsa(&msg, &key.sk).serialize_der().to_vec();
    sig.push(EcdsaSighashType::All.as_u32() as u8);
    tx.input[index].witness.script_witness = vec![sig, key.pk.to_bytes()].into();
}

/// Signs every input with `keys[i]`, taking the spent values from `spent`.
pub fn sign_all(tx: &mut Transaction, keys: &[Key], spent: &[TxOut]) {
    for (index, (key, out)) in keys.iter().zip(spent).enumerate() {
        sign_p2wpkh(tx, index, key, out.value);
    }
}

/// A deterministic rng for blinding.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A receiver's blinding public key (what goes into the output nonce before `Transaction::blind`).
pub fn blinding_pk(seed: u8) -> PublicKey {
    SecretKey::from_slice(&[seed; 32])
        .expect("valid")
        .public_key(&SECP)
}

/// An explicit output marked for blinding to `blinding_pk`.
pub fn to_blind(asset: AssetId, script_pubkey: Script, value: u64, blinder: PublicKey) -> TxOut {
    TxOut {
        asset: Asset::Explicit(asset),
        value: Value::Explicit(value),
        nonce: Nonce::Confidential(blinder),
        script_pubkey,
        witness: TxOutWitness::default(),
    }
}

/// Secrets of an explicit input (zero blinding factors).
pub fn explicit_secrets(asset: AssetId, value: u64) -> TxOutSecrets {
    TxOutSecrets::new(
        asset,
        AssetBlindingFactor::zero(),
        value,
        ValueBlindingFactor::zero(),
    )
}

/// Blinds `tx`'s outputs that carry a blinding key (the fee and unmarked outputs stay explicit); `secrets` lists
/// the inputs and issuance pseudo-inputs in Elements' order. Returns each blinded output's (index, secrets).
pub fn blind(
    tx: &mut Transaction,
    secrets: &[TxOutSecrets],
    seed: u64,
) -> Vec<(usize, TxOutSecrets)> {
    let explicit: Vec<(AssetId, u64)> = tx
        .output
        .iter()
        .map(|o| (o.asset.explicit().unwrap(), o.value.explicit().unwrap()))
        .collect();
    let blinds = tx
        .blind(&mut rng(seed), &SECP, secrets, false)
        .expect("blinding succeeds");
    blinds
        .into_iter()
        .map(|(location, (abf, vbf, _))| {
            let index = location.input_index;
            let (asset, value) = explicit[index];
            (index, TxOutSecrets::new(asset, abf, value, vbf))
        })
        .collect()
}

/// A coinbase of `height`: scriptSig `<height> OP_0`, one `OP_RETURN` output of 0 policy asset.
pub fn coinbase(height: u32) -> Transaction {
    let script_sig = elements::script::Builder::new()
        .push_int(i64::from(height))
        .push_int(0)
        .into_script();
    Transaction {
        version: 2,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            is_pegin: false,
            script_sig,
            sequence: Sequence::MAX,
            asset_issuance: AssetIssuance::default(),
            witness: TxInWitness::default(),
        }],
        output: vec![lbtc_out(Script::new_op_return(&[]), 0)],
    }
}

/// A block at [`HEIGHT`] with the given transactions (the header's merkle root is not checked by the ledger).
pub fn block(txdata: Vec<Transaction>) -> elements::Block {
    elements::Block {
        header: BlockHeader {
            version: 0x2000_0000,
            prev_blockhash: BlockHash::from_byte_array([0x33; 32]),
            merkle_root: TxMerkleNode::from_byte_array([0; 32]),
            time: BLOCK_TIME,
            height: HEIGHT,
            ext: BlockExtData::Dynafed {
                current: elements::dynafed::Params::Null,
                proposed: elements::dynafed::Params::Null,
                signblock_witness: Vec::new(),
            },
        },
        txdata,
    }
}

/// Asserts `result` is an error with Elements reason `reason`.
#[track_caller]
pub fn assert_reason<T: std::fmt::Debug>(
    result: Result<T, chain::ledger::TxRejection>,
    reason: &str,
) -> chain::ledger::TxRejection {
    match result {
        Ok(v) => panic!("expected rejection {reason}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.reason(), reason, "wrong rejection: {e}");
            e
        }
    }
}
