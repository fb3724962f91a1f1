//! Block-signing keys in a PKCS#11 token, and the policy that guards them.
//!
//! A PKCS#11 HSM only promises that the key never leaves the token; it signs whatever it is asked to sign. This
//! crate therefore enforces the signing policy in our own process, in this order (see [`BlockSigningGuard`]):
//!
//! 1. [`BlockSigningPolicy`] (pure): refuse a lower height, or a different block hash at an already signed height;
//! 2. [`SignerJournal`]: append the decision to an append-only, checksummed journal and `fdatasync` it;
//! 3. the [`DigestSigner`] (a [`Pkcs11Signer`] in production, a [`SoftwareSigner`] in tests and the simulator)
//!    signs the 32-byte digest;
//! 4. the signature is normalised to low-S and verified against the public key before it is returned.
//!
//! What this does NOT protect against (threat model): a PKCS#11 token guarantees only that the key can't be
//! extracted. A compromised host can open the token with the PIN and sign anything; the policy binds only signers
//! that go through this guard. The journal's lock stops two guards on one journal file, not two machines holding
//! the same key with separate journals.
//!
//! Token ceremony helpers ([`init_token`], [`generate_key`], [`read_public_key`]) serve the admin CLI and the devnet.
//! With the `testing` feature, [`softhsm_testing`] gives each process its own SoftHSM token directory.

mod error;
mod guard;
mod journal;
mod pin;
mod pkcs11;
mod policy;
mod software;
mod verify;

#[cfg(any(test, feature = "testing"))]
pub mod softhsm_testing;

pub use error::HsmError;
pub use guard::{BlockSigningGuard, GuardError};
pub use journal::{JournalError, JournalRecord, SignerJournal};
pub use pin::Pin;
pub use pkcs11::{generate_key, init_token, read_public_key, Pkcs11Signer, TokenConfig};
pub use policy::{BlockSigningPolicy, Refusal, SignedBlock};
pub use software::SoftwareSigner;
pub use verify::{verify_digest_signature, MAX_SIGN_ATTEMPTS};

/// Anything that signs a 32-byte digest with a secp256k1 key.
///
/// Returned signatures are low-S and have been VERIFIED against [`DigestSigner::public_key`] over the digest before
/// they are returned (`secp256k1::Message::from_digest(*digest)`).
pub trait DigestSigner: Send {
    /// The public key whose private half signs.
    fn public_key(&self) -> secp256k1::PublicKey;
    /// Signs `digest` (already hashed; it is signed as is), returns a verified low-S signature.
    fn sign_digest(&mut self, digest: &[u8; 32]) -> Result<secp256k1::ecdsa::Signature, HsmError>;
}

impl<T: DigestSigner + ?Sized> DigestSigner for Box<T> {
    fn public_key(&self) -> secp256k1::PublicKey {
        (**self).public_key()
    }
    fn sign_digest(&mut self, digest: &[u8; 32]) -> Result<secp256k1::ecdsa::Signature, HsmError> {
        (**self).sign_digest(digest)
    }
}
