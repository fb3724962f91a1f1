//! `TxSigningGuard`: peg-out policy → journal append + fdatasync → peg-wallet key signs each input → verify.

use std::fmt;
use std::path::Path;

use bitcoin::sighash::EcdsaSighashType;

use crate::guard::unix_ms_now;
use crate::journal::{SignRequestRecord, Verdict};
use crate::verify::verify_digest_signature;
use crate::{
    DigestSigner, GuardError, HsmError, JournalError, JournalRecord, PegoutLimits, PegoutPolicy,
    PegoutRequest, SignerJournal,
};
use bitcoin::hashes::Hash;

/// An explicit operator decision to lift the peg-out rate limit for one request. It lifts nothing else.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorOverride {
    reason: String,
}

impl OperatorOverride {
    /// An override with the operator's reason; `None` when the reason is blank (an override must say why).
    pub fn new(reason: &str) -> Option<Self> {
        let reason = reason.trim();
        (!reason.is_empty()).then(|| OperatorOverride {
            reason: reason.to_string(),
        })
    }

    /// The operator's reason.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Debug for OperatorOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OperatorOverride({:?})", self.reason)
    }
}

/// A clock in milliseconds since the Unix epoch (the system clock in production; a fixed one in tests).
pub type Clock = Box<dyn Fn() -> u64 + Send>;

/// Guards the peg-wallet key: signs a peg-out transaction's inputs only when [`PegoutPolicy`] approves it.
///
/// Each decision (approved, refused, override) is appended to the journal and `fdatasync`ed; approvals before the
/// signer is asked. The journal is replayed at open: the ids of paid peg-outs (each paid at most once, ever), the
/// peg-out value in the rate-limit window and the approved transactions (which may be signed again unchanged)
/// survive restarts.
pub struct TxSigningGuard<S: DigestSigner> {
    policy: PegoutPolicy,
    journal: SignerJournal,
    signer: S,
    public_key: secp256k1::PublicKey,
    clock: Clock,
}

impl<S: DigestSigner> TxSigningGuard<S> {
    /// Opens (creating if missing) the journal at `journal_path` with the system clock.
    pub fn open(journal_path: &Path, signer: S, limits: PegoutLimits) -> Result<Self, GuardError> {
        Self::open_with_clock(journal_path, signer, limits, Box::new(unix_ms_now))
    }

    /// Like [`open`](Self::open) with another clock (tests, simulations).
    pub fn open_with_clock(
        journal_path: &Path,
        signer: S,
        limits: PegoutLimits,
        clock: Clock,
    ) -> Result<Self, GuardError> {
        let mut policy = PegoutPolicy::new(limits);
        let journal = SignerJournal::open_with(journal_path, |offset, record| {
            let SignRequestRecord::BitcoinTx {
                txid,
                sighashes,
                pegout_ids,
                pegout_sat,
            } = &record.request
            else {
                return Err(JournalError::WrongKind {
                    path: journal_path.to_path_buf(),
                    offset,
                    expected: "bitcoin transaction",
                    found: "block",
                });
            };
            if record.verdict.signs() {
                policy.record(*txid, sighashes, pegout_ids, *pegout_sat, record.unix_ms);
            }
            Ok(())
        })?;
        let public_key = signer.public_key();
        tracing::info!(target: "hsm", journal = %journal_path.display(), public_key = %public_key,
            "peg-out signing guard ready");
        Ok(TxSigningGuard {
            policy,
            journal,
            signer,
            public_key,
            clock,
        })
    }

