//! `node.toml`: the per-member node configuration, with environment and flag overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use libp2p::Multiaddr;
use serde::Deserialize;

use super::error::ConfigError;
use super::federation::FederationConfig;
use super::fields::{check_member_name, parse_multiaddr};
use super::signer::{build_signer, RawSigner, SignerSection};

/// Default JSON-RPC bind address.
pub const DEFAULT_RPC_BIND: &str = "127.0.0.1:7041";
/// Default PKCS#11 module (SoftHSM2 on Debian).
pub const DEFAULT_HSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Default label of the block-signing key on the token.
pub const DEFAULT_HSM_KEY_LABEL: &str = "block-signing";
/// Default label of the peg-wallet key on the token.
pub const DEFAULT_HSM_PEG_KEY_LABEL: &str = "peg-wallet";
const DEFAULT_NODE_FILE: &str = "node.toml";
const DEFAULT_FEDERATION_FILE: &str = "federation.toml";
const DEFAULT_P2P_KEY_FILE: &str = "p2p.key";
const DEFAULT_PIN_FILE: &str = "hsm.pin";
const DEFAULT_LOG: &str = "info";
/// PKCS#11 token labels are at most 32 bytes.
const MAX_TOKEN_LABEL_LEN: usize = 32;
/// Longest accepted key label (CKA_LABEL has no fixed limit; keep it sane).
const MAX_KEY_LABEL_LEN: usize = 128;

/// Command-line flags shared by `functionaryd` (and tools that read a node's config). Precedence of every value:
/// flag > environment variable > `node.toml` > default. PINs are never accepted here: only from the PIN file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NodeArgs {
    /// Data directory; holds node.toml, the block store, keys and the RPC cookie.
    #[arg(long, env = "FUNCTIONARY_DATADIR", value_name = "DIR")]
    pub datadir: PathBuf,
    /// Node config file (default DATADIR/node.toml); a relative path is taken relative to the data directory.
    #[arg(long, value_name = "FILE")]
    pub conf: Option<PathBuf>,
    /// JSON-RPC bind address, e.g. 127.0.0.1:7041.
    #[arg(long, env = "FUNCTIONARY_RPC_BIND", value_name = "IP:PORT")]
    pub rpc_bind: Option<String>,
    /// P2P listen address overriding this member's federation address, e.g. /ip4/0.0.0.0/tcp/7101.
    #[arg(long, env = "FUNCTIONARY_P2P_LISTEN", value_name = "MULTIADDR")]
    pub p2p_listen: Option<String>,
    /// Log filter (tracing EnvFilter syntax), e.g. "info,blocksigner=debug".
    #[arg(long, env = "FUNCTIONARY_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Path of the PKCS#11 module.
    #[arg(long, env = "FUNCTIONARY_HSM_MODULE", value_name = "PATH")]
    pub hsm_module: Option<PathBuf>,
    /// Label of the HSM token holding the block-signing key.
    #[arg(long, env = "FUNCTIONARY_HSM_TOKEN_LABEL", value_name = "LABEL")]
    pub hsm_token_label: Option<String>,
    /// Label of the block-signing key on the token.
    #[arg(long, env = "FUNCTIONARY_HSM_KEY_LABEL", value_name = "LABEL")]
    pub hsm_key_label: Option<String>,
}

impl NodeArgs {
    /// Arguments for a data dir with no overrides (as if only `--datadir DIR` were given and no env set).
    pub fn for_datadir(datadir: impl Into<PathBuf>) -> Self {
        NodeArgs {
            datadir: datadir.into(),
            ..NodeArgs::default()
        }
    }
}

/// The `[hsm]` section of `node.toml`.
#[derive(Clone, PartialEq, Eq)]
pub struct HsmSection {
    /// PKCS#11 module path, passed to the loader as written (default `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// Token label (required).
    pub token_label: String,
    /// Label of the block-signing key (default `block-signing`).
    pub key_label: String,
    /// Label of the peg-wallet key (TOML `peg_key_label`, default `peg-wallet`); differs from `key_label`.
    pub peg_key_label: String,
    /// File holding the user PIN (default `hsm.pin`, relative to the data dir). The PIN itself is never part of
    /// the configuration.
    pub pin_file: PathBuf,
}

impl std::fmt::Debug for HsmSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only paths and labels: no PIN is ever held here.
        f.debug_struct("HsmSection")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("key_label", &self.key_label)
            .field("peg_key_label", &self.peg_key_label)
            .field("pin_file", &self.pin_file)
            .finish()
    }
}

