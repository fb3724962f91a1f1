//! The daemon's side of the signer socket: a blocking client, one request at a time.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::protocol::{
    read_frame, write_frame, FrameError, JournalState, SignerRequest, SignerResponse,
    PROTOCOL_VERSION,
};

/// How long one request may take before the connection is given up (a signature takes milliseconds).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why talking to the signer failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting to the socket failed.
    #[error("cannot connect to the signer at {}: {source}", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Sending or receiving failed (the signer stopped, timed out, or sent garbage).
    #[error("signer at {}: {source}", path.display())]
    Frame {
        /// The socket.
        path: PathBuf,
        /// What went wrong.
        source: FrameError,
    },
    /// The signer closed the connection instead of answering.
    #[error("the signer at {} closed the connection", path.display())]
    Closed {
        /// The socket.
        path: PathBuf,
    },
    /// The signer answered with a protocol error.
    #[error("the signer at {} refused the request: {message}", path.display())]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// Its message.
        message: String,
    },
    /// The answer does not fit the request, or carries an invalid key.
    #[error("the signer at {} answered unexpectedly: {what}", path.display())]
    Unexpected {
        /// The socket.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
}

/// What the signer says about itself in answer to `Hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerHello {
    /// Its protocol version.
    pub version: u32,
    /// Its block-signing public key.
    pub public_key: secp256k1::PublicKey,
    /// Its journal.
    pub journal: JournalState,
}

/// A connection to the signer.
pub struct SignerClient {
    stream: UnixStream,
    path: PathBuf,
}

impl SignerClient {
    /// Connects once.
    pub fn connect(path: &Path) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        let timeout = Some(REQUEST_TIMEOUT);
        let set = stream
            .set_read_timeout(timeout)
            .and_then(|()| stream.set_write_timeout(timeout));
        set.map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(SignerClient {
            stream,
            path: path.to_path_buf(),
        })
    }

    /// Connects, retrying (100 ms apart, growing to 1 s) until `timeout` has passed; returns the last error.
    pub fn connect_waiting(path: &Path, timeout: Duration) -> Result<Self, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(100);
        loop {
            match Self::connect(path) {
                Ok(client) => return Ok(client),
                Err(e) if Instant::now() + pause > deadline => return Err(e),
                Err(e) => {
                    tracing::debug!(target: "signer", error = %e, "signer not answering yet; retrying");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request and reads its answer. A [`SignerResponse::ProtocolError`] becomes
    /// [`ClientError::Protocol`].
    pub fn call(&mut self, request: &SignerRequest) -> Result<SignerResponse, ClientError> {
        if let Err(source) = write_frame(&mut self.stream, request) {
            // A signer that refuses the connection (peer uid, too many connections) answers and hangs up before
            // reading: its explanation is worth more than the broken pipe.
            if let Ok(Some(SignerResponse::ProtocolError(message))) =
                read_frame::<SignerResponse>(&mut self.stream)
            {
                return Err(ClientError::Protocol {
                    path: self.path.clone(),
                    message,
                });
            }
            return Err(ClientError::Frame {
                path: self.path.clone(),
                source,
            });
        }
        let response = read_frame::<SignerResponse>(&mut self.stream)
            .map_err(|source| ClientError::Frame {
                path: self.path.clone(),
                source,
            })?
            .ok_or_else(|| ClientError::Closed {
                path: self.path.clone(),
            })?;
        match response {
            SignerResponse::ProtocolError(message) => Err(ClientError::Protocol {
                path: self.path.clone(),
                message,
            }),
            other => Ok(other),
        }
    }

    /// `Hello`: the signer's version, key and journal state.
    pub fn hello(&mut self) -> Result<SignerHello, ClientError> {
        match self.call(&SignerRequest::Hello {
            version: PROTOCOL_VERSION,
        })? {
            SignerResponse::Hello {
                version,
                public_key,
                journal,
            } => Ok(SignerHello {
                version,
                public_key: self.parse_key(&public_key)?,
                journal,
            }),
            other => Err(self.unexpected("Hello", &other)),
        }
    }

    /// The signer's block-signing public key.
    pub fn public_key(&mut self) -> Result<secp256k1::PublicKey, ClientError> {
        match self.call(&SignerRequest::PublicKey)? {
            SignerResponse::PublicKey(bytes) => self.parse_key(&bytes),
            other => Err(self.unexpected("PublicKey", &other)),
        }
    }

    /// Asks the signer to create its journal if it is missing; returns the journal's state.
    pub fn create_journal(&mut self) -> Result<JournalState, ClientError> {
        match self.call(&SignerRequest::CreateJournal)? {
            SignerResponse::Journal(state) => Ok(state),
            SignerResponse::Refused(reason) => Err(ClientError::Protocol {
                path: self.path.clone(),
                message: reason,
            }),
            other => Err(self.unexpected("Journal", &other)),
        }
    }

    /// Asks for a block signature. `Ok(Ok(signature))` (DER + 0x01), `Ok(Err(reason))` if the guard refused,
    /// `Err` if the conversation failed (the request may or may not have reached the guard).
    pub fn sign_block(
        &mut self,
        height: u32,
        block_hash: [u8; 32],
        certificate: Option<Vec<u8>>,
    ) -> Result<Result<Vec<u8>, String>, ClientError> {
        match self.call(&SignerRequest::SignBlock {
            height,
            block_hash,
            certificate,
        })? {
            SignerResponse::Signature(signature) => Ok(Ok(signature)),
            SignerResponse::Refused(reason) => Ok(Err(reason)),
            other => Err(self.unexpected("Signature or Refused", &other)),
        }
    }

    fn parse_key(&self, bytes: &[u8]) -> Result<secp256k1::PublicKey, ClientError> {
        secp256k1::PublicKey::from_slice(bytes).map_err(|e| ClientError::Unexpected {
            path: self.path.clone(),
            what: format!("invalid public key {}: {e}", hex::encode(bytes)),
        })
    }

    fn unexpected(&self, wanted: &str, got: &SignerResponse) -> ClientError {
        let kind = match got {
            SignerResponse::Hello { .. } => "Hello",
            SignerResponse::Signature(_) => "Signature",
            SignerResponse::Refused(_) => "Refused",
            SignerResponse::PublicKey(_) => "PublicKey",
            SignerResponse::Journal(_) => "Journal",
            SignerResponse::ProtocolError(_) => "ProtocolError",
        };
        ClientError::Unexpected {
            path: self.path.clone(),
            what: format!("expected {wanted}, got {kind}"),
        }
    }
}
