//! What the signer does with one request: the block-signing guard behind the protocol.

use std::path::{Path, PathBuf};

use hsm::{BlockSigningGuard, CertificateVerifier, DigestSigner, GuardError};

use super::protocol::{JournalState, SignerRequest, SignerResponse, PROTOCOL_VERSION};

/// The guard, or what is needed to open it once the journal exists.
enum State<S: DigestSigner> {
    /// No journal file yet: nothing is signed until [`SignerRequest::CreateJournal`].
    Missing {
        signer: S,
        verifier: Box<dyn CertificateVerifier>,
    },
    /// Journal open and replayed.
    Open(Box<BlockSigningGuard<S>>),
    /// Creating the journal failed; the signer was consumed. Every request is refused with this reason.
    Broken(String),
}

/// The block-signing guard served over the protocol. Requests are handled one at a time (`&mut self`).
pub struct BlockSignerService<S: DigestSigner> {
    public_key: secp256k1::PublicKey,
    journal_path: PathBuf,
    state: State<S>,
}

impl<S: DigestSigner> BlockSignerService<S> {
    /// Opens the guard over the journal at `journal_path` if that file exists (replaying it, taking its lock);
    /// if it does not exist, waits for [`SignerRequest::CreateJournal`] and signs nothing before.
    pub fn open(
        journal_path: &Path,
        signer: S,
        verifier: Box<dyn CertificateVerifier>,
    ) -> Result<Self, GuardError> {
        let public_key = signer.public_key();
        let state = if journal_path.exists() {
            State::Open(Box::new(BlockSigningGuard::open(
                journal_path,
                signer,
                verifier,
            )?))
        } else {
            State::Missing { signer, verifier }
        };
        Ok(BlockSignerService {
            public_key,
            journal_path: journal_path.to_path_buf(),
            state,
        })
    }

    /// The block-signing public key.
    pub fn public_key(&self) -> secp256k1::PublicKey {
        self.public_key
    }

    /// The journal's state.
    pub fn journal_state(&self) -> JournalState {
        match &self.state {
            State::Open(guard) => JournalState::Open {
                last_signed: guard.last_signed().map(Into::into),
            },
            State::Missing { .. } | State::Broken(_) => JournalState::Missing,
        }
    }

    /// Answers one request.
    pub fn handle(&mut self, request: SignerRequest) -> SignerResponse {
        self.adopt_journal_created_meanwhile();
        match request {
            SignerRequest::Hello { version } if version != PROTOCOL_VERSION => {
                SignerResponse::ProtocolError(format!(
                    "protocol version {version} is not supported; this signer speaks version {PROTOCOL_VERSION}"
                ))
            }
            SignerRequest::Hello { .. } => SignerResponse::Hello {
                version: PROTOCOL_VERSION,
                public_key: self.public_key.serialize().to_vec(),
                journal: self.journal_state(),
            },
            SignerRequest::PublicKey => {
                SignerResponse::PublicKey(self.public_key.serialize().to_vec())
            }
            SignerRequest::CreateJournal => self.create_journal(),
            SignerRequest::SignBlock {
                height,
                block_hash,
                certificate,
            } => self.sign_block(height, block_hash, certificate.as_deref()),
        }
    }

    fn sign_block(
        &mut self,
        height: u32,
        block_hash: [u8; 32],
        certificate: Option<&[u8]>,
    ) -> SignerResponse {
        let guard = match &mut self.state {
            State::Open(guard) => guard,
            State::Missing { .. } => {
                return SignerResponse::Refused(format!(
                    "signer journal {} is missing: nothing is signed until it is created (the daemon creates it \
                     on a member without blocks; otherwise restore it or run `functionary-cli signer-journal-init`)",
                    self.journal_path.display()
                ))
            }
            State::Broken(reason) => return SignerResponse::Refused(reason.clone()),
        };
        match guard.sign_block(height, block_hash, certificate.unwrap_or(&[])) {
            Ok(signature) => SignerResponse::Signature(signature),
            Err(e) => SignerResponse::Refused(e.to_string()),
        }
    }

    /// A journal that appeared on disk while the signer had none (restored from a backup, or re-created with
    /// `functionary-cli signer-journal-init` while the signer ran) is opened and replayed before anything else.
    fn adopt_journal_created_meanwhile(&mut self) {
        if matches!(self.state, State::Missing { .. }) && self.journal_path.exists() {
            tracing::info!(target: "signer", journal = %self.journal_path.display(),
                "a signer journal appeared on disk; opening it");
            self.open_missing_journal();
        }
    }

