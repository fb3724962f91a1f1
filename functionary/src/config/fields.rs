//! Parsers for the typed fields of the configuration files. Each returns a message without the key; callers wrap
//! it into [`super::ConfigError::Invalid`] with the key.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// Multihash code of the identity hash, used by PeerIds that inline their public key (ed25519).
const IDENTITY_MULTIHASH_CODE: u64 = 0x00;

/// Parses a TCP peer address: a multiaddr `/ip4/<a>/tcp/<port>` or `/ip6/<a>/tcp/<port>`, or a socket address
/// `127.0.0.1:7101` / `[::1]:7101`, which is converted to the multiaddr form. Other transports, DNS names and
/// trailing components (such as `/p2p/...`) are refused: the federation only speaks TCP to fixed addresses.
pub fn parse_multiaddr(s: &str) -> Result<Multiaddr, String> {
    let text = s.trim();
    let addr = if text.starts_with('/') {
        Multiaddr::from_str(text).map_err(|e| format!("`{s}` is not a valid multiaddr: {e}"))?
    } else {
        let socket = SocketAddr::from_str(text).map_err(|_| {
            format!("`{s}` is neither a multiaddr (/ip4/1.2.3.4/tcp/7101) nor an IP:port address")
        })?;
        let ip = match socket.ip() {
            IpAddr::V4(v4) => Protocol::Ip4(v4),
            IpAddr::V6(v6) => Protocol::Ip6(v6),
        };
        Multiaddr::empty()
            .with(ip)
            .with(Protocol::Tcp(socket.port()))
    };
    let parts: Vec<Protocol<'_>> = addr.iter().collect();
    match parts.as_slice() {
        [Protocol::Ip4(_) | Protocol::Ip6(_), Protocol::Tcp(_)] => Ok(addr),
        _ => Err(format!(
            "`{s}` is not a TCP address of the form /ip4/<address>/tcp/<port> or /ip6/<address>/tcp/<port>"
        )),
    }
}

/// The TCP port of an address accepted by [`parse_multiaddr`].
pub(crate) fn tcp_port(addr: &Multiaddr) -> Option<u16> {
    addr.iter().find_map(|p| match p {
        Protocol::Tcp(port) => Some(port),
        _ => None,
    })
}

/// Checks a member name: 1 to 32 characters from `[A-Za-z0-9_-]`.
pub fn check_member_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > 32 || !valid_chars {
        return Err(format!(
            "`{name}` is not a valid member name (1 to 32 characters from A-Z a-z 0-9 _ -)"
        ));
    }
    Ok(())
}

/// Parses a hex-encoded compressed (33-byte) secp256k1 public key (a block-signing key).
pub(crate) fn parse_block_pubkey(s: &str) -> Result<secp256k1::PublicKey, String> {
    parse_secp256k1_pubkey(s)
}

/// Parses a hex-encoded compressed (33-byte) secp256k1 public key. The message names the problem, not the key.
pub fn parse_secp256k1_pubkey(s: &str) -> Result<secp256k1::PublicKey, String> {
    let bytes = hex::decode(s.trim()).map_err(|_| format!("`{s}` is not hex"))?;
    if bytes.len() != 33 {
        return Err(format!(
            "not a valid compressed secp256k1 public key (expected 33 bytes, got {})",
            bytes.len()
        ));
    }
    secp256k1::PublicKey::from_slice(&bytes)
        .map_err(|_| "not a valid compressed secp256k1 public key".to_string())
}

/// Parses a libp2p PeerId and requires that it is an ed25519 PeerId: an identity multihash (code 0x00) that
/// inlines a protobuf-encoded ed25519 public key.
pub fn parse_ed25519_peer_id(s: &str) -> Result<PeerId, String> {
    let peer_id =
        PeerId::from_str(s.trim()).map_err(|e| format!("`{s}` is not a valid PeerId: {e}"))?;
    let multihash = peer_id.as_ref();
    if multihash.code() != IDENTITY_MULTIHASH_CODE {
        return Err(format!(
            "`{s}` is not an ed25519 PeerId (multihash code {:#x}, expected the identity code 0x00)",
            multihash.code()
        ));
    }
    let public_key =
        libp2p::identity::PublicKey::try_decode_protobuf(multihash.digest()).map_err(|_| {
            format!("`{s}` does not inline a supported public key; an ed25519 PeerId is required")
        })?;
    public_key
        .try_into_ed25519()
        .map_err(|_| format!("`{s}` is not an ed25519 PeerId"))?;
    Ok(peer_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_become_multiaddrs() {
        assert_eq!(
            parse_multiaddr("127.0.0.1:7101").map(|a| a.to_string()),
            Ok("/ip4/127.0.0.1/tcp/7101".to_string())
        );
        assert_eq!(
            parse_multiaddr("[::1]:7101").map(|a| a.to_string()),
            Ok("/ip6/::1/tcp/7101".to_string())
        );
        assert!(parse_multiaddr("/ip4/127.0.0.1/udp/7101").is_err());
        assert!(parse_multiaddr("localhost:7101").is_err());
        assert!(parse_multiaddr("/ip4/1.2.3.4").is_err());
    }

    #[test]
    fn member_names() {
        assert!(check_member_name("alice-1_B").is_ok());
        assert!(check_member_name("").is_err());
        assert!(check_member_name("a b").is_err());
        assert!(check_member_name(&"a".repeat(33)).is_err());
    }
}
