//! Signing runs on its own OS thread, so the HSM call, the journal fsync or a round trip to the signer process
//! block that thread, never the event loop.
//!
//! Two backends ([`BlockSigner`]):
//! * [`BlockSigner::Socket`] (production, `signer.mode = "socket"`): requests go to the `functionary-signer`
//!   process over its Unix socket. The daemon holds neither the PIN nor a PKCS#11 session. If the signer restarts,
//!   the thread reconnects (checking the key again); a request whose conversation fails gets an error outcome,
//!   which the consensus treats like any failed signature (it retries later).
//! * [`BlockSigner::Embedded`] (`signer.mode = "embedded"`, tests and benchmarks): the guard itself runs on the
//!   thread; it owns the PKCS#11 session (not `Sync`).
//!
//! Either way the guard decides whether a request may be signed: it verifies the consensus commit certificate
//! through [`super::certificate::ConsensusCertificateVerifier`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::signer_service::{SignerClient, SignerHello};

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
    /// Time spent signing (journal fsync + HSM + verification, plus the socket round trip in socket mode).
    pub elapsed: Duration,
}

/// Where block signatures come from.
pub enum BlockSigner {
    /// The guard in this process (the daemon holds the PIN: the policy is only as strong as the daemon).
    Embedded(Box<hsm::BlockSigningGuard<hsm::Pkcs11Signer>>),
    /// The `functionary-signer` process behind its Unix socket.
    Socket(SocketSigner),
}

impl BlockSigner {
    /// The last approved decision (from the journal at start-up).
    pub fn last_signed(&self) -> Option<hsm::SignedBlock> {
        match self {
            BlockSigner::Embedded(guard) => guard.last_signed(),
            BlockSigner::Socket(socket) => socket.last_signed,
        }
    }

    fn sign(&mut self, req: &SignRequest) -> Result<Vec<u8>, String> {
        match self {
            BlockSigner::Embedded(guard) => {
                let certificate = req.certificate.as_deref().unwrap_or(&[]);
                guard
                    .sign_block(req.height, req.block_hash.to_byte_array(), certificate)
                    .map_err(|e| e.to_string())
            }
            BlockSigner::Socket(socket) => socket.sign(req),
        }
    }
}

/// Connection attempts per request when the signer does not answer (100 ms, 200 ms, 400 ms apart).
const RECONNECT_ATTEMPTS: u32 = 4;

/// The client side of the signer socket, reconnecting when the signer restarts.
pub struct SocketSigner {
    socket: PathBuf,
    expected_key: secp256k1::PublicKey,
    client: Option<SignerClient>,
    last_signed: Option<hsm::SignedBlock>,
}

impl SocketSigner {
    /// Wraps a connection whose `Hello` was checked against `expected_key`.
    pub fn new(
        client: SignerClient,
        hello: &SignerHello,
        expected_key: secp256k1::PublicKey,
    ) -> Self {
        let last_signed = match hello.journal {
            crate::signer_service::JournalState::Open { last_signed } => {
                last_signed.map(Into::into)
            }
            crate::signer_service::JournalState::Missing => None,
        };
        SocketSigner {
            socket: client.path().to_path_buf(),
            expected_key,
            client: Some(client),
            last_signed,
        }
    }

    /// Sends the request; on a broken connection reconnects and sends it once more (the guard makes a repeated
    /// request harmless: the same hash at the same height is re-signed, anything else is refused).
    fn sign(&mut self, req: &SignRequest) -> Result<Vec<u8>, String> {
        let mut last_error = String::new();
        for attempt in 0..2 {
            if self.client.is_none() {
                self.client = Some(self.reconnect()?);
            }
            let Some(client) = self.client.as_mut() else {
                continue;
            };
            match client.sign_block(
                req.height,
                req.block_hash.to_byte_array(),
                req.certificate.clone(),
            ) {
                Ok(result) => return result,
                Err(e) => {
                    tracing::warn!(target: "signer", error = %e, attempt, height = req.height,
                        "signer connection lost; reconnecting");
                    last_error = e.to_string();
                    self.client = None;
                }
            }
        }
        Err(last_error)
    }

    /// Connects again (a few attempts with growing pauses) and checks the signer still holds our key.
    fn reconnect(&self) -> Result<SignerClient, String> {
        let mut pause = Duration::from_millis(100);
        let mut attempt = 1;
        let mut client = loop {
            match SignerClient::connect(&self.socket) {
                Ok(client) => break client,
                Err(e) if attempt >= RECONNECT_ATTEMPTS => {
                    return Err(format!("signer unreachable: {e}"))
                }
                Err(_) => {
                    std::thread::sleep(pause);
                    pause *= 2;
                    attempt += 1;
                }
            }
        };
        let hello = client.hello().map_err(|e| e.to_string())?;
        if hello.public_key != self.expected_key {
            return Err(format!(
                "the signer at {} now holds block key {}, but this member's block key is {}; not using it",
                self.socket.display(),
                hello.public_key,
                self.expected_key
            ));
        }
        tracing::info!(target: "signer", socket = %self.socket.display(), journal = ?hello.journal,
            "reconnected to the signer");
        Ok(client)
    }
}

/// Handle to the signer thread.
pub struct SignerThread {
    requests: std::sync::mpsc::Sender<SignRequest>,
}

impl SignerThread {
    /// Moves the signer onto a new thread; outcomes are sent to `outcomes`.
    pub fn spawn(
        mut signer: BlockSigner,
        outcomes: mpsc::Sender<SignOutcome>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<SignRequest>();
        std::thread::Builder::new().name("signer".into()).spawn(move || {
            while let Ok(req) = rx.recv() {
                let started = Instant::now();
                let result = signer.sign(&req);
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