/// The validated node configuration. Every path is absolute: relative paths in `node.toml` are resolved against
/// the data dir (except `hsm.module`, which is handed to the PKCS#11 loader as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Canonicalised absolute data directory.
    pub data_dir: PathBuf,
    /// This node's member name in the federation config (TOML `member`, required).
    pub member: String,
    /// Federation config file (TOML `federation`, default `federation.toml`).
    pub federation_file: PathBuf,
    /// JSON-RPC bind address (TOML `rpc_bind`, default 127.0.0.1:7041).
    pub rpc_bind: SocketAddr,
    /// Override of this member's federation address for listening (TOML `p2p_listen`).
    pub p2p_listen: Option<Multiaddr>,
    /// File holding the libp2p ed25519 key (TOML `p2p_key_file`, default `p2p.key`).
    pub p2p_key_file: PathBuf,
    /// HSM settings (TOML `[hsm]`). In signer `socket` mode only `functionary-signer` uses them.
    pub hsm: HsmSection,
    /// How the daemon reaches its block signer (TOML `[signer]`).
    pub signer: SignerSection,
    /// Tracing filter (TOML `log`, default `info`).
    pub log: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    member: Option<String>,
    federation: Option<PathBuf>,
    rpc_bind: Option<String>,
    p2p_listen: Option<String>,
    p2p_key_file: Option<PathBuf>,
    log: Option<String>,
    hsm: Option<RawHsm>,
    signer: Option<RawSigner>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHsm {
    module: Option<PathBuf>,
    token_label: Option<String>,
    key_label: Option<String>,
    peg_key_label: Option<String>,
    pin_file: Option<PathBuf>,
}

