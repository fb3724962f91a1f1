//! The commit certificate: `m` precommits for one block from one round (R10). It is what a member shows its
//! signer before the signer may sign a block, and what it relays to members that missed the precommits.

use serde::{Deserialize, Serialize};

use crate::federation::Federation;
use crate::message::VoteKind;
use crate::rules::vote_signing_bytes;

/// Version byte of [`CommitCertificate::encode`].
pub const CERTIFICATE_VERSION: u8 = 1;

/// Most precommits a certificate may carry (one per member of the largest federation we accept).
pub const MAX_CERTIFICATE_VOTES: usize = 256;

/// `m` precommits for `block_hash` in `(height, round)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// Height decided.
    pub height: u32,
    /// Round whose precommits these are.
    pub round: u32,
    /// The decided block.
    pub block_hash: elements::BlockHash,
    /// `(member, ed25519 signature over the precommit's signing bytes)`, members strictly ascending.
    pub precommits: Vec<(u16, CertificateSignature)>,
}

/// A 64-byte ed25519 signature that serde can carry (as two 32-byte halves).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateSignature(pub [u8; 32], pub [u8; 32]);

impl CertificateSignature {
    /// From the 64 signature bytes.
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&bytes[..32]);
        s.copy_from_slice(&bytes[32..]);
        CertificateSignature(r, s)
    }

    /// The 64 signature bytes.
    pub fn to_bytes(self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.0);
        out[32..].copy_from_slice(&self.1);
        out
    }
}

/// Why a certificate is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The bytes do not decode.
    #[error("commit certificate does not decode: {0}")]
    Decode(String),
    /// The certificate is for another height or block than the request.
    #[error("commit certificate is for height {cert_height} block {cert_hash}, not height {height} block {hash}")]
    WrongSubject {
        /// Height asked for.
        height: u32,
        /// Block asked for.
        hash: elements::BlockHash,
        /// Height in the certificate.
        cert_height: u32,
        /// Block in the certificate.
        cert_hash: elements::BlockHash,
    },
    /// Fewer than `m` precommits.
    #[error("commit certificate has {got} precommits, {needed} needed")]
    TooFew {
        /// Precommits carried.
        got: usize,
        /// Threshold m.
        needed: usize,
    },
    /// Members not strictly ascending (a duplicate member, or unordered).
    #[error("commit certificate lists member {member} out of order or twice")]
    Unordered {
        /// The offending member.
        member: u16,
    },
    /// A member index out of range.
    #[error("commit certificate names member {member}, but the federation has {members} members")]
    UnknownMember {
        /// The index.
        member: u16,
        /// n.
        members: usize,
    },
    /// A precommit signature that does not verify.
    #[error("commit certificate precommit of member {member} does not verify")]
    BadSignature {
        /// The member.
        member: u16,
    },
}

impl CommitCertificate {
    /// Checks that the certificate carries `m` valid precommits from distinct members for its block.
    pub fn verify(&self, federation: &Federation) -> Result<(), CertificateError> {
        let needed = federation.threshold();
        if self.precommits.len() < needed {
            return Err(CertificateError::TooFew {
                got: self.precommits.len(),
                needed,
            });
        }
        if self.precommits.len() > MAX_CERTIFICATE_VOTES {
            return Err(CertificateError::TooFew {
                got: self.precommits.len(),
                needed,
            });
        }
        let genesis = federation.params.genesis_hash();
        let bytes = vote_signing_bytes(
            &genesis,
            VoteKind::Precommit,
            self.height,
            self.round,
            Some(&self.block_hash),
        );
        let mut previous: Option<u16> = None;
        for (member, signature) in &self.precommits {
            if previous.is_some_and(|p| p >= *member) {
                return Err(CertificateError::Unordered { member: *member });
            }
            previous = Some(*member);
            let Some(key) = federation.p2p_key(usize::from(*member)) else {
                return Err(CertificateError::UnknownMember {
                    member: *member,
                    members: federation.member_count(),
                });
            };
            let signature = ed25519_dalek::Signature::from_bytes(&signature.to_bytes());
            if key.verify_strict(&bytes, &signature).is_err() {
                return Err(CertificateError::BadSignature { member: *member });
            }
        }
        Ok(())
    }

    /// Verifies the certificate and that it is about `(height, block_hash)`.
    pub fn verify_for(
        &self,
        federation: &Federation,
        height: u32,
        block_hash: &elements::BlockHash,
    ) -> Result<(), CertificateError> {
        if self.height != height || self.block_hash != *block_hash {
            return Err(CertificateError::WrongSubject {
                height,
                hash: *block_hash,
                cert_height: self.height,
                cert_hash: self.block_hash,
            });
        }
        self.verify(federation)
    }

    /// Bytes handed to the signer: a version byte, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![CERTIFICATE_VERSION];
        // Serialising plain integers, hashes and fixed arrays into a Vec cannot fail.
        if let Ok(body) = postcard::to_allocvec(self) {
            out.extend_from_slice(&body);
        }
        out
    }

    /// Parses [`CommitCertificate::encode`] output; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertificateError> {
        let Some((&version, body)) = bytes.split_first() else {
            return Err(CertificateError::Decode("empty".into()));
        };
        if version != CERTIFICATE_VERSION {
            return Err(CertificateError::Decode(format!(
                "unsupported version {version}"
            )));
        }
        let (certificate, rest): (CommitCertificate, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| CertificateError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertificateError::Decode(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        if certificate.precommits.len() > MAX_CERTIFICATE_VOTES {
            return Err(CertificateError::Decode("too many precommits".into()));
        }
        Ok(certificate)
    }
}
