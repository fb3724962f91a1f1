//! What the signer does with one request: the block-signing guard behind the protocol.

use std::path::{Path, PathBuf};

use hsm::{BlockSigningGuard, CertificateVerifier, DigestSigner, GuardError};

use super::protocol::{JournalState, SignerRequest, SignerResponse, PROTOCOL_VERSION};

/// Who sent a request, as the server's peer-uid check (`SO_PEERCRED`) established it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requester {
    /// A process running as the signer's own uid: operator tools (or a daemon deployed as the same user, where
    /// the separation relies on the deployment).
    OwnUid,
    /// The daemon running as `signer.allowed_uid`, another user: it may ask for signatures, never create the
    /// journal.
    AllowedUid,
}

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

    /// Answers one request from `from`.
    pub fn handle(&mut self, request: SignerRequest, from: Requester) -> SignerResponse {
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
            SignerRequest::CreateJournal if from != Requester::OwnUid => {
                tracing::warn!(target: "signer", journal = %self.journal_path.display(),
                    "refused CreateJournal from signer.allowed_uid (only the signer's own uid may create the journal)");
                SignerResponse::Refused(format!(
                    "only a process running as the signer's own user may create the signer journal {}; the \
                     daemon (signer.allowed_uid) may not. The journal of a new key is created by `functionary-cli \
                     ceremony member`; otherwise restore it from a backup or run `functionary-cli signer-journal-init \
                     HEIGHT` as the signer's user",
                    self.journal_path.display()
                ))
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
                    "signer journal {} is missing: nothing is signed until it is created (`functionary-cli ceremony \
                     member` creates it with a new key; otherwise restore it or run `functionary-cli \
                     signer-journal-init HEIGHT` as the signer's user)",
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
            matches!(s.handle(sign(1, 1, b"ok"), Requester::OwnUid), SignerResponse::Refused(r) if r.contains("missing"))
        );
        assert!(!dir.path().join("signer.journal").exists());
        assert_eq!(
            s.handle(SignerRequest::CreateJournal, Requester::OwnUid),
            SignerResponse::Journal(JournalState::Open { last_signed: None })
        );
        assert!(matches!(
            s.handle(sign(1, 1, b"ok"), Requester::OwnUid),
            SignerResponse::Signature(_)
        ));
        assert!(matches!(
            s.handle(sign(1, 2, b"ok"), Requester::OwnUid),
            SignerResponse::Refused(_)
        ));
        assert!(matches!(
            s.handle(sign(2, 2, b"forged"), Requester::OwnUid),
            SignerResponse::Refused(r) if r.contains("not ok")
        ));
        drop(s);
        // Reopened: the journal exists and replays.
        let mut s = service(dir.path());
        match s.handle(
            SignerRequest::Hello {
                version: PROTOCOL_VERSION,
            },
            Requester::AllowedUid,
        ) {
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
            s.handle(SignerRequest::Hello { version: 99 }, Requester::OwnUid),
            SignerResponse::ProtocolError(_)
        ));
    }

    #[test]
    fn a_journal_restored_while_the_signer_runs_is_adopted_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signer.journal");
        let mut s = service(dir.path());
        assert_eq!(s.journal_state(), JournalState::Missing);
        // An operator re-creates the journal (refusing every height up to 5) while the signer runs.
        crate::signer_service::load::create_floor_journal(&path, 5).unwrap();
        assert!(matches!(
            s.handle(sign(5, 6, b"ok"), Requester::OwnUid),
            SignerResponse::Refused(_)
        ));
        assert!(matches!(
            s.handle(sign(4, 4, b"ok"), Requester::OwnUid),
            SignerResponse::Refused(_)
        ));
        assert!(matches!(
            s.handle(sign(6, 6, b"ok"), Requester::OwnUid),
            SignerResponse::Signature(_)
        ));
    }

    #[test]
    fn the_daemons_uid_may_not_create_the_journal_only_the_signers_own_uid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signer.journal");
        let mut s = service(dir.path());
        let refused = s.handle(SignerRequest::CreateJournal, Requester::AllowedUid);
        assert!(
            matches!(&refused, SignerResponse::Refused(r) if r.contains("own user") && r.contains("signer-journal-init")),
            "{refused:?}"
        );
        assert!(
            !path.exists(),
            "a refused CreateJournal created the journal"
        );
        assert_eq!(s.journal_state(), JournalState::Missing);
        assert!(matches!(
            s.handle(sign(1, 1, b"ok"), Requester::AllowedUid),
            SignerResponse::Refused(r) if r.contains("missing")
        ));
        // The daemon may still ask for signatures once the journal exists.
        assert_eq!(
            s.handle(SignerRequest::CreateJournal, Requester::OwnUid),
            SignerResponse::Journal(JournalState::Open { last_signed: None })
        );
        assert!(matches!(
            s.handle(sign(1, 1, b"ok"), Requester::AllowedUid),
            SignerResponse::Signature(_)
        ));
    }

    /// `signer-journal-init` racing a running signer in the `Missing` state: the signer must never adopt the journal
    /// before its floor record is in it (it would then sign below the floor).
    #[test]
    fn a_signer_waiting_for_its_journal_never_adopts_it_without_its_floor() {
        for round in 0..200 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("signer.journal");
            let mut s = service(dir.path());
            let creator = {
                let path = path.clone();
                std::thread::spawn(move || {
                    crate::signer_service::load::create_floor_journal(&path, 1000).unwrap()
                })
            };
            loop {
                let answer = s.handle(sign(3, 3, b"ok"), Requester::AllowedUid);
                assert!(
                    matches!(answer, SignerResponse::Refused(_)),
                    "round {round}: signed below the floor: {answer:?}"
                );
                if matches!(s.journal_state(), JournalState::Open { .. }) {
                    break;
                }
                std::thread::yield_now();
            }
            creator.join().unwrap();
            assert!(matches!(
                s.journal_state(),
                JournalState::Open { last_signed: Some(l) } if l.height == 1000
            ));
        }
    }
}
