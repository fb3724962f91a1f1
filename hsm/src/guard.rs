//! `BlockSigningGuard`: policy + certificate → journal append + fdatasync → signer → verify.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::sighash::EcdsaSighashType;

use crate::journal::{SignRequestRecord, Verdict};
use crate::verify::verify_digest_signature;
use crate::{
    BlockSigningPolicy, DigestSigner, HsmError, JournalError, JournalRecord, PegoutRefusal,
    Refusal, SignedBlock, SignerJournal,
};

/// Judges the consensus certificate that must accompany every new block-signing decision (the consensus crate
/// implements it).
pub trait CertificateVerifier: Send {
    /// `Ok(())` when `certificate` proves that the federation agreed on `block_hash` at `height`; otherwise why not.
    fn verify(&self, height: u32, block_hash: [u8; 32], certificate: &[u8]) -> Result<(), String>;
}

/// Why a guard did not return a signature.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The block policy refused (double-sign attempt, height regression, certificate). The refusal is journaled;
    /// nothing was signed.
    #[error("{0}")]
    Refused(Refusal),
    /// The peg-out policy refused; the refusal is journaled, nothing was signed.
    #[error("{0}")]
    PegoutRefused(PegoutRefusal),
    /// The journal could not be opened, replayed or appended to. Nothing was signed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The signer failed, or returned a signature that does not verify.
    #[error(transparent)]
    Hsm(#[from] HsmError),
}

/// Guards a [`DigestSigner`] holding the block-signing key with the [`BlockSigningPolicy`], a
/// [`CertificateVerifier`] and a durable [`SignerJournal`].
///
/// `sign_block`:
/// 1. the policy refuses a lower height or another hash at the last signed height;
/// 2. a NEW (height, hash) decision needs the verifier to accept the certificate; re-signing exactly the last
///    approved (height, hash) does not (it was approved with a valid certificate before: this is the crash between
///    journal and signature);
/// 3. an approval is appended to the journal and `fdatasync`ed before the signer is asked, so a crash at any later
///    point leaves the decision on disk; a refusal is journaled through [`SignerJournal::append_refusal`]: at most
///    [`SignerJournal::MAX_REFUSALS_PER_SECOND`] per second one by one, the others counted in a summary record, so
///    a client flooding the guard with refused requests cannot fill the disk;
/// 4. the signature is verified again (low-S, against the public key) before it is returned.
///
/// An approval (or re-sign) costs exactly one journal `fdatasync`; refusals cost at most
/// `MAX_REFUSALS_PER_SECOND + 1` per second in all.
pub struct BlockSigningGuard<S: DigestSigner> {
    policy: BlockSigningPolicy,
    journal: SignerJournal,
    signer: S,
    public_key: secp256k1::PublicKey,
    verifier: Box<dyn CertificateVerifier>,
}

impl<S: DigestSigner> BlockSigningGuard<S> {
    /// Opens (creating if missing) the journal at `journal_path`, replays its approvals into the policy and wraps
    /// `signer`. Fails on a corrupt or old-format journal, on records the policy refuses, or on non-block records
    /// (never starts from a blank state silently).
    pub fn open(
        journal_path: &Path,
        signer: S,
        verifier: Box<dyn CertificateVerifier>,
    ) -> Result<Self, GuardError> {
        let mut policy = BlockSigningPolicy::new(None);
        let journal = SignerJournal::open_with(journal_path, |offset, record| {
            let SignRequestRecord::Block { height, block_hash } = record.request else {
                return Err(JournalError::WrongKind {
                    path: journal_path.to_path_buf(),
                    offset,
                    expected: "block",
                    found: "bitcoin transaction",
                });
            };
            if !record.verdict.signs() {
                return Ok(());
            }
            policy
                .check(height, block_hash)
                .map_err(|refusal| JournalError::Inconsistent {
                    path: journal_path.to_path_buf(),
                    offset,
                    refusal,
                })?;
            policy.record(height, block_hash);
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
            verifier,
        })
    }

    /// Signs `block_hash` (the 32-byte signing digest, signed as is) for `height` if the policy allows it and, for a
    /// new decision, `certificate` convinces the verifier.
    ///
    /// Returns the signature as DER with the SIGHASH_ALL byte (0x01) appended: the form Elements expects in the
    /// dynafed block witness.
    pub fn sign_block(
        &mut self,
        height: u32,
        block_hash: [u8; 32],
        certificate: &[u8],
    ) -> Result<Vec<u8>, GuardError> {
        let request = SignRequestRecord::Block { height, block_hash };
        if let Err(refusal) = self.policy.check(height, block_hash) {
            return Err(self.refuse(request, refusal));
        }
        let resign = self.policy.last() == Some(SignedBlock { height, block_hash });
        let reason = if resign {
            "re-sign of the last approved decision (its certificate was verified then)"
        } else {
            if let Err(reason) = self.verifier.verify(height, block_hash, certificate) {
                let refusal = Refusal::Certificate {
                    height,
                    block_hash,
                    reason,
                };
                return Err(self.refuse(request, refusal));
            }
            "certificate verified"
        };
        self.journal.append(&JournalRecord::new(
            request,
            Verdict::Approved,
            reason,
            unix_ms_now(),
        ))?;
        self.policy.record(height, block_hash);
        let sig = self.signer.sign_digest(&block_hash)?;
        if !verify_digest_signature(&self.public_key, &block_hash, &sig) {
            tracing::error!(target: "hsm", height, block_hash = %hex::encode(block_hash),
                "signer returned a signature that does not verify against its public key");
            return Err(GuardError::Hsm(HsmError::InvalidSignature { attempts: 1 }));
        }
        tracing::info!(target: "hsm", height, block_hash = %hex::encode(block_hash), resign, "block signed");
        let mut out = sig.serialize_der().to_vec();
        out.push(EcdsaSighashType::All.to_u32() as u8);
        Ok(out)
    }

    /// Journals a refusal (rate-limited, see [`SignerJournal::append_refusal`]; a failure to journal is logged, the
    /// refusal is returned either way).
    fn refuse(&mut self, request: SignRequestRecord, refusal: Refusal) -> GuardError {
        if self.journal.pending_suppressed_refusals() == 0 {
            tracing::warn!(target: "hsm", %refusal, "block signing refused");
        } else {
            tracing::debug!(target: "hsm", %refusal, "block signing refused (rate-limited in the journal)");
        }
        let record = JournalRecord::new(
            request,
            Verdict::Refused,
            &refusal.to_string(),
            unix_ms_now(),
        );
        if let Err(e) = self.journal.append_refusal(&record) {
            tracing::error!(target: "hsm", error = %e, "could not journal a block signing refusal");
        }
        GuardError::Refused(refusal)
    }

    /// The last approved signing decision (replayed from the journal, then updated by `sign_block`).
    pub fn last_signed(&self) -> Option<SignedBlock> {
        self.policy.last()
    }

    /// The signer's public key.
    pub fn public_key(&self) -> secp256k1::PublicKey {
        self.public_key
    }

    /// Writes the summary of refusals that were counted but not journaled one by one, if any.
    pub fn flush_refusal_summary(&mut self) -> Result<(), JournalError> {
        self.journal.flush_refusal_summary()
    }

    /// How many records (approvals, refusals and refusal summaries) the journal holds.
    pub fn journal_records(&self) -> u64 {
        self.journal.record_count()
    }
}

/// Milliseconds since the Unix epoch from the system clock (0 before 1970).
pub(crate) fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
