//! PKCS#11 access: the process-wide context, token and key lookup by label, the ceremony helpers and the signer.

pub(crate) mod context;
mod key;
mod signer;
mod token;

use std::path::PathBuf;

pub use key::{generate_key, read_public_key};
pub use signer::Pkcs11Signer;
pub use token::init_token;

/// Where a block-signing key lives: module, token label and key label. Tokens and keys are always found by label,
/// never by slot number (SoftHSM slot ids change after `C_InitToken`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenConfig {
    /// Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module_path: PathBuf,
    /// Label of the token (at most 32 bytes).
    pub token_label: String,
    /// Label (CKA_LABEL) of the key pair.
    pub key_label: String,
}
