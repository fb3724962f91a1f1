//! The daemon: loads and checks everything, then runs the consensus core and executes its effects.
//!
//! Start-up order matters for operators: every check that can fail on bad input (configs, identity, HSM module,
//! token, PIN, key, storage, genesis) runs before anything listens on a socket, so a failed start leaves nothing
//! running and nothing half-written.

mod block_source;
mod certificate;
mod event_loop;
mod signer_thread;
mod startup;
mod status;
mod timing;

pub use certificate::ConsensusCertificateVerifier;
pub use startup::{load_node, LoadedNode};

use anyhow::Context;

use crate::config::NodeConfig;

/// Runs a member daemon until `stop` (RPC), SIGINT or SIGTERM.
pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let node = load_node(&config).context("starting functionaryd")?;
    event_loop::run(config, node).await
}