    fn create_journal(&mut self) -> SignerResponse {
        if matches!(self.state, State::Missing { .. }) {
            self.open_missing_journal();
            if matches!(self.state, State::Open(_)) {
                tracing::info!(target: "signer", journal = %self.journal_path.display(), "signer journal created");
            }
        }
        match &self.state {
            State::Broken(reason) => SignerResponse::Refused(reason.clone()),
            _ => SignerResponse::Journal(self.journal_state()),
        }
    }

    /// Opens (creating if needed) the journal of a signer in the `Missing` state; on failure the signer is broken
    /// (it was consumed) and refuses everything until restarted.
    fn open_missing_journal(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Broken(String::new()));
        self.state = match state {
            State::Missing { signer, verifier } => {
                match BlockSigningGuard::open(&self.journal_path, signer, verifier) {
                    Ok(guard) => State::Open(Box::new(guard)),
                    Err(e) => {
                        let reason = format!(
                            "opening signer journal {} failed: {e}; restart the signer",
                            self.journal_path.display()
                        );
                        tracing::error!(target: "signer", %reason);
                        State::Broken(reason)
                    }
                }
            }
            other => other,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct AcceptAll;
    impl CertificateVerifier for AcceptAll {
        fn verify(&self, _: u32, _: [u8; 32], certificate: &[u8]) -> Result<(), String> {
            if certificate == b"ok" {
                Ok(())
            } else {
                Err("not ok".into())
            }
        }
    }

    fn service(dir: &Path) -> BlockSignerService<hsm::SoftwareSigner> {
        let key = secp256k1::SecretKey::from_slice(&[7u8; 32]).unwrap();
        BlockSignerService::open(
            &dir.join("signer.journal"),
            hsm::SoftwareSigner::new(key),
            Box::new(AcceptAll),
        )
        .unwrap()
    }

    fn sign(height: u32, hash: u8, cert: &[u8]) -> SignerRequest {
        SignerRequest::SignBlock {
            height,
            block_hash: [hash; 32],
            certificate: Some(cert.to_vec()),
        }
    }

    #[test]
    fn missing_journal_signs_nothing_until_created_then_the_guard_decides() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = service(dir.path());
        assert_eq!(s.journal_state(), JournalState::Missing);
        assert!(
            matches!(s.handle(sign(1, 1, b"ok")), SignerResponse::Refused(r) if r.contains("missing"))
        );
        assert!(!dir.path().join("signer.journal").exists());
        assert_eq!(
            s.handle(SignerRequest::CreateJournal),
            SignerResponse::Journal(JournalState::Open { last_signed: None })
        );
        assert!(matches!(
            s.handle(sign(1, 1, b"ok")),
            SignerResponse::Signature(_)
        ));
        assert!(matches!(
            s.handle(sign(1, 2, b"ok")),
            SignerResponse::Refused(_)
        ));
        assert!(matches!(
            s.handle(sign(2, 2, b"forged")),
            SignerResponse::Refused(r) if r.contains("not ok")
        ));
        drop(s);
        // Reopened: the journal exists and replays.
        let mut s = service(dir.path());
        match s.handle(SignerRequest::Hello {
            version: PROTOCOL_VERSION,
        }) {
            SignerResponse::Hello { journal, .. } => assert_eq!(
                journal,
                JournalState::Open {
                    last_signed: Some(super::super::protocol::LastSigned {
                        height: 1,
                        block_hash: [1; 32]
                    })
                }
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.handle(SignerRequest::Hello { version: 99 }),
            SignerResponse::ProtocolError(_)
        ));
    }

    #[test]
    fn a_journal_restored_while_the_signer_runs_is_adopted_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signer.journal");
        let mut s = service(dir.path());
        assert_eq!(s.journal_state(), JournalState::Missing);
        // An operator re-creates the journal (here: one approved decision at height 5) while the signer runs.
        {
            let mut journal = hsm::SignerJournal::open(&path).unwrap();
            journal
                .append(&hsm::JournalRecord::new(
                    hsm::SignRequestRecord::Block {
                        height: 5,
                        block_hash: [5; 32],
                    },
                    hsm::Verdict::Approved,
                    "restored",
                    0,
                ))
                .unwrap();
        }
        assert!(matches!(
            s.handle(sign(5, 6, b"ok")),
            SignerResponse::Refused(_)
        ));
        assert!(matches!(
            s.handle(sign(4, 4, b"ok")),
            SignerResponse::Refused(_)
        ));
        assert!(matches!(
            s.handle(sign(6, 6, b"ok")),
            SignerResponse::Signature(_)
        ));
    }
}
