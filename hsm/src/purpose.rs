//! Keys by purpose, with fixed label conventions.

use std::fmt;
use std::path::Path;

use secp256k1::PublicKey;

use crate::{generate_key, read_public_key, HsmError, Pin, TokenConfig};

/// What a key in the token is for. Each purpose has one key per token, under a fixed label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// Signs sidechain blocks (through [`crate::BlockSigningGuard`]).
    BlockSigning,
    /// Signs Bitcoin peg-out transactions of the federation multisig (through [`crate::TxSigningGuard`]).
    PegWallet,
}

impl KeyPurpose {
    /// Every purpose.
    pub const ALL: [KeyPurpose; 2] = [KeyPurpose::BlockSigning, KeyPurpose::PegWallet];

    /// The CKA_LABEL of this purpose's key pair: `block-signing` or `peg-wallet`.
    pub fn label(self) -> &'static str {
        match self {
            KeyPurpose::BlockSigning => "block-signing",
            KeyPurpose::PegWallet => "peg-wallet",
        }
    }

    /// The purpose whose label is `label`.
    pub fn from_label(label: &str) -> Option<KeyPurpose> {
        Self::ALL.into_iter().find(|p| p.label() == label)
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl TokenConfig {
    /// The config of `purpose`'s key on the token `token_label` of the module `module_path`.
    pub fn for_purpose(module_path: &Path, token_label: &str, purpose: KeyPurpose) -> TokenConfig {
        TokenConfig {
            module_path: module_path.to_path_buf(),
            token_label: token_label.to_string(),
            key_label: purpose.label().to_string(),
        }
    }
}

/// Generates `purpose`'s key inside the token (sensitive, never extractable, sign-only); refuses with
/// [`HsmError::KeyExists`] when its label is taken (never a second key).
pub fn generate_purpose_key(
    module_path: &Path,
    token_label: &str,
    purpose: KeyPurpose,
    pin: &Pin,
) -> Result<PublicKey, HsmError> {
    generate_key(
        &TokenConfig::for_purpose(module_path, token_label, purpose),
        pin,
    )
}

/// The public key of `purpose`'s key, found by label.
pub fn purpose_public_key(
    module_path: &Path,
    token_label: &str,
    purpose: KeyPurpose,
    pin: &Pin,
) -> Result<PublicKey, HsmError> {
    read_public_key(
        &TokenConfig::for_purpose(module_path, token_label, purpose),
        pin,
    )
}
