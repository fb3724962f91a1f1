//! Shared helpers for the chain integration tests.
#![allow(dead_code)]

use chain::{signing_digest, FederationParams};
use elements::{BlockExtData, BlockHeader};
use rand::rngs::StdRng;
use rand::SeedableRng;
use secp256k1::{Message, PublicKey, SecretKey, SECP256K1};

/// A test federation: its params and the member secret keys, indexed like `params.sorted_keys()`.
pub struct Federation {
    pub params: FederationParams,
    pub secrets: Vec<SecretKey>,
}

/// `n` random secret keys from a fixed seed.
pub fn random_secrets(n: usize, seed: u64) -> Vec<SecretKey> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| SecretKey::new(&mut rng)).collect()
}

/// An m-of-n federation with random keys; secrets re-ordered to match member indexes.
pub fn federation(chain_name: &str, m: usize, n: usize, seed: u64) -> Federation {
    let secrets = random_secrets(n, seed);
    let keys: Vec<PublicKey> = secrets.iter().map(|s| s.public_key(SECP256K1)).collect();
    let params = FederationParams::new(chain_name, keys, m, 1_700_000_000).expect("valid params");
    let mut ordered = Vec::with_capacity(n);
    for key in params.sorted_keys() {
        let secret = secrets
            .iter()
            .find(|s| s.public_key(SECP256K1) == *key)
            .expect("secret for key");
        ordered.push(*secret);
    }
    Federation {
        params,
        secrets: ordered,
    }
}

/// DER + 0x01 signature of the header's signing digest, low-S.
pub fn sign(secret: &SecretKey, header: &BlockHeader) -> Vec<u8> {
    let message = Message::from_digest(signing_digest(header));
    let mut signature = SECP256K1.sign_ecdsa(&message, secret);
    signature.normalize_s();
    let mut bytes = signature.serialize_der().to_vec();
    bytes.push(0x01);
    bytes
}

/// The (member_index, signature) pairs of the given members.
pub fn member_signatures(
    fed: &Federation,
    header: &BlockHeader,
    members: &[usize],
) -> Vec<(usize, Vec<u8>)> {
    members
        .iter()
        .map(|&i| (i, sign(&fed.secrets[i], header)))
        .collect()
}

/// Replaces the header's signblock witness.
pub fn set_witness(header: &mut BlockHeader, witness: Vec<Vec<u8>>) {
    match &mut header.ext {
        BlockExtData::Dynafed {
            signblock_witness, ..
        } => *signblock_witness = witness,
        BlockExtData::Proof { .. } => panic!("not dynafed"),
    }
}

/// The header's signblock witness.
pub fn witness(header: &BlockHeader) -> &Vec<Vec<u8>> {
    match &header.ext {
        BlockExtData::Dynafed {
            signblock_witness, ..
        } => signblock_witness,
        BlockExtData::Proof { .. } => panic!("not dynafed"),
    }
}

/// `["", sigs..., witness_script]`.
pub fn witness_of(params: &FederationParams, sigs: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut w = vec![Vec::new()];
    w.extend(sigs);
    w.push(params.witness_script().to_bytes());
    w
}

/// Reads a hex vector from tests/data.
pub fn data_hex(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    hex::decode(text.trim()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Turns a low-S DER signature (no sighash byte) into its high-S twin (s -> n - s), DER encoded.
pub fn high_s_der(der: &[u8]) -> Vec<u8> {
    const ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x41,
    ];
    let sig = secp256k1::ecdsa::Signature::from_der(der).expect("der");
    let compact = sig.serialize_compact();
    let mut s_neg = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(ORDER[i]) - i16::from(compact[32 + i]) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        s_neg[i] = d as u8;
    }
    let mut high = [0u8; 64];
    high[..32].copy_from_slice(&compact[..32]);
    high[32..].copy_from_slice(&s_neg);
    let high_sig = secp256k1::ecdsa::Signature::from_compact(&high).expect("compact");
    assert_ne!(high_sig, sig);
    high_sig.serialize_der().to_vec()
}
