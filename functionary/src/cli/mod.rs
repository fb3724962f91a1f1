//! `functionary-cli`: like `elements-cli`, sends one JSON-RPC call to a running `functionaryd` and prints the
//! result; admin commands ([`admin::COMMANDS`]) run locally instead.
//!
//! `functionary-cli [--datadir DIR] [--rpcconnect HOST:PORT] [--rpccookiefile FILE] <method> [args...]`

pub mod admin;
pub mod rpc_client;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::Value;

use rpc_client::{CliError, RpcClient};

/// RPC address used when neither `--rpcconnect` nor `rpc_bind` in node.toml says otherwise (Liquid's RPC port).
pub const DEFAULT_RPC_ADDR: &str = "127.0.0.1:7041";

/// Name of the node config file inside the data directory.
pub const NODE_CONFIG_FILE: &str = "node.toml";

/// Command-line arguments of `functionary-cli`.
#[derive(Debug, Parser)]
#[command(
    name = "functionary-cli",
    version,
    about = "Send a command to functionaryd, or run an admin command"
)]
pub struct CliArgs {
    /// Data directory: holds node.toml (for rpc_bind) and the RPC cookie `.cookie`.
    #[arg(long, env = "FUNCTIONARY_DATADIR")]
    pub datadir: Option<PathBuf>,
    /// Node config file to read rpc_bind from (default DATADIR/node.toml; relative to DATADIR).
    #[arg(long, value_name = "FILE")]
    pub conf: Option<PathBuf>,
    /// RPC server address HOST:PORT (default: rpc_bind from node.toml, else 127.0.0.1:7041).
    #[arg(long, env = "FUNCTIONARY_RPC_BIND", value_name = "HOST:PORT")]
    pub rpcconnect: Option<String>,
    /// Cookie file to authenticate with (default: DATADIR/.cookie).
    #[arg(long, value_name = "FILE")]
    pub rpccookiefile: Option<PathBuf>,
    /// Timeout in seconds for one call.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub rpcclienttimeout: u64,
    /// The RPC method (or admin command).
    pub method: String,
    /// Its arguments; each is parsed as JSON if it parses (numbers, true, objects), else passed as a string.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Why the CLI could not even make the call.
#[derive(Debug, thiserror::Error)]
pub enum CliSetupError {
    /// node.toml exists but cannot be read or parsed.
    #[error("cannot read {path}: {reason}")]
    NodeConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Parses the process arguments, runs the command, prints the outcome; exit code 0 on success, 1 on any error.
pub fn main_entry() -> ExitCode {
    let args = CliArgs::parse();
    match run(&args) {
        Ok(result) => {
            print_result(&result);
            ExitCode::SUCCESS
        }
        Err(e) => {
            match e.downcast_ref::<CliError>() {
                Some(CliError::Rpc { code, message }) => {
                    eprintln!("error code: {code}\nerror message:\n{message}");
                }
                _ => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs the command described by `args` and returns its result.
pub fn run(args: &CliArgs) -> anyhow::Result<Value> {
    if admin::COMMANDS.contains(&args.method.as_str()) {
        return admin::run(args.datadir.as_deref(), &args.method, &args.args);
    }
    let datadir = args.datadir.clone().unwrap_or_else(|| PathBuf::from("."));
    let addr = match &args.rpcconnect {
        Some(addr) => addr.clone(),
        None => {
            let conf = args.conf.as_deref().unwrap_or(Path::new(NODE_CONFIG_FILE));
            rpc_bind_from_node_config(&datadir.join(conf))?
                .unwrap_or_else(|| DEFAULT_RPC_ADDR.to_string())
        }
    };
    let addr = connectable(&addr);
    let cookie_file = args
        .rpccookiefile
        .clone()
        .unwrap_or_else(|| datadir.join(".cookie"));
    let client = RpcClient::new(addr, cookie_file)
        .with_timeout(Duration::from_secs(args.rpcclienttimeout.max(1)));
    let params: Vec<Value> = args.args.iter().map(|a| parse_arg(a)).collect();
    Ok(client.call(&args.method, &params)?)
}

/// A command-line argument as a JSON value: JSON if it parses, else a string.
pub fn parse_arg(arg: &str) -> Value {
    serde_json::from_str(arg).unwrap_or_else(|_| Value::String(arg.to_string()))
}

/// Prints a result as elements-cli does: strings raw, null as nothing, anything else as pretty JSON.
fn print_result(result: &Value) {
    match result {
        Value::Null => {}
        Value::String(s) => println!("{s}"),
        other => match serde_json::to_string_pretty(other) {
            Ok(text) => println!("{text}"),
            Err(_) => println!("{other}"),
        },
    }
}

/// The address to connect to for a bind address: a wildcard IP (`0.0.0.0`, `::`) becomes loopback.
pub fn connectable(addr: &str) -> String {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(mut sock) if sock.ip().is_unspecified() => {
            let loopback: std::net::IpAddr = if sock.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            sock.set_ip(loopback);
            sock.to_string()
        }
        _ => addr.to_string(),
    }
}

/// Reads the top-level `rpc_bind` key of the node config file `path`; `None` when the file or the key is absent.
pub fn rpc_bind_from_node_config(path: &Path) -> Result<Option<String>, CliSetupError> {
    let path = path.to_path_buf();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CliSetupError::NodeConfig {
                path,
                reason: e.to_string(),
            })
        }
    };
    let value: toml::Value = toml::from_str(&text).map_err(|e| CliSetupError::NodeConfig {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    match value.get("rpc_bind") {
        None => Ok(None),
        Some(toml::Value::String(bind)) => Ok(Some(bind.clone())),
        Some(other) => Err(CliSetupError::NodeConfig {
            path,
            reason: format!("rpc_bind must be a string HOST:PORT, found {other}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_parse_as_json_or_string() {
        assert_eq!(parse_arg("5"), Value::from(5));
        assert_eq!(parse_arg("true"), Value::Bool(true));
        assert_eq!(parse_arg(r#"{"a":1}"#), serde_json::json!({"a": 1}));
        assert_eq!(parse_arg("00ab"), Value::String("00ab".into()));
        assert_eq!(parse_arg("abc"), Value::String("abc".into()));
    }

    #[test]
    fn wildcard_binds_connect_to_loopback() {
        assert_eq!(connectable("0.0.0.0:7041"), "127.0.0.1:7041");
        assert_eq!(connectable("[::]:7041"), "[::1]:7041");
        assert_eq!(connectable("10.0.0.1:7041"), "10.0.0.1:7041");
        assert_eq!(connectable("localhost:7041"), "localhost:7041");
    }

    #[test]
    fn rpc_bind_comes_from_node_toml() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(NODE_CONFIG_FILE);
        assert_eq!(
            rpc_bind_from_node_config(&file).expect("absent file is fine"),
            None
        );
        std::fs::write(&file, "rpc_bind = \"127.0.0.1:9999\"\n").expect("write");
        let bind = rpc_bind_from_node_config(&file).expect("valid");
        assert_eq!(bind, Some("127.0.0.1:9999".to_string()));
        std::fs::write(&file, "rpc_bind = 5\n").expect("write");
        let err = rpc_bind_from_node_config(&file).expect_err("not a string");
        assert!(err.to_string().contains("rpc_bind"));
        assert!(err.to_string().contains(NODE_CONFIG_FILE));
    }
}
