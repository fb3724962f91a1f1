//! The signer runs on its own OS thread: it owns the PKCS#11 session (not `Sync`) and the guard, and signing blocks
//! the thread for the HSM call and the journal fsync, never the event loop.
//!
//! The guard itself decides whether a request may be signed: it verifies the consensus commit certificate through
//! the verifier it was opened with ([`super::certificate::ConsensusCertificateVerifier`]), so nothing in this
//! process reaches the HSM key without the policy.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// A request to sign a block hash at a height.
#[derive(Debug)]
pub struct SignRequest {
    pub height: u32,
    pub block_hash: elements::BlockHash,
    /// The encoded commit certificate; `None` only to re-sign the hash the journal already approved.
    pub certificate: Option<Vec<u8>>,
}

/// The guard's answer.
#[derive(Debug)]
pub struct SignOutcome {
    pub height: u32,
    pub block_hash: elements::BlockHash,
    /// DER + 0x01, or why not.
    pub result: Result<Vec<u8>, String>,
    /// Time spent in the guard (journal fsync + HSM + verification).
    pub elapsed: Duration,
}

/// Handle to the signer thread.
pub struct SignerThread {
    requests: std::sync::mpsc::Sender<SignRequest>,
}

impl SignerThread {
    /// Moves the guard onto a new thread; outcomes are sent to `outcomes`.
    pub fn spawn<S: hsm::DigestSigner + 'static>(
        mut guard: hsm::BlockSigningGuard<S>,
        outcomes: mpsc::Sender<SignOutcome>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<SignRequest>();
        std::thread::Builder::new().name("signer".into()).spawn(move || {
            while let Ok(req) = rx.recv() {
                let started = Instant::now();
                let certificate = req.certificate.as_deref().unwrap_or(&[]);
                let result = guard
                    .sign_block(req.height, req.block_hash.to_byte_array(), certificate)
                    .map_err(|e| e.to_string());
                let elapsed = started.elapsed();
                match &result {
                    Ok(_) => tracing::debug!(target: "signer", height = req.height, hash = %req.block_hash,
                        elapsed_us = elapsed.as_micros() as u64, "block signed"),
                    Err(reason) => tracing::warn!(target: "signer", height = req.height, hash = %req.block_hash,
                        %reason, "signing refused or failed"),
                }
                let outcome = SignOutcome { height: req.height, block_hash: req.block_hash, result, elapsed };
                if outcomes.blocking_send(outcome).is_err() {
                    break;
                }
            }
        })?;
        Ok(SignerThread { requests: tx })
    }

    /// Queues a request; false if the thread is gone.
    pub fn request(&self, req: SignRequest) -> bool {
        self.requests.send(req).is_ok()
    }
}
