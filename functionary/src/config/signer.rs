//! The `[signer]` section of `node.toml`: how `functionaryd` reaches its block signer.
//!
//! * `mode = "socket"` (default): the signer is its own process (`functionary-signer`) behind a Unix socket; the
//!   daemon never reads the PIN file nor loads the PKCS#11 module, so a bug in the networked daemon cannot reach
//!   the token without going through the signing policy.
//! * `mode = "embedded"`: the guard runs on a thread of the daemon (tests, benchmarks). The daemon then holds the
//!   PIN and a PKCS#11 session, and the policy is only as strong as the daemon.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::duration::{format_duration, parse_duration};
use super::error::ConfigError;

/// Default socket file name, relative to the data dir.
pub const DEFAULT_SIGNER_SOCKET: &str = "signer.sock";
/// Default time the daemon waits at start-up for the signer to answer.
pub const DEFAULT_SIGNER_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest accepted `signer.connect_timeout`.
const MAX_SIGNER_CONNECT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Where the block-signing guard runs (TOML `signer.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerMode {
    /// In its own `functionary-signer` process, reached over the Unix socket (`"socket"`, the default).
    Socket,
    /// On a thread of `functionaryd` (`"embedded"`; for tests and benchmarks: the daemon holds the PIN).
    Embedded,
}

impl SignerMode {
    /// The TOML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SignerMode::Socket => "socket",
            SignerMode::Embedded => "embedded",
        }
    }
}

/// The validated `[signer]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerSection {
    /// Where the guard runs (TOML `mode`, default `socket`).
    pub mode: SignerMode,
    /// The signer's Unix socket (TOML `socket`, default `signer.sock` in the data dir; relative paths are resolved
    /// against the data dir). The signer binds it; the daemon connects to it.
    pub socket: PathBuf,
    /// A uid besides the signer's own that may connect (TOML `allowed_uid`; for a daemon running as another user).
    pub allowed_uid: Option<u32>,
    /// How long the daemon waits at start-up for the signer to answer (TOML `connect_timeout`, default 30s).
    pub connect_timeout: Duration,
}

impl SignerSection {
    /// The defaults for a data dir.
    pub fn default_for(data_dir: &Path) -> Self {
        SignerSection {
            mode: SignerMode::Socket,
            socket: data_dir.join(DEFAULT_SIGNER_SOCKET),
            allowed_uid: None,
            connect_timeout: DEFAULT_SIGNER_CONNECT_TIMEOUT,
        }
    }

    /// Renders the section as a TOML table (paths absolute).
    pub(crate) fn to_toml_table(&self) -> toml::Table {
        let mut table = toml::Table::new();
        table.insert("mode".into(), self.mode.as_str().into());
        table.insert(
            "socket".into(),
            self.socket.to_string_lossy().into_owned().into(),
        );
        if let Some(uid) = self.allowed_uid {
            table.insert("allowed_uid".into(), i64::from(uid).into());
        }
        table.insert(
            "connect_timeout".into(),
            format_duration(self.connect_timeout).into(),
        );
        table
    }
}

/// `[signer]` as written in `node.toml`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSigner {
    mode: Option<String>,
    socket: Option<PathBuf>,
    allowed_uid: Option<i64>,
    connect_timeout: Option<String>,
}

/// Validates `[signer]`; relative paths are resolved against `data_dir`.
pub(crate) fn build_signer(
    raw: Option<RawSigner>,
    data_dir: &Path,
) -> Result<SignerSection, ConfigError> {
    let raw = raw.unwrap_or_default();
    let defaults = SignerSection::default_for(data_dir);
    let mode = match raw.mode.as_deref() {
        None | Some("socket") => SignerMode::Socket,
        Some("embedded") => SignerMode::Embedded,
        Some(other) => {
            return Err(ConfigError::invalid(
                "signer.mode",
                format!("`{other}` is not a signer mode (expected \"socket\" or \"embedded\")"),
            ))
        }
    };
    let socket = match raw.socket {
        None => defaults.socket,
        Some(p) if p.as_os_str().is_empty() => {
            return Err(ConfigError::invalid("signer.socket", "must not be empty"))
        }
        Some(p) if p.is_absolute() => p,
        Some(p) => data_dir.join(p),
    };
    // Unix socket paths are limited to 108 bytes (sun_path) including the terminating NUL.
    if socket.as_os_str().len() > 107 {
        return Err(ConfigError::invalid(
            "signer.socket",
            format!(
                "{} is {} bytes long; a Unix socket path must be at most 107 bytes",
                socket.display(),
                socket.as_os_str().len()
            ),
        ));
    }
    let allowed_uid = match raw.allowed_uid {
        None => None,
        Some(uid) => Some(u32::try_from(uid).map_err(|_| {
            ConfigError::invalid(
                "signer.allowed_uid",
                format!("{uid} is not a uid (0 to {})", u32::MAX),
            )
        })?),
    };
    let connect_timeout = match raw.connect_timeout {
        None => defaults.connect_timeout,
        Some(text) => {
            let d = parse_duration(&text)
                .map_err(|e| ConfigError::invalid("signer.connect_timeout", e))?;
            if d.is_zero() || d > MAX_SIGNER_CONNECT_TIMEOUT {
                return Err(ConfigError::invalid(
                    "signer.connect_timeout",
                    format!("`{text}` must be above 0 and at most 1h"),
                ));
            }
            d
        }
    };
    Ok(SignerSection {
        mode,
        socket,
        allowed_uid,
        connect_timeout,
    })
}
