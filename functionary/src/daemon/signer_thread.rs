//! The signer runs on its own OS thread: it owns the PKCS#11 session (not `Sync`) and the guard, and signing blocks
//! the thread for the HSM call and the journal fsync, never the event loop.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// A request to sign a block hash at a height.
#[derive(Debug)]
pub struct SignRequest {
    pub height: u32,
    pub block_hash: elements::BlockHash,
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

/// Accepts every certificate. // lead wires blocksigner's verifier
pub(super) struct AcceptAnyCertificate;

impl hsm::CertificateVerifier for AcceptAnyCertificate {
    fn verify(&self, _height: u32, _block_hash: [u8; 32], _certificate: &[u8]) -> Result<(), String> {
        Ok(())
    }
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
                let result = guard.sign_block(req.height, req.block_hash.to_byte_array(), &[]).map_err(|e| e.to_string());
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