    /// Signs every input of `req.tx` (BIP143 P2WSH, SIGHASH_ALL) if the policy allows it. Returns one signature per
    /// input, in input order, each DER + 0x01, low-S and verified against the peg-wallet key.
    ///
    /// `operator_override` lifts the rate limit only; when it is used the decision is journaled as `override` with
    /// the operator's reason and logged at warn.
    pub fn sign_pegout(
        &mut self,
        req: &PegoutRequest,
        operator_override: Option<&OperatorOverride>,
    ) -> Result<Vec<Vec<u8>>, GuardError> {
        let now = (self.clock)();
        let txid = req.tx.compute_txid();
        let approval = match self.policy.assess(
            req,
            &self.public_key,
            now,
            operator_override.is_some(),
        ) {
            Ok(a) => a,
            Err(refusal) => {
                tracing::warn!(target: "hsm", %txid, kind = refusal.kind(), %refusal, "peg-out signing refused");
                let record = JournalRecord::new(
                    SignRequestRecord::BitcoinTx {
                        txid: txid.to_byte_array(),
                        sighashes: Vec::new(),
                        pegout_ids: Vec::new(),
                        pegout_sat: 0,
                    },
                    Verdict::Refused,
                    &refusal.to_string(),
                    now,
                );
                // Refusals are rate-limited in the journal (a summary counts the rest): a flood of refused
                // requests cannot fill the disk.
                if let Err(e) = self.journal.append_refusal(&record) {
                    tracing::error!(target: "hsm", error = %e, "could not journal a peg-out refusal");
                }
                return Err(GuardError::PegoutRefused(refusal));
            }
        };
        let (verdict, reason) = match (approval.overridden, operator_override) {
            (true, Some(o)) => {
                tracing::warn!(target: "hsm", %txid, pegout_sat = approval.pegout_total.to_sat(),
                    operator_reason = o.reason(), "OPERATOR OVERRIDE: peg-out rate limit lifted");
                (
                    Verdict::Override,
                    format!("rate limit lifted by operator: {}", o.reason()),
                )
            }
            _ if approval.resign => (
                Verdict::Approved,
                "re-sign of an approved transaction".to_string(),
            ),
            _ => (
                Verdict::Approved,
                format!(
                    "{} peg-outs, {} sat, fee {} sat",
                    approval.pegout_ids.len(),
                    approval.pegout_total.to_sat(),
                    approval.fee.to_sat()
                ),
            ),
        };
        let record = JournalRecord::new(
            SignRequestRecord::BitcoinTx {
                txid: approval.txid,
                sighashes: approval.sighashes.clone(),
                pegout_ids: approval.pegout_ids.clone(),
                pegout_sat: approval.pegout_total.to_sat(),
            },
            verdict,
            &reason,
            now,
        );
        self.journal.append(&record)?;
        self.policy.record(
            approval.txid,
            &approval.sighashes,
            &approval.pegout_ids,
            approval.pegout_total.to_sat(),
            now,
        );
        let mut out = Vec::with_capacity(approval.sighashes.len());
        for (index, digest) in approval.sighashes.iter().enumerate() {
            let sig = self.signer.sign_digest(digest)?;
            if !verify_digest_signature(&self.public_key, digest, &sig) {
                tracing::error!(target: "hsm", %txid, input = index,
                    "signer returned a signature that does not verify against the peg-wallet key");
                return Err(GuardError::Hsm(HsmError::InvalidSignature { attempts: 1 }));
            }
            let mut der = sig.serialize_der().to_vec();
            der.push(EcdsaSighashType::All.to_u32() as u8);
            out.push(der);
        }
        tracing::info!(target: "hsm", %txid, inputs = out.len(), ?verdict, "peg-out transaction signed");
        Ok(out)
    }

    /// Whether peg-out `id` was paid by an approved transaction.
    pub fn is_paid(&self, id: &[u8; 32]) -> bool {
        self.policy.is_paid(id)
    }

    /// Peg-out value signed within the current rate-limit window.
    pub fn used_in_window(&self) -> bitcoin::Amount {
        self.policy.used_in_window((self.clock)())
    }

    /// The peg-wallet public key.
    pub fn public_key(&self) -> secp256k1::PublicKey {
        self.public_key
    }

    /// The last journaled decision (after replay and later calls).
    pub fn last_decision(&self) -> Option<&JournalRecord> {
        self.journal.last()
    }

    /// How many records the journal holds.
    pub fn journal_records(&self) -> u64 {
        self.journal.record_count()
    }
}
