//! The block signer as its own process (`functionary-signer`), one per token, behind a local Unix socket.
//!
//! The signer is the only process that reads the PIN file, holds a PKCS#11 session and writes the signer journal;
//! `functionaryd` (the networked daemon, `signer.mode = "socket"`) only sends it requests over
//! `signer.socket` and gets signatures or refusals back. A bug in the daemon's network code therefore cannot reach
//! the key without going through [`hsm::BlockSigningGuard`]: one hash per height, never lower, a valid commit
//! certificate for every new decision, journaled and fsynced before the HSM signs.
//!
//! * [`protocol`]: versioned length-prefixed postcard frames (at most 64 KiB, checked before allocating).
//! * [`service`]: the guard behind the protocol. The journal of a new key is created by the ceremony's `member`
//!   step (the only moment a key is known to have signed nothing); a missing journal is otherwise only created on
//!   request ([`protocol::SignerRequest::CreateJournal`]) from a process running as the signer's OWN uid (operator
//!   tools), never from `signer.allowed_uid`: a compromised daemon cannot make the signer forget what it signed.
//!   A journal that appears on disk while the signer waits is adopted (it is always created complete, see
//!   [`load::create_floor_journal`]).
//! * [`server`]: the socket (0600, stale socket removed only if nobody answers), the peer-uid check
//!   (`SO_PEERCRED`: the signer's own uid or `signer.allowed_uid`), one request at a time.
//! * [`client`]: what the daemon uses.
//! * [`load`]: the federation view, the token and the journal path, shared with the embedded mode.

pub mod client;
pub mod load;
pub mod protocol;
pub mod server;
pub mod service;

use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context};

use crate::config::{NodeConfig, SignerMode};
use crate::daemon::ConsensusCertificateVerifier;

pub use client::{ClientError, SignerClient, SignerHello};
pub use protocol::{
    JournalState, LastSigned, SignerRequest, SignerResponse, MAX_FRAME_BYTES, PROTOCOL_VERSION,
};
pub use server::{SignerServer, SocketError};
pub use service::{BlockSignerService, Requester};

/// Runs the signer process for `config` until `stop` is set: refuses a PIN file readable by group or others and a
/// data dir (or journal directory) writable by them, warns when `signer.allowed_uid` is unset (daemon and signer
/// then run as the same user), loads and checks the federation config, makes sure
/// no other signer serves the socket, opens the token (PIN counted) and the journal (lock taken), binds the socket
/// and serves. Every check that can fail runs before the socket is bound.
pub fn run_signer(config: &NodeConfig, stop: &AtomicBool) -> anyhow::Result<()> {
    if config.signer.mode == SignerMode::Embedded {
        bail!(
            "signer.mode: `embedded` in {}: functionaryd signs in its own process, so no signer process may use \
             this token and journal; set signer.mode = \"socket\" to run functionary-signer",
            config.data_dir.display()
        );
    }
    // The PIN must be the signer's alone, and nobody else may replace its journal.
    load::check_signer_file_modes(config)?;
    if config.signer.allowed_uid.is_none() {
        tracing::warn!(target: "signer", data_dir = %config.data_dir.display(),
            "signer.allowed_uid is unset: daemon and signer run as the same user: the separation relies on the \
             deployment (a compromised daemon running as this user can read the PIN file and the journal)");
    }
    let federation_config = config.load_federation()?;
    crate::ceremony::require_verified(&config.data_dir, &federation_config)?;
    let me = load::own_member(config, &federation_config)?;
    let view = load::federation_view(config, &federation_config)?;
    let socket = &config.signer.socket;
    // Before the token is opened: a second signer must not log in to a token another one is using.
    server::check_socket_free(socket)?;
    let token = load::open_block_token(config, me)?;
    let journal = load::journal_path(config);
    let verifier = Box::new(ConsensusCertificateVerifier::new(view.federation.clone()));
    let service = BlockSignerService::open(&journal, token, verifier)
        .with_context(|| format!("signer journal {}", journal.display()))?;
    let server = SignerServer::bind(socket, config.signer.allowed_uid)?;
    tracing::info!(target: "signer", member = %me.name, member_index = view.member_index,
        public_key = %service.public_key(), journal = %journal.display(), journal_state = ?service.journal_state(),
        socket = %socket.display(), "functionary-signer started");
    server
        .serve(service, stop)
        .with_context(|| format!("serving {}", socket.display()))
}
