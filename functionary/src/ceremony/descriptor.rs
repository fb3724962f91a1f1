//! The member descriptor: a member's public keys, PeerId and address, with a proof of possession by each key.
//!
//! File format (JSON, `version` 1):
//!
//! ```json
//! {
//!   "version": 1,
//!   "member": {
//!     "name": "alice",
//!     "block_pubkey": "02…",         // hex, compressed secp256k1 (block signing, in the HSM)
//!     "peg_pubkey": "03…",           // hex, compressed secp256k1 (peg wallet, in the HSM)
//!     "peer_id": "12D3KooW…",        // ed25519 libp2p PeerId
//!     "p2p_pubkey": "…",             // hex, the 32-byte ed25519 key inside the PeerId
//!     "address": "/ip4/10.0.0.1/tcp/7101"
//!   },
//!   "proofs": { "block_key": "…", "peg_key": "…", "p2p_key": "…" }
//! }
//! ```
//!
//! # Exactly what is signed
//!
//! With `lp(x)` = the length of `x` as a u32 little-endian followed by the bytes of `x`, the **canonical body** is
//!
//! ```text
//! body = lp("functionary/member-descriptor/v1") || lp(name as UTF-8)
//!     || block_pubkey (33 bytes, compressed) || peg_pubkey (33 bytes, compressed)
//!     || lp(PeerId bytes (its multihash)) || p2p_pubkey (32 bytes) || lp(address as binary multiaddr)
//! ```
//!
//! and the digest signed by the key of purpose `P` (`"block-signing"`, `"peg-wallet"` or `"p2p"`) is
//!
//! ```text
//! digest(P) = SHA-256( lp("functionary/member-descriptor/proof/v1") || lp(P) || SHA-256(body) )
//! ```
//!
//! `proofs.block_key` and `proofs.peg_key` are ECDSA signatures over `digest(P)` used as the message digest
//! as is (`secp256k1::Message::from_digest`), low-S, 64-byte compact `r || s` in hex, made inside the HSM.
//! `proofs.p2p_key` is the ed25519 (RFC 8032) signature of the 32 bytes `digest("p2p")`, 64 bytes in hex.
//! The purpose tag keeps one key's proof from standing in for another's, and the proof tag keeps the digests apart
//! from anything else these keys sign (block header hashes, consensus messages).

use std::path::Path;

use ed25519_dalek::Signer as _;
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use secp256k1::ecdsa::Signature;
use secp256k1::{Message, PublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::files::{display_name, read, sha256_hex};
use super::CeremonyError;
use crate::config::{parse_ed25519_peer_id, parse_multiaddr, parse_secp256k1_pubkey, MemberConfig};

/// Version of the descriptor file format written by this code.
pub const DESCRIPTOR_VERSION: u32 = 1;
/// Domain tag at the start of the canonical body.
pub const BODY_TAG: &[u8] = b"functionary/member-descriptor/v1";
/// Domain tag of the proof digests.
pub const PROOF_TAG: &[u8] = b"functionary/member-descriptor/proof/v1";

/// Which key a proof of possession comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofKind {
    /// The block-signing key (secp256k1, HSM).
    BlockKey,
    /// The peg-wallet key (secp256k1, HSM).
    PegKey,
    /// The libp2p identity key (ed25519).
    P2pKey,
}

impl ProofKind {
    /// The purpose string mixed into the digest.
    pub fn purpose(self) -> &'static str {
        match self {
            ProofKind::BlockKey => "block-signing",
            ProofKind::PegKey => "peg-wallet",
            ProofKind::P2pKey => "p2p",
        }
    }

    /// The JSON field of the proof in `proofs`.
    pub fn field(self) -> &'static str {
        match self {
            ProofKind::BlockKey => "block_key",
            ProofKind::PegKey => "peg_key",
            ProofKind::P2pKey => "p2p_key",
        }
    }
}

/// What a member declares about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescriptorBody {
    /// Member name (`[A-Za-z0-9_-]{1,32}`).
    pub name: String,
    /// Block-signing public key.
    pub block_pubkey: PublicKey,
    /// Peg-wallet public key.
    pub peg_pubkey: PublicKey,
    /// libp2p PeerId (ed25519).
    pub peer_id: PeerId,
    /// The ed25519 public key inside `peer_id`.
    pub p2p_pubkey: [u8; 32],
    /// TCP address where the member listens.
    pub address: Multiaddr,
}

