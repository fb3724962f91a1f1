//! The canonical encoding and hash of a [`FederationConfig`].
//!
//! Encoding (all integers little-endian; "bytes" means a u32 length followed by the bytes):
//!
//! 1. the domain tag as bytes: `functionary/federation-config/v1`
//! 2. `chain_name` as bytes (UTF-8)
//! 3. `threshold` as u64
//! 4. `block_interval` as u64 seconds then u32 sub-second nanoseconds
//! 5. `genesis_time` as u32
//! 6. the member count as u32, then for each member **sorted by its 33-byte compressed block public key**:
//!    the public key (33 bytes, no length), `name` as bytes, the PeerId's multihash bytes as bytes, and the
//!    address's binary multiaddr encoding as bytes (addresses written as `IP:port` are converted to multiaddrs
//!    before hashing, so `127.0.0.1:7101` and `/ip4/127.0.0.1/tcp/7101` hash the same).
//!
//! Extensions, appended in this order and only when present (so a config without them hashes exactly as it did
//! before they existed; the encoding stays unambiguous because every extension starts with its own tag):
//!
//! 7. `round_timeout` when it differs from the default (`round_timeout_override`): the tag
//!    `functionary/federation-config/round-timeout/v1` as bytes, then u64 seconds and u32 sub-second nanoseconds;
//! 8. `[peg_wallet]`: the tag `functionary/federation-config/peg-wallet/v1` as bytes, then each member's 33-byte
//!    peg public key in the member order of step 6, then the emergency key count as u32 and the 33-byte emergency
//!    keys **sorted** (they are a set), then `emergency_threshold` as u64 and `csv_timelock` as u32.
//! 9. `[initial_coins]`: the tag `functionary/federation-config/initial-coins/v1` as bytes, then `amount` as u64
//!    and the script as bytes.
//!
//! The hash is SHA-256 of that byte string, rendered as lowercase hex.

use sha2::{Digest, Sha256};

use super::federation::FederationConfig;

const DOMAIN_TAG: &[u8] = b"functionary/federation-config/v1";
const ROUND_TIMEOUT_TAG: &[u8] = b"functionary/federation-config/round-timeout/v1";
const PEG_WALLET_TAG: &[u8] = b"functionary/federation-config/peg-wallet/v1";
const INITIAL_COINS_TAG: &[u8] = b"functionary/federation-config/initial-coins/v1";

fn put_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    // Config values are tiny (names <= 64 bytes, addresses and PeerIds < 100 bytes); saturate defensively.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    hasher.update(len.to_le_bytes());
    hasher.update(bytes);
}

/// Computes [`FederationConfig::config_hash`].
pub(crate) fn config_hash(config: &FederationConfig) -> String {
    let mut hasher = Sha256::new();
    put_bytes(&mut hasher, DOMAIN_TAG);
    put_bytes(&mut hasher, config.chain_name.as_bytes());
    hasher.update((config.threshold as u64).to_le_bytes());
    hasher.update(config.block_interval.as_secs().to_le_bytes());
    hasher.update(config.block_interval.subsec_nanos().to_le_bytes());
    hasher.update(config.genesis_time.to_le_bytes());

    let mut members: Vec<_> = config.members.iter().collect();
    members.sort_by_key(|m| m.block_pubkey.serialize());
    let count = u32::try_from(members.len()).unwrap_or(u32::MAX);
    hasher.update(count.to_le_bytes());
    for member in &members {
        hasher.update(member.block_pubkey.serialize());
        put_bytes(&mut hasher, member.name.as_bytes());
        put_bytes(&mut hasher, &member.peer_id.to_bytes());
        put_bytes(&mut hasher, &member.address.to_vec());
    }

    if let Some(timeout) = config.round_timeout_override {
        put_bytes(&mut hasher, ROUND_TIMEOUT_TAG);
        hasher.update(timeout.as_secs().to_le_bytes());
        hasher.update(timeout.subsec_nanos().to_le_bytes());
    }
    if let Some(peg) = &config.peg_wallet {
        put_bytes(&mut hasher, PEG_WALLET_TAG);
        for member in &members {
            // Validation guarantees a peg key for every member when the section is present; a missing one
            // (only possible in a hand-built value) hashes as 33 zero bytes, which no valid key serialises to.
            let key = member
                .peg_pubkey
                .map(|k| k.serialize())
                .unwrap_or([0u8; 33]);
            hasher.update(key);
        }
        let mut emergency: Vec<[u8; 33]> =
            peg.emergency_keys.iter().map(|k| k.serialize()).collect();
        emergency.sort_unstable();
        let count = u32::try_from(emergency.len()).unwrap_or(u32::MAX);
        hasher.update(count.to_le_bytes());
        for key in &emergency {
            hasher.update(key);
        }
        hasher.update((peg.emergency_threshold as u64).to_le_bytes());
        hasher.update(peg.csv_timelock.to_le_bytes());
    }
    if let Some(coins) = &config.initial_coins {
        put_bytes(&mut hasher, INITIAL_COINS_TAG);
        hasher.update(coins.amount.to_le_bytes());
        put_bytes(&mut hasher, &coins.script_pubkey);
    }
    hex::encode(hasher.finalize())
}
