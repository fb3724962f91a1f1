//! `functionary-signer`: the block signer of one member, as its own long-lived process per token.
//!
//! It alone reads the PIN file, holds the PKCS#11 session and writes the signer journal; `functionaryd` reaches it
//! over the Unix socket `signer.socket` (default `<datadir>/signer.sock`, mode 0600). Reads the same `node.toml` as
//! the daemon (the `[hsm]` and `[signer]` sections, the member name and the federation config). SIGINT or SIGTERM
//! stops it after the request in progress.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Parser;
use functionary::config::{NodeArgs, NodeConfig};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// The block signer of one federation member: the signing policy and journal in front of the HSM key.
#[derive(Parser, Debug)]
#[command(name = "functionary-signer", version)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    /// Federation config file, overriding `federation` in node.toml (relative to the data dir).
    #[arg(long, value_name = "FILE")]
    federation: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    // Everything this process creates (socket, journal, PIN-attempt counter) is private to its user.
    // SAFETY: umask(2) has no preconditions.
    unsafe {
        libc::umask(0o077);
    }
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("functionary-signer: error: {e:#}");
            std::process::exit(1);
        }
    };
    functionary::process_support::init_logging(&config.log);
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    if let Err(e) = functionary::signer_service::run_signer(&config, &STOP) {
        let message = functionary::process_support::render_error(&e);
        tracing::error!(target: "signer", error = %message, "functionary-signer failed");
        eprintln!("functionary-signer: error: {message}");
        std::process::exit(1);
    }
    tracing::info!(target: "signer", "functionary-signer stopped");
}

fn load_config(args: &Args) -> anyhow::Result<NodeConfig> {
    let mut config = NodeConfig::load(&args.node).context("loading the node config")?;
    if let Some(federation) = &args.federation {
        config.federation_file = config.data_dir.join(federation);
    }
    Ok(config)
}
