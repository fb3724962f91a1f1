//! The member's libp2p identity: ed25519 key files and conversions to ed25519-dalek keys.
//!
//! File format: the lowercase hex of the 32-byte ed25519 secret key, one line, mode 0600.

use std::io::Write;
use std::path::Path;

use libp2p::identity::Keypair;
use libp2p::PeerId;

use super::P2pError;

/// Multihash code of the identity hash, used by PeerIds that inline their public key.
const IDENTITY_MULTIHASH_CODE: u64 = 0x00;

/// Generates a new ed25519 identity and writes it to `path` (created with mode 0600; an existing file is never
/// overwritten). Returns the new keypair.
pub fn generate_identity_file(path: &Path) -> Result<Keypair, P2pError> {
    let keypair = Keypair::generate_ed25519();
    let secret = keypair
        .clone()
        .try_into_ed25519()
        .map_err(|_| P2pError::NotEd25519Keypair)?
        .secret();
    let mut line = [b'\n'; 65];
    hex::encode_to_slice(secret.as_ref(), &mut line[..64])
        .map_err(|_| P2pError::NotEd25519Keypair)?;

    let io_err = |source| P2pError::IdentityIo {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            P2pError::IdentityExists {
                path: path.to_path_buf(),
            }
        } else {
            io_err(source)
        }
    })?;
    let written = file.write_all(&line).and_then(|()| file.sync_all());
    // Overwrite the in-memory hex copy of the secret, success or not.
    line.fill(0);
    if let Err(source) = written {
        // Do not leave a truncated key behind (a retry would refuse to overwrite it).
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(io_err(source));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            // Best effort: make the new directory entry durable.
            let _ = d.sync_all();
        }
    }
    tracing::info!(target: "p2p", path = %path.display(), peer_id = %keypair.public().to_peer_id(), "generated p2p identity");
    Ok(keypair)
}

/// Loads an ed25519 identity written by [`generate_identity_file`].
pub fn load_identity_file(path: &Path) -> Result<Keypair, P2pError> {
    let format_err = |reason: &str| P2pError::IdentityFormat {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let metadata = std::fs::metadata(path).map_err(|source| P2pError::IdentityIo {
        path: path.to_path_buf(),
        source,
    })?;
    if metadata.len() > 1024 {
        return Err(format_err("file is larger than a hex ed25519 secret key"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(target: "p2p", path = %path.display(), mode = format!("{mode:o}"), "p2p identity file is readable by group or others; chmod 600 it");
        }
    }
    let mut content = std::fs::read(path).map_err(|source| P2pError::IdentityIo {
        path: path.to_path_buf(),
        source,
    })?;
    let decoded = decode_secret_line(&content);
    // Overwrite the in-memory hex copy of the secret.
    content.fill(0);
    let mut secret = decoded.map_err(format_err)?;
    // `ed25519_from_bytes` zeroes the buffer it is given.
    Keypair::ed25519_from_bytes(&mut secret)
        .map_err(|_| format_err("content is not a valid ed25519 secret key"))
}

/// Parses one line of 64 hex characters (surrounding whitespace allowed) into 32 bytes.
fn decode_secret_line(content: &[u8]) -> Result<[u8; 32], &'static str> {
    let text = std::str::from_utf8(content).map_err(|_| "content is not text")?;
    let trimmed = text.trim();
    if trimmed.len() != 64 {
        return Err("expected 64 hex characters (a 32-byte ed25519 secret key) on one line");
    }
    let mut secret = [0u8; 32];
    hex::decode_to_slice(trimmed, &mut secret).map_err(|_| "content is not valid hex")?;
    Ok(secret)
}

/// The ed25519 public key inside an ed25519 PeerId (an identity multihash of the protobuf-encoded key).
pub fn ed25519_key_of_peer(peer: &PeerId) -> Result<ed25519_dalek::VerifyingKey, P2pError> {
    let not_ed25519 = |reason: &str| P2pError::NotEd25519Peer {
        peer: *peer,
        reason: reason.to_string(),
    };
    let multihash: &libp2p::multihash::Multihash<64> = peer.as_ref();
    if multihash.code() != IDENTITY_MULTIHASH_CODE {
        return Err(not_ed25519(
            "the PeerId is a hash of the key, not the key itself",
        ));
    }
    let public = libp2p::identity::PublicKey::try_decode_protobuf(multihash.digest())
        .map_err(|_| not_ed25519("the embedded public key does not decode"))?;
    let ed = public
        .try_into_ed25519()
        .map_err(|_| not_ed25519("the embedded public key is not ed25519"))?;
    ed25519_dalek::VerifyingKey::from_bytes(&ed.to_bytes())
        .map_err(|_| not_ed25519("the embedded ed25519 key is not a valid curve point"))
}

/// The ed25519-dalek signing key of a libp2p ed25519 keypair (same secret, same public key).
pub fn dalek_signing_key(keypair: &Keypair) -> Result<ed25519_dalek::SigningKey, P2pError> {
    let secret = keypair
        .clone()
        .try_into_ed25519()
        .map_err(|_| P2pError::NotEd25519Keypair)?
        .secret();
    let bytes: [u8; 32] = secret
        .as_ref()
        .try_into()
        .map_err(|_| P2pError::NotEd25519Keypair)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&bytes))
}
