//! `functionaryd`: one member of the federation. Reads `<datadir>/node.toml` (overridable by env and flags).

use clap::Parser;
use functionary::config::{NodeArgs, NodeConfig};

/// A federation member daemon: proposes, precommits and signs sidechain blocks with its HSM key.
#[derive(Parser, Debug)]
#[command(name = "functionaryd", version)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
}

fn main() {
    let args = Args::parse();
    let config = match NodeConfig::load(&args.node) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("functionaryd: error: {e}");
            std::process::exit(1);
        }
    };
    init_logging(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("functionaryd: error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(functionary::daemon::run(config)) {
        let message = render_error(&e);
        tracing::error!(target: "daemon", error = %message, "functionaryd failed");
        eprintln!("functionaryd: error: {message}");
        std::process::exit(1);
    }
}

/// The error and its causes on one line, leaving out a cause whose text an outer message already includes
/// (many of our error types print their source in their own message).
fn render_error(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
