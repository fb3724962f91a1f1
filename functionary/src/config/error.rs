//! The error type of configuration loading.

use std::path::PathBuf;

/// Why a configuration could not be loaded. Every variant names the file or the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read (missing, unreadable, or a directory that does not exist).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory that could not be read.
        path: PathBuf,
        /// The underlying IO error.
        source: std::io::Error,
    },
    /// A file is not valid TOML or has an unknown key or a value of the wrong type. The message comes from the
    /// TOML parser and quotes the offending key and line.
    #[error("cannot parse {}: {message}", path.display())]
    Parse {
        /// The file being parsed (`<string>` for [`super::FederationConfig::from_toml_str`]).
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is missing or fails validation.
    #[error("{key}: {message}")]
    Invalid {
        /// The key in TOML path form, e.g. `members[2].block_pubkey` or `hsm.token_label`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    /// Shorthand for [`ConfigError::Invalid`].
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Shorthand for a missing required key.
    pub(crate) fn missing(key: impl Into<String>) -> Self {
        ConfigError::invalid(key, "missing (this key is required)")
    }
}