fn put_lp(out: &mut Vec<u8>, bytes: &[u8]) {
    // Every field is small (names <= 32 bytes, PeerIds and addresses < 100 bytes); saturate defensively.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

impl DescriptorBody {
    /// The canonical body bytes (see the module documentation).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        put_lp(&mut out, BODY_TAG);
        put_lp(&mut out, self.name.as_bytes());
        out.extend_from_slice(&self.block_pubkey.serialize());
        out.extend_from_slice(&self.peg_pubkey.serialize());
        put_lp(&mut out, &self.peer_id.to_bytes());
        out.extend_from_slice(&self.p2p_pubkey);
        put_lp(&mut out, &self.address.to_vec());
        out
    }

    /// The digest the key of `kind` signs (see the module documentation).
    pub fn proof_digest(&self, kind: ProofKind) -> [u8; 32] {
        let body_hash = Sha256::digest(self.canonical_bytes());
        let mut pre = Vec::with_capacity(96);
        put_lp(&mut pre, PROOF_TAG);
        put_lp(&mut pre, kind.purpose().as_bytes());
        pre.extend_from_slice(&body_hash);
        Sha256::digest(&pre).into()
    }

    /// Checks that a federation config entry says exactly what this body says; the message names the first
    /// field that differs.
    pub fn check_matches(&self, member: &MemberConfig) -> Result<(), String> {
        if member.name != self.name {
            return Err(format!(
                "config name `{}`, descriptor `{}`",
                member.name, self.name
            ));
        }
        if member.block_pubkey != self.block_pubkey {
            return Err(format!(
                "config block_pubkey {}, descriptor {}",
                member.block_pubkey, self.block_pubkey
            ));
        }
        if member.peg_pubkey != Some(self.peg_pubkey) {
            return Err(format!(
                "config peg_pubkey {}, descriptor {}",
                member
                    .peg_pubkey
                    .map(|k| k.to_string())
                    .unwrap_or_else(|| "(none)".into()),
                self.peg_pubkey
            ));
        }
        if member.peer_id != self.peer_id {
            return Err(format!(
                "config peer_id {}, descriptor {}",
                member.peer_id, self.peer_id
            ));
        }
        if member.address != self.address {
            return Err(format!(
                "config address {}, descriptor {}",
                member.address, self.address
            ));
        }
        Ok(())
    }
}

/// The three proofs of possession.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proofs {
    /// ECDSA by the block-signing key over `digest("block-signing")`.
    pub block_key: Signature,
    /// ECDSA by the peg-wallet key over `digest("peg-wallet")`.
    pub peg_key: Signature,
    /// ed25519 by the p2p key over `digest("p2p")`.
    pub p2p_key: [u8; 64],
}

