//! The error type of the key ceremony.

use std::path::PathBuf;

use crate::config::ConfigError;

/// Why a ceremony step refused or failed. Every variant names the file, member, key or command at fault.
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying IO error.
        source: std::io::Error,
    },
    /// A configuration file (node.toml or federation.toml) is invalid, or an assembled config would be.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HSM refused or failed (wrong PIN, token or key missing, module not loadable, ...).
    #[error("HSM: {0}")]
    Hsm(#[from] hsm::HsmError),
    /// The member's p2p identity file could not be created or read.
    #[error("p2p identity: {0}")]
    P2p(#[from] crate::p2p::P2pError),
    /// The token is absent and cannot be initialised without the SO PIN.
    #[error("token {token:?} does not exist yet; pass --so-pin-file FILE (its security-officer PIN) to initialise it")]
    TokenAbsent {
        /// The token label from node.toml.
        token: String,
    },
    /// An object with the key label exists on the token but is not a usable key pair.
    #[error("key label collision on token {token:?}: an object labelled {label:?} exists but is not a usable key pair; \
             choose another label in node.toml ([hsm] {field}) or remove that object")]
    KeyLabelCollision {
        /// The token label.
        token: String,
        /// The colliding key label.
        label: String,
        /// The node.toml key naming the label (`key_label` or `peg_key_label`).
        field: &'static str,
    },
    /// A descriptor file is malformed (not JSON, unknown version, a field that does not parse).
    #[error("descriptor {source_name}: {message}")]
    DescriptorFormat {
        /// The descriptor's file name.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A descriptor lacks one of its proofs of possession.
    #[error("descriptor {source_name}: the {proof} proof of possession is missing")]
    ProofMissing {
        /// The descriptor's file name.
        source_name: String,
        /// `block_key`, `peg_key` or `p2p_key`.
        proof: &'static str,
    },
    /// A proof of possession does not verify: the descriptor was altered after signing, or was never signed by
    /// that key.
    #[error(
        "descriptor {source_name}: the {proof} proof of member `{member}` does not verify \
             (the descriptor was altered after it was signed, or the key did not sign it)"
    )]
    ProofInvalid {
        /// The descriptor's file name.
        source_name: String,
        /// The member name in the descriptor.
        member: String,
        /// `block_key`, `peg_key` or `p2p_key`.
        proof: &'static str,
    },
    /// Two descriptors share a name, a key, a PeerId or an address.
    #[error("duplicate {what} {value}: in descriptors {first} and {second}")]
    Duplicate {
        /// What is duplicated (`member name`, `secp256k1 key`, `PeerId`, `address`).
        what: &'static str,
        /// The duplicated value.
        value: String,
        /// The first descriptor holding it.
        first: String,
        /// The second descriptor holding it.
        second: String,
    },
    /// A ceremony input other than a descriptor is invalid (threshold, interval, emergency key, ...).
    #[error("{what}: {message}")]
    Invalid {
        /// The flag or input at fault, e.g. `--threshold`.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The config does not hash to the hash agreed out of band.
    #[error("config hash mismatch: {} hashes to {actual}, but {expected} was expected; do not use this config",
            path.display())]
    HashMismatch {
        /// The federation config file.
        path: PathBuf,
        /// The hash agreed out of band.
        expected: String,
        /// The hash of the file.
        actual: String,
    },
    /// This member's own keys or identity are not in the config as expected.
    #[error("member `{member}`: {message}")]
    NotInConfig {
        /// This member's name (node.toml `member`).
        member: String,
        /// Which key or identity is missing or different.
        message: String,
    },
    /// A config member has no matching descriptor, or a descriptor disagrees with the config.
    #[error("member `{member}`: {message}")]
    DescriptorMismatch {
        /// The member name.
        member: String,
        /// What disagrees.
        message: String,
    },
    /// The daemon's federation config was never verified by this member (no marker file).
    #[error("federation config {config_hash} has not been verified by this member ({} is missing). Run \
             `functionary-cli --datadir {} ceremony verify --config <federation.toml> --expect-hash <hash agreed out of band> \
             --descriptor <each member's descriptor>...` first", marker.display(), datadir.display())]
    NotVerified {
        /// The data dir.
        datadir: PathBuf,
        /// The marker file that is missing.
        marker: PathBuf,
        /// The hash of the config the daemon would run.
        config_hash: String,
    },
    /// The verified marker names another config than the one the daemon would run.
    #[error("federation config {config_hash} is not the one this member verified ({} holds {verified}). Run \
             `functionary-cli --datadir {} ceremony verify --config <federation.toml> --expect-hash <hash agreed out of band> \
             --descriptor <each member's descriptor>...` for the new config", marker.display(), datadir.display())]
    VerifiedMismatch {
        /// The data dir.
        datadir: PathBuf,
        /// The marker file.
        marker: PathBuf,
        /// The hash recorded in the marker.
        verified: String,
        /// The hash of the config the daemon would run.
        config_hash: String,
    },
    /// A transcript file is malformed or its hash chain is broken.
    #[error("transcript {} line {line}: {message}", path.display())]
    Transcript {
        /// The transcript file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The audit found a step that does not check out, or a step that is missing.
    #[error("audit: {0}")]
    Audit(String),
}

impl CeremonyError {
    /// Shorthand for [`CeremonyError::Io`].
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> CeremonyError + '_ {
        move |source| CeremonyError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Shorthand for [`CeremonyError::Invalid`].
    pub(crate) fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        CeremonyError::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }
}
