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
//! The hash is SHA-256 of that byte string, rendered as lowercase hex.

use sha2::{Digest, Sha256};

use super::federation::FederationConfig;

const DOMAIN_TAG: &[u8] = b"functionary/federation-config/v1";

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
    for member in members {
        hasher.update(member.block_pubkey.serialize());
        put_bytes(&mut hasher, member.name.as_bytes());
        put_bytes(&mut hasher, &member.peer_id.to_bytes());
        put_bytes(&mut hasher, &member.address.to_vec());
    }
    hex::encode(hasher.finalize())
}