/// A member descriptor: body plus proofs. Building one ([`MemberDescriptor::sign`]) or reading one
/// ([`MemberDescriptor::from_json`]) does not check the proofs; [`MemberDescriptor::verify_proofs`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescriptor {
    /// What the member declares.
    pub body: DescriptorBody,
    /// Its proofs of possession.
    pub proofs: Proofs,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DescriptorFile {
    version: u32,
    member: BodyFile,
    #[serde(default)]
    proofs: ProofsFile,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyFile {
    name: String,
    block_pubkey: String,
    peg_pubkey: String,
    peer_id: String,
    p2p_pubkey: String,
    address: String,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProofsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    block_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peg_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p2p_key: Option<String>,
}

impl MemberDescriptor {
    /// Signs `body` with the three keys. The secp256k1 signers return verified low-S signatures (for the HSM:
    /// [`hsm::Pkcs11Signer`]); their public keys must be the body's keys, and `p2p` must be the body's identity.
    pub fn sign(
        body: DescriptorBody,
        block_signer: &mut dyn hsm::DigestSigner,
        peg_signer: &mut dyn hsm::DigestSigner,
        p2p: &Keypair,
    ) -> Result<Self, CeremonyError> {
        if block_signer.public_key() != body.block_pubkey
            || peg_signer.public_key() != body.peg_pubkey
            || p2p.public().to_peer_id() != body.peer_id
        {
            return Err(CeremonyError::invalid(
                "descriptor",
                "the signing keys are not the keys the descriptor declares",
            ));
        }
        let block_key = block_signer.sign_digest(&body.proof_digest(ProofKind::BlockKey))?;
        let peg_key = peg_signer.sign_digest(&body.proof_digest(ProofKind::PegKey))?;
        let signing = crate::p2p::dalek_signing_key(p2p)?;
        let p2p_key = signing
            .sign(&body.proof_digest(ProofKind::P2pKey))
            .to_bytes();
        Ok(MemberDescriptor {
            body,
            proofs: Proofs {
                block_key,
                peg_key,
                p2p_key,
            },
        })
    }

    /// Checks every proof of possession and that `p2p_pubkey` is the key inside `peer_id`. `source_name` names
    /// the descriptor in errors.
    pub fn verify_proofs(&self, source_name: &str) -> Result<(), CeremonyError> {
        let invalid = |proof: ProofKind| CeremonyError::ProofInvalid {
            source_name: source_name.to_string(),
            member: self.body.name.clone(),
            proof: proof.field(),
        };
        let in_peer_id = crate::p2p::ed25519_key_of_peer(&self.body.peer_id).map_err(|e| {
            CeremonyError::DescriptorFormat {
                source_name: source_name.to_string(),
                message: format!("member.peer_id: {e}"),
            }
        })?;
        if in_peer_id.to_bytes() != self.body.p2p_pubkey {
            return Err(CeremonyError::DescriptorFormat {
                source_name: source_name.to_string(),
                message: "member.p2p_pubkey is not the ed25519 key inside member.peer_id".into(),
            });
        }
        for (kind, key, sig) in [
            (
                ProofKind::BlockKey,
                &self.body.block_pubkey,
                &self.proofs.block_key,
            ),
            (
                ProofKind::PegKey,
                &self.body.peg_pubkey,
                &self.proofs.peg_key,
            ),
        ] {
            let message = Message::from_digest(self.body.proof_digest(kind));
            secp256k1::SECP256K1
                .verify_ecdsa(&message, sig, key)
                .map_err(|_| invalid(kind))?;
        }
        let signature = ed25519_dalek::Signature::from_bytes(&self.proofs.p2p_key);
        in_peer_id
            .verify_strict(&self.body.proof_digest(ProofKind::P2pKey), &signature)
            .map_err(|_| invalid(ProofKind::P2pKey))
    }

    /// The descriptor as pretty JSON (with a trailing newline).
    pub fn to_json(&self) -> String {
        let file = DescriptorFile {
            version: DESCRIPTOR_VERSION,
            member: BodyFile {
                name: self.body.name.clone(),
                block_pubkey: self.body.block_pubkey.to_string(),
                peg_pubkey: self.body.peg_pubkey.to_string(),
                peer_id: self.body.peer_id.to_string(),
                p2p_pubkey: hex::encode(self.body.p2p_pubkey),
                address: self.body.address.to_string(),
            },
            proofs: ProofsFile {
                block_key: Some(hex::encode(self.proofs.block_key.serialize_compact())),
                peg_key: Some(hex::encode(self.proofs.peg_key.serialize_compact())),
                p2p_key: Some(hex::encode(self.proofs.p2p_key)),
            },
        };
        // Serialising plain strings and integers cannot fail.
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses a descriptor; every field is checked for form (not the proofs: see [`Self::verify_proofs`]).
    pub fn from_json(text: &str, source_name: &str) -> Result<Self, CeremonyError> {
        let format = |message: String| CeremonyError::DescriptorFormat {
            source_name: source_name.to_string(),
            message,
        };
        let file: DescriptorFile = serde_json::from_str(text)
            .map_err(|e| format(format!("not a member descriptor: {e}")))?;
        if file.version != DESCRIPTOR_VERSION {
            return Err(format(format!(
                "version {} is not supported (this program reads version {DESCRIPTOR_VERSION})",
                file.version
            )));
        }
        let m = file.member;
        crate::config::check_member_name(&m.name)
            .map_err(|e| format(format!("member.name: {e}")))?;
        let block_pubkey = parse_secp256k1_pubkey(&m.block_pubkey)
            .map_err(|e| format(format!("member.block_pubkey: {e}")))?;
        let peg_pubkey = parse_secp256k1_pubkey(&m.peg_pubkey)
            .map_err(|e| format(format!("member.peg_pubkey: {e}")))?;
        let peer_id = parse_ed25519_peer_id(&m.peer_id)
            .map_err(|e| format(format!("member.peer_id: {e}")))?;
        let p2p_pubkey: [u8; 32] =
            decode_fixed(&m.p2p_pubkey).map_err(|e| format(format!("member.p2p_pubkey: {e}")))?;
        let address =
            parse_multiaddr(&m.address).map_err(|e| format(format!("member.address: {e}")))?;

        let missing = |proof: ProofKind| CeremonyError::ProofMissing {
            source_name: source_name.to_string(),
            proof: proof.field(),
        };
        let ecdsa = |kind: ProofKind, text: Option<String>| {
            let text = text.ok_or_else(|| missing(kind))?;
            let bytes: [u8; 64] =
                decode_fixed(&text).map_err(|e| format(format!("proofs.{}: {e}", kind.field())))?;
            Signature::from_compact(&bytes)
                .map_err(|_| format(format!("proofs.{}: not an ECDSA signature", kind.field())))
        };
        let block_key = ecdsa(ProofKind::BlockKey, file.proofs.block_key)?;
        let peg_key = ecdsa(ProofKind::PegKey, file.proofs.peg_key)?;
        let p2p_text = file
            .proofs
            .p2p_key
            .ok_or_else(|| missing(ProofKind::P2pKey))?;
        let p2p_key: [u8; 64] =
            decode_fixed(&p2p_text).map_err(|e| format(format!("proofs.p2p_key: {e}")))?;

        Ok(MemberDescriptor {
            body: DescriptorBody {
                name: m.name,
                block_pubkey,
                peg_pubkey,
                peer_id,
                p2p_pubkey,
                address,
            },
            proofs: Proofs {
                block_key,
                peg_key,
                p2p_key,
            },
        })
    }
}

fn decode_fixed<const N: usize>(text: &str) -> Result<[u8; N], String> {
    let bytes = hex::decode(text.trim()).map_err(|_| format!("`{text}` is not hex"))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| format!("expected {N} bytes, got {}", bytes.len()))
}

/// A descriptor read from a file, proofs checked.
#[derive(Clone, Debug)]
pub struct LoadedDescriptor {
    /// The file it came from.
    pub path: std::path::PathBuf,
    /// SHA-256 (hex) of the file's bytes, as recorded in the transcript.
    pub file_hash: String,
    /// The descriptor.
    pub descriptor: MemberDescriptor,
}

impl LoadedDescriptor {
    /// Reads a descriptor file and checks every proof of possession.
    pub fn load(path: &Path) -> Result<Self, CeremonyError> {
        let bytes = read(path)?;
        let source_name = display_name(path);
        let text = std::str::from_utf8(&bytes).map_err(|_| CeremonyError::DescriptorFormat {
            source_name: source_name.clone(),
            message: "not UTF-8 text".into(),
        })?;
        let descriptor = MemberDescriptor::from_json(text, &source_name)?;
        descriptor.verify_proofs(&source_name)?;
        Ok(LoadedDescriptor {
            path: path.to_path_buf(),
            file_hash: sha256_hex(&bytes),
            descriptor,
        })
    }

    /// Reads several descriptor files (each checked) and refuses duplicates between them.
    pub fn load_all(paths: &[std::path::PathBuf]) -> Result<Vec<Self>, CeremonyError> {
        let loaded = paths
            .iter()
            .map(|p| Self::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        check_distinct(&loaded)?;
        Ok(loaded)
    }
}

/// Refuses two descriptors that share a member name, any secp256k1 key (block or peg, across purposes), a
/// PeerId or an address.
pub fn check_distinct(descriptors: &[LoadedDescriptor]) -> Result<(), CeremonyError> {
    use std::collections::HashMap;
    let mut names: HashMap<String, &Path> = HashMap::new();
    let mut keys: HashMap<[u8; 33], &Path> = HashMap::new();
    let mut peers: HashMap<PeerId, &Path> = HashMap::new();
    let mut addresses: HashMap<Multiaddr, &Path> = HashMap::new();
    let dup =
        |what: &'static str, value: String, first: &Path, second: &Path| CeremonyError::Duplicate {
            what,
            value,
            first: display_name(first),
            second: display_name(second),
        };
    for d in descriptors {
        let body = &d.descriptor.body;
        let here = d.path.as_path();
        if let Some(first) = names.insert(body.name.clone(), here) {
            return Err(dup("member name", body.name.clone(), first, here));
        }
        if body.block_pubkey == body.peg_pubkey {
            return Err(dup(
                "secp256k1 key (block and peg key are the same)",
                body.block_pubkey.to_string(),
                here,
                here,
            ));
        }
        for key in [body.block_pubkey, body.peg_pubkey] {
            if let Some(first) = keys.insert(key.serialize(), here) {
                return Err(dup("secp256k1 key", key.to_string(), first, here));
            }
        }
        if let Some(first) = peers.insert(body.peer_id, here) {
            return Err(dup("PeerId", body.peer_id.to_string(), first, here));
        }
        if let Some(first) = addresses.insert(body.address.clone(), here) {
            return Err(dup("address", body.address.to_string(), first, here));
        }
    }
    Ok(())
}
