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
    functionary::process_support::init_logging(&config.log);
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
        let message = functionary::process_support::render_error(&e);
        tracing::error!(target: "daemon", error = %message, "functionaryd failed");
        eprintln!("functionaryd: error: {message}");
        std::process::exit(1);
    }
}
