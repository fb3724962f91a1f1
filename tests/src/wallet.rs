//! A minimal test wallet: deterministic keys, P2WPKH scripts, and explicit policy-asset spends signed with
//! Elements' segwit v0 sighash (rust-elements). Enough to move coins on a test federation through RPC.

use elements::confidential::{Asset, Nonce, Value};
use elements::secp256k1_zkp::{All, Message, PublicKey, Secp256k1, SecretKey};
use elements::sighash::SighashCache;
use elements::{
    AssetId, EcdsaSighashType, LockTime, OutPoint, Script, Sequence, Transaction, TxIn,
    TxInWitness, TxOut, TxOutWitness,
};

static SECP256K1: std::sync::LazyLock<Secp256k1<All>> = std::sync::LazyLock::new(Secp256k1::new);

/// A key pair.
#[derive(Clone, Copy, Debug)]
pub struct WalletKey {
    /// Secret key.
    pub secret: SecretKey,
    /// Compressed public key.
    pub public: bitcoin::PublicKey,
}

impl WalletKey {
    /// A deterministic key from a label (SHA-256 of it as the secret).
    pub fn from_label(label: &str) -> Self {
        use bitcoin::hashes::{sha256, Hash};
        let digest = sha256::Hash::hash(label.as_bytes()).to_byte_array();
        let secret = SecretKey::from_slice(&digest).expect("a SHA-256 digest is a valid key");
        WalletKey {
            secret,
            public: bitcoin::PublicKey::new(PublicKey::from_secret_key(&SECP256K1, &secret)),
        }
    }

    /// Its P2WPKH scriptPubKey.
    pub fn p2wpkh(&self) -> Script {
        Script::new_v0_wpkh(&self.public.wpubkey_hash().expect("compressed key"))
    }
}

/// An explicit policy-asset output.
pub fn explicit_output(asset: AssetId, value: u64, script: Script) -> TxOut {
    TxOut {
        asset: Asset::Explicit(asset),
        value: Value::Explicit(value),
        nonce: Nonce::Null,
        script_pubkey: script,
        witness: TxOutWitness::default(),
    }
}

/// A transaction spending `inputs` (outpoint, explicit value, owner key) to `outputs` (script, value) plus an
/// explicit fee output of `fee`, all in `asset`, signed (P2WPKH, SIGHASH_ALL). The caller makes the amounts balance.
pub fn spend(
    asset: AssetId,
    inputs: &[(OutPoint, u64, WalletKey)],
    outputs: &[(Script, u64)],
    fee: u64,
) -> Transaction {
    let mut tx = Transaction {
        version: 2,
        lock_time: LockTime::ZERO,
        input: inputs
            .iter()
            .map(|(outpoint, _, _)| TxIn {
                previous_output: *outpoint,
                is_pegin: false,
                script_sig: Script::new(),
                sequence: Sequence::MAX,
                asset_issuance: Default::default(),
                witness: TxInWitness::default(),
            })
            .collect(),
        output: outputs
            .iter()
            .map(|(script, value)| explicit_output(asset, *value, script.clone()))
            .chain(std::iter::once(explicit_output(asset, fee, Script::new())))
            .collect(),
    };
    for (index, (_, value, key)) in inputs.iter().enumerate() {
        let script_code = Script::new_p2pkh(&key.public.pubkey_hash());
        let sighash = SighashCache::new(&tx).segwitv0_sighash(
            index,
            &script_code,
            Value::Explicit(*value),
            EcdsaSighashType::All,
        );
        let message = Message::from_digest_slice(sighash.as_ref()).expect("32-byte sighash");
        let mut signature = SECP256K1
            .sign_ecdsa(&message, &key.secret)
            .serialize_der()
            .to_vec();
        signature.push(EcdsaSighashType::All.as_u32() as u8);
        tx.input[index].witness.script_witness = vec![signature, key.public.to_bytes()].into();
    }
    tx
}
