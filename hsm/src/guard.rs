//! `BlockSigningGuard`: policy → journal append + fdatasync → signer → verify.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::sighash::EcdsaSighashType;

use crate::verify::verify_digest_signature;
use crate::{
    BlockSigningPolicy, DigestSigner, HsmError, JournalError, JournalRecord, Refusal, SignedBlock,
    SignerJournal,
};

/// Why the guard did not return a signature.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The policy refused (double-sign attempt or height regression). Nothing was written or signed.
    #[error("{0}")]
    Refused(Refusal),
    /// The journal could not be opened, replayed or appended to. Nothing was signed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The signer failed, or returned a signature that does not verify.
    #[error(transparent)]
    Hsm(#[from] HsmError),
}

/// Guards a [`DigestSigner`] with the [`BlockSigningPolicy`] and a durable [`SignerJournal`].
///
/// `sign_block` checks the policy, appends the decision to the journal and syncs it, and only then asks the signer;
/// the signature is verified again (low-S, against the public key) before it is returned. A crash after the journal
/// write and before the signature leaves the decision recorded: after a restart the same hash at that height may be
/// signed (idempotent), any other hash is refused.
pub struct BlockSigningGuard<S: DigestSigner> {
    policy: BlockSigningPolicy,
    journal: SignerJournal,
    signer: S,
    public_key: secp256k1::PublicKey,
}

impl<S: DigestSigner> BlockSigningGuard<S> {
    /// Opens (creating if missing) the journal at `journal_path`, replays it into the policy and wraps `signer`.
    /// Fails on a corrupt journal, or one whose records break the policy (never starts from a blank state silently).
    pub fn open(journal_path: &Path, signer: S) -> Result<Self, GuardError> {
        let mut policy = BlockSigningPolicy::new(None);
        let journal = SignerJournal::open_with(journal_path, |offset, record| {
            policy
                .check(record.height, record.block_hash)
                .map_err(|refusal| JournalError::Inconsistent {
                    path: journal_path.to_path_buf(),
                    offset,
                    refusal,
                })?;
            policy.record(record.height, record.block_hash);
            Ok(())
        })?;
        let public_key = signer.public_key();
        tracing::info!(target: "hsm", journal = %journal_path.display(), public_key = %public_key,
            last_height = policy.last().map(|b| b.height), "block signing guard ready");
        Ok(BlockSigningGuard {
            policy,
            journal,
            signer,
            public_key,
        })
    }

    /// Signs `block_hash` (the 32-byte signing digest, signed as is) for `height` if the policy allows it.
    ///
    /// Returns the signature as DER with the SIGHASH_ALL byte (0x01) appended: the form Elements expects in the
    /// dynafed block witness.
    pub fn sign_block(&mut self, height: u32, block_hash: [u8; 32]) -> Result<Vec<u8>, GuardError> {
        if let Err(refusal) = self.policy.check(height, block_hash) {
            tracing::warn!(target: "hsm", height, block_hash = %hex::encode(block_hash), %refusal,
                "block signing refused");
            return Err(GuardError::Refused(refusal));
        }
        let already_recorded = self.policy.last() == Some(SignedBlock { height, block_hash });
        if !already_recorded {
            let record = JournalRecord {
                height,
                block_hash,
                unix_ms: unix_ms_now(),
            };
            self.journal.append(&record)?;
            self.policy.record(height, block_hash);
        }
        let sig = self.signer.sign_digest(&block_hash)?;
        if !verify_digest_signature(&self.public_key, &block_hash, &sig) {
            tracing::error!(target: "hsm", height, block_hash = %hex::encode(block_hash),
                "signer returned a signature that does not verify against its public key");
            return Err(GuardError::Hsm(HsmError::InvalidSignature { attempts: 1 }));
        }
        tracing::info!(target: "hsm", height, block_hash = %hex::encode(block_hash), resign = already_recorded,
            "block signed");
        let mut out = sig.serialize_der().to_vec();
        out.push(EcdsaSighashType::All.to_u32() as u8);
        Ok(out)
    }

    /// The last signing decision (replayed from the journal, then updated by `sign_block`).
    pub fn last_signed(&self) -> Option<SignedBlock> {
        self.policy.last()
    }

    /// The signer's public key.
    pub fn public_key(&self) -> secp256k1::PublicKey {
        self.public_key
    }
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
