//! Keys and federation parameters of a simulated federation (software keys, deterministic from the member
//! count so that a seed reproduces exactly).

use std::sync::Arc;

use blocksigner::Federation;
use secp256k1::SECP256K1;

/// Genesis time (seconds) of simulated chains.
pub const GENESIS_TIME: u32 = 1_700_000_000;

/// A simulated federation: parameters and every member's secrets, by member index (sorted key order).
pub struct SimFederation {
    /// What every member's state machine is given.
    pub federation: Arc<Federation>,
    /// Block-signing secrets by member index.
    pub block_secrets: Vec<secp256k1::SecretKey>,
    /// p2p (ed25519) secrets by member index.
    pub p2p_secrets: Vec<ed25519_dalek::SigningKey>,
}

fn block_secret(i: usize) -> secp256k1::SecretKey {
    let mut bytes = [0u8; 32];
    bytes[0] = 0x21;
    bytes[30] = (i >> 8) as u8;
    bytes[31] = (i & 0xff) as u8 + 1;
    // 0x21 followed by small numbers is far below the curve order: always a valid secret.
    secp256k1::SecretKey::from_slice(&bytes)
        .unwrap_or_else(|_| secp256k1::SecretKey::from_slice(&[1u8; 32]).expect("constant secret"))
}

impl SimFederation {
    /// `n` members, threshold `m`, the given interval and base round timeout.
    pub fn new(
        n: usize,
        m: usize,
        interval_ms: u64,
        round_timeout_ms: u64,
    ) -> anyhow::Result<Self> {
        let secrets: Vec<secp256k1::SecretKey> = (0..n).map(block_secret).collect();
        let keys: Vec<secp256k1::PublicKey> =
            secrets.iter().map(|sk| sk.public_key(SECP256K1)).collect();
        let params = chain::FederationParams::new("simulation", keys, m, GENESIS_TIME)?;
        let block_secrets: Vec<secp256k1::SecretKey> = params
            .sorted_keys()
            .iter()
            .filter_map(|key| {
                secrets
                    .iter()
                    .find(|sk| sk.public_key(SECP256K1) == *key)
                    .copied()
            })
            .collect();
        let p2p_secrets: Vec<ed25519_dalek::SigningKey> = (0..n)
            .map(|member| {
                let mut seed = [0x5au8; 32];
                seed[0] = (member >> 8) as u8;
                seed[1] = (member & 0xff) as u8;
                ed25519_dalek::SigningKey::from_bytes(&seed)
            })
            .collect();
        let federation = Arc::new(Federation {
            params,
            p2p_keys: p2p_secrets.iter().map(|k| k.verifying_key()).collect(),
            interval_ms,
            round_timeout_ms,
        });
        Ok(SimFederation {
            federation,
            block_secrets,
            p2p_secrets,
        })
    }

    /// The chain parameters.
    pub fn params(&self) -> &chain::FederationParams {
        &self.federation.params
    }

    /// Member `member`'s block signature on `header` (DER, low-S, + 0x01), as an HSM would return it.
    pub fn sign_block(&self, member: usize, header: &elements::BlockHeader) -> Vec<u8> {
        self.sign_digest(member, &header.block_hash())
    }

    /// Member `member`'s block signature on the block with hash `hash` (the signing digest is the block hash).
    pub fn sign_digest(&self, member: usize, hash: &elements::BlockHash) -> Vec<u8> {
        let message = secp256k1::Message::from_digest(hash.to_byte_array());
        let mut signature = SECP256K1.sign_ecdsa(&message, &self.block_secrets[member]);
        signature.normalize_s();
        let mut bytes = signature.serialize_der().to_vec();
        bytes.push(0x01);
        bytes
    }
}
