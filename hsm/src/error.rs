//! Errors of the signers and the token ceremony helpers.

use std::path::PathBuf;

/// Why an HSM operation failed. Messages name what an operator has to fix (module path, token label, key label).
/// No variant carries a PIN.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The PKCS#11 module (shared library) could not be loaded.
    #[error("cannot load PKCS#11 module {}: {source}", path.display())]
    ModuleLoad {
        /// The module path as configured.
        path: PathBuf,
        /// What the dynamic loader said.
        #[source]
        source: cryptoki::error::Error,
    },
    /// No initialised token carries this label.
    #[error(
        "no PKCS#11 token with label {label:?} (tokens present: {})",
        format_labels(present)
    )]
    TokenNotFound {
        /// The label we looked for.
        label: String,
        /// Labels of the initialised tokens that are present.
        present: Vec<String>,
    },
    /// More than one token carries this label; refusing to guess.
    #[error("{count} PKCS#11 tokens carry the label {label:?}; labels must be unique")]
    TokenAmbiguous {
        /// The duplicated label.
        label: String,
        /// How many tokens carry it.
        count: usize,
    },
    /// `init_token` refused: a token with this label exists (re-initialising would wipe its keys).
    #[error("a PKCS#11 token with label {label:?} already exists; refusing to re-initialise it (that would wipe its keys)")]
    TokenExists {
        /// The existing label.
        label: String,
    },
    /// `init_token` found no slot with an uninitialised token.
    #[error("no free slot (uninitialised token) to initialise token {label:?}")]
    NoFreeSlot {
        /// The label we wanted to give the new token.
        label: String,
    },
    /// A token or key label is not usable.
    #[error("invalid label {label:?}: {reason}")]
    InvalidLabel {
        /// The rejected label.
        label: String,
        /// Why.
        reason: &'static str,
    },
    /// The token rejected the PIN (CKR_PIN_INCORRECT or CKR_PIN_LEN_RANGE at login).
    #[error("PIN incorrect for token {token:?}")]
    PinIncorrect {
        /// Label of the token.
        token: String,
    },
    /// The token locked the PIN after too many failures.
    #[error("PIN locked for token {token:?}; unlock it with the SO PIN")]
    PinLocked {
        /// Label of the token.
        token: String,
    },
    /// The user PIN of the token was never set (token initialised without `init_token`, or wiped).
    #[error("user PIN not initialised on token {token:?}")]
    PinNotInitialized {
        /// Label of the token.
        token: String,
    },
    /// The token refused a new PIN's length while initialising.
    #[error("PIN length out of range for token {token:?} (SoftHSM accepts 4 to 255 bytes)")]
    PinLength {
        /// Label of the token.
        token: String,
    },
    /// No private key with this label on the token.
    #[error("no private key with label {label:?} on token {token:?}")]
    KeyNotFound {
        /// The key label.
        label: String,
        /// The token label.
        token: String,
    },
    /// The private key exists but its public key object (same label) does not.
    #[error("no public key object with label {label:?} on token {token:?}")]
    PublicKeyNotFound {
        /// The key label.
        label: String,
        /// The token label.
        token: String,
    },
    /// Several private keys carry this label; refusing to guess.
    #[error("{count} private keys carry the label {label:?} on token {token:?}; key labels must be unique")]
    KeyAmbiguous {
        /// The key label.
        label: String,
        /// The token label.
        token: String,
        /// How many keys carry it.
        count: usize,
    },
    /// `generate_key` refused: an object with this label exists.
    #[error("an object with label {label:?} already exists on token {token:?}; refusing to generate another key")]
    KeyExists {
        /// The key label.
        label: String,
        /// The token label.
        token: String,
    },
    /// The key is not a secp256k1 EC key, or its public point is malformed.
    #[error("key {label:?} is not a usable secp256k1 key: {reason}")]
    WrongKeyType {
        /// The key label.
        label: String,
        /// What is wrong.
        reason: String,
    },
    /// The HSM kept returning signatures that do not verify against the public key.
    #[error("the HSM returned {attempts} signatures that do not verify against the public key; giving up")]
    InvalidSignature {
        /// How many signatures were tried.
        attempts: u32,
    },
    /// Too many consecutive failed logins were counted; the PIN is not tried again until an operator resets the count.
    #[error("token {token:?}: {failures} consecutive failed PIN logins; not trying the PIN again. Fix the PIN file, then reset the count: remove {} or call hsm::LoginAttempts::reset", path.display())]
    PinAttemptsExhausted {
        /// Label of the token.
        token: String,
        /// Failures counted.
        failures: u32,
        /// The counter file.
        path: PathBuf,
    },
    /// The failed-login counter file could not be read or written.
    #[error("PIN attempt counter {}: {reason}", path.display())]
    PinAttemptFile {
        /// The counter file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The PIN file could not be read, or is empty.
    #[error("PIN file {}: {reason}", path.display())]
    PinFile {
        /// The PIN file path.
        path: PathBuf,
        /// What is wrong (never the PIN).
        reason: String,
    },
    /// Any other PKCS#11 failure, named by the operation.
    #[error("PKCS#11 {op} failed: {source}")]
    Pkcs11 {
        /// The PKCS#11 function or step, e.g. "C_Sign".
        op: &'static str,
        /// The library's error.
        #[source]
        source: cryptoki::error::Error,
    },
}

fn format_labels(labels: &[String]) -> String {
    if labels.is_empty() {
        "none".to_string()
    } else {
        labels
            .iter()
            .map(|l| format!("{l:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Maps a cryptoki error to [`HsmError::Pkcs11`] for operation `op`.
pub(crate) fn p11(op: &'static str) -> impl FnOnce(cryptoki::error::Error) -> HsmError {
    move |source| HsmError::Pkcs11 { op, source }
}