impl NodeConfig {
    /// Loads `node.toml` from the data dir (or `--conf`), applies env and flag overrides (already merged by clap
    /// into `args`), applies defaults and validates. The data dir must exist; a missing data dir or config file
    /// is a [`ConfigError::Io`] naming the path.
    pub fn load(args: &NodeArgs) -> Result<Self, ConfigError> {
        let data_dir = std::fs::canonicalize(&args.datadir).map_err(|source| ConfigError::Io {
            path: args.datadir.clone(),
            source,
        })?;
        let conf_path = match &args.conf {
            Some(conf) => data_dir.join(conf),
            None => data_dir.join(DEFAULT_NODE_FILE),
        };
        let text = std::fs::read_to_string(&conf_path).map_err(|source| ConfigError::Io {
            path: conf_path.clone(),
            source,
        })?;
        let raw: RawNode = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: conf_path.clone(),
            message: e.to_string(),
        })?;
        let config = build(raw, args, data_dir)?;
        tracing::debug!(target: "config", path = %conf_path.display(), member = %config.member, "node config loaded");
        Ok(config)
    }

    /// Loads the federation file named by this config and checks that it has a member named [`Self::member`].
    pub fn load_federation(&self) -> Result<FederationConfig, ConfigError> {
        let federation = FederationConfig::load(&self.federation_file)?;
        if federation.member_by_name(&self.member).is_none() {
            return Err(ConfigError::invalid(
                "member",
                format!(
                    "no member named `{}` in {} (members: {})",
                    self.member,
                    self.federation_file.display(),
                    federation
                        .members
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(federation)
    }

    /// Renders the config as `node.toml` (paths written absolute; `data_dir` is implied by the file's location).
    pub fn to_toml_string(&self) -> String {
        let path_value = |p: &Path| toml::Value::String(p.to_string_lossy().into_owned());
        let mut table = toml::Table::new();
        table.insert("member".into(), self.member.clone().into());
        table.insert("federation".into(), path_value(&self.federation_file));
        table.insert("rpc_bind".into(), self.rpc_bind.to_string().into());
        if let Some(listen) = &self.p2p_listen {
            table.insert("p2p_listen".into(), listen.to_string().into());
        }
        table.insert("p2p_key_file".into(), path_value(&self.p2p_key_file));
        table.insert("log".into(), self.log.clone().into());
        let mut hsm = toml::Table::new();
        hsm.insert("module".into(), path_value(&self.hsm.module));
        hsm.insert("token_label".into(), self.hsm.token_label.clone().into());
        hsm.insert("key_label".into(), self.hsm.key_label.clone().into());
        hsm.insert(
            "peg_key_label".into(),
            self.hsm.peg_key_label.clone().into(),
        );
        hsm.insert("pin_file".into(), path_value(&self.hsm.pin_file));
        table.insert("hsm".into(), toml::Value::Table(hsm));
        table.insert(
            "signer".into(),
            toml::Value::Table(self.signer.to_toml_table()),
        );
        table.to_string()
    }
}

fn build(raw: RawNode, args: &NodeArgs, data_dir: PathBuf) -> Result<NodeConfig, ConfigError> {
    let member = raw.member.ok_or_else(|| ConfigError::missing("member"))?;
    check_member_name(&member).map_err(|e| ConfigError::invalid("member", e))?;

    let resolve = |p: PathBuf| if p.is_absolute() { p } else { data_dir.join(p) };
    let federation_file = resolve(
        raw.federation
            .unwrap_or_else(|| DEFAULT_FEDERATION_FILE.into()),
    );
    let p2p_key_file = resolve(
        raw.p2p_key_file
            .unwrap_or_else(|| DEFAULT_P2P_KEY_FILE.into()),
    );

    let (rpc_bind_text, rpc_source) = pick(
        &args.rpc_bind,
        raw.rpc_bind,
        DEFAULT_RPC_BIND,
        "--rpc-bind/FUNCTIONARY_RPC_BIND",
    );
    let rpc_bind = SocketAddr::from_str(rpc_bind_text.trim()).map_err(|_| {
        ConfigError::invalid(
            "rpc_bind",
            format!("`{rpc_bind_text}` is not an IP:port socket address{rpc_source}"),
        )
    })?;

    let p2p_listen = match args
        .p2p_listen
        .clone()
        .map(|v| (v, " (from --p2p-listen/FUNCTIONARY_P2P_LISTEN)"))
        .or(raw.p2p_listen.map(|v| (v, "")))
    {
        None => None,
        Some((text, source)) => Some(
            parse_multiaddr(&text)
                .map_err(|e| ConfigError::invalid("p2p_listen", format!("{e}{source}")))?,
        ),
    };

    let (log, log_source) = pick(&args.log, raw.log, DEFAULT_LOG, "--log/FUNCTIONARY_LOG");
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log) {
        return Err(ConfigError::invalid(
            "log",
            format!("`{log}` is not a valid tracing filter: {e}{log_source}"),
        ));
    }

    let raw_hsm = raw.hsm.unwrap_or_default();
    let module = args
        .hsm_module
        .clone()
        .or(raw_hsm.module)
        .unwrap_or_else(|| DEFAULT_HSM_MODULE.into());
    if module.as_os_str().is_empty() {
        return Err(ConfigError::invalid("hsm.module", "must not be empty"));
    }
    let token_label = args
        .hsm_token_label
        .clone()
        .or(raw_hsm.token_label)
        .ok_or_else(|| ConfigError::missing("hsm.token_label"))?;
    check_label("hsm.token_label", &token_label, MAX_TOKEN_LABEL_LEN)?;
    let key_label = args
        .hsm_key_label
        .clone()
        .or(raw_hsm.key_label)
        .unwrap_or_else(|| DEFAULT_HSM_KEY_LABEL.into());
    check_label("hsm.key_label", &key_label, MAX_KEY_LABEL_LEN)?;
    let peg_key_label = raw_hsm
        .peg_key_label
        .unwrap_or_else(|| DEFAULT_HSM_PEG_KEY_LABEL.into());
    check_label("hsm.peg_key_label", &peg_key_label, MAX_KEY_LABEL_LEN)?;
    if peg_key_label == key_label {
        return Err(ConfigError::invalid(
            "hsm.peg_key_label",
            format!("`{peg_key_label}` is also the block-signing key label (hsm.key_label); each key needs its own label"),
        ));
    }
    let pin_file = resolve(raw_hsm.pin_file.unwrap_or_else(|| DEFAULT_PIN_FILE.into()));
    let signer = build_signer(raw.signer, &data_dir)?;

    Ok(NodeConfig {
        data_dir,
        member,
        federation_file,
        rpc_bind,
        p2p_listen,
        p2p_key_file,
        hsm: HsmSection {
            module,
            token_label,
            key_label,
            peg_key_label,
            pin_file,
        },
        signer,
        log,
    })
}

/// Chooses the override (flag or env, merged by clap), else the file value, else the default. Returns the value
/// and a note naming the override's source for error messages.
fn pick(
    over: &Option<String>,
    file: Option<String>,
    default: &str,
    flag: &str,
) -> (String, String) {
    match (over, file) {
        (Some(v), _) => (v.clone(), format!(" (from {flag})")),
        (None, Some(v)) => (v, String::new()),
        (None, None) => (default.to_string(), String::new()),
    }
}

fn check_label(key: &str, label: &str, max_len: usize) -> Result<(), ConfigError> {
    if label.is_empty() || label.len() > max_len {
        return Err(ConfigError::invalid(
            key,
            format!("`{label}` must be 1 to {max_len} bytes"),
        ));
    }
    Ok(())
}
