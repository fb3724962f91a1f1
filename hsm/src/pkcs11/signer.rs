//! `Pkcs11Signer`: signs digests with a secp256k1 key that never leaves the token.

use std::fmt;

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use secp256k1::ecdsa::Signature;
use secp256k1::PublicKey;

use super::context::context;
use super::key::{find_private_key, find_public_key, read_public_key_from, self_test_digest};
use super::token::{find_token, login_user, validate_token_label};
use super::TokenConfig;
use crate::error::p11;
use crate::verify::sign_verified;
use crate::{DigestSigner, HsmError, Pin};

/// Signs with a private key inside a PKCS#11 token, found by token label and key label.
///
/// Holds one logged-in session (login state is per application and token; it lasts while any session of the
/// process is open on the token). Raw `CKM_ECDSA` over the digest; the `r || s` result is normalised to low-S and
/// verified against the public key; an invalid signature is retried (see [`crate::MAX_SIGN_ATTEMPTS`]).
pub struct Pkcs11Signer {
    _context: Pkcs11,
    session: Session,
    private_key: ObjectHandle,
    public_key: PublicKey,
    token_label: String,
    key_label: String,
}

impl Pkcs11Signer {
    /// Loads the module (once per process), finds the token by label, logs in, finds the key pair by label and
    /// proves it with a self-test signature.
    pub fn open(cfg: &TokenConfig, pin: &Pin) -> Result<Self, HsmError> {
        validate_token_label(&cfg.token_label)?;
        let ctx = context(&cfg.module_path)?;
        let slot = find_token(&ctx, &cfg.token_label)?;
        let session = ctx.open_ro_session(slot).map_err(p11("C_OpenSession"))?;
        login_user(&session, pin, &cfg.token_label)?;
        let private_key = find_private_key(&session, cfg)?;
        let public_handle = find_public_key(&session, cfg)?;
        let public_key = read_public_key_from(&session, public_handle, &cfg.key_label)?;
        let mut signer = Pkcs11Signer {
            _context: ctx,
            session,
            private_key,
            public_key,
            token_label: cfg.token_label.clone(),
            key_label: cfg.key_label.clone(),
        };
        // Proves the private key belongs to the public key (a mismatched pair under one label fails here).
        signer.sign_digest(&self_test_digest())?;
        tracing::info!(target: "hsm", token = %cfg.token_label, key = %cfg.key_label, public_key = %public_key,
            "PKCS#11 signer ready");
        Ok(signer)
    }
}

impl Pkcs11Signer {
    /// Like [`open`](Self::open), counting failed logins in `attempts`: refuses without trying the PIN once the
    /// maximum of consecutive failures is reached ([`HsmError::PinAttemptsExhausted`]); a wrong PIN adds one; a
    /// successful open resets the count.
    pub fn open_counted(
        cfg: &TokenConfig,
        pin: &Pin,
        attempts: &crate::LoginAttempts,
    ) -> Result<Self, HsmError> {
        attempts.check(&cfg.token_label)?;
        match Self::open(cfg, pin) {
            Ok(signer) => {
                attempts.record_success()?;
                Ok(signer)
            }
            Err(e @ HsmError::PinIncorrect { .. }) => {
                let failures = attempts.record_failure()?;
                tracing::warn!(target: "hsm", token = %cfg.token_label, failures,
                    max = attempts.max_failures(), "PIN login failed");
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("token_label", &self.token_label)
            .field("key_label", &self.key_label)
            .field("public_key", &format_args!("{}", self.public_key))
            .finish_non_exhaustive()
    }
}

impl DigestSigner for Pkcs11Signer {
    fn public_key(&self) -> PublicKey {
        self.public_key
    }

    fn sign_digest(&mut self, digest: &[u8; 32]) -> Result<Signature, HsmError> {
        let (session, key) = (&self.session, self.private_key);
        sign_verified(&self.public_key, digest, || {
            session
                .sign(&Mechanism::Ecdsa, key, digest)
                .map_err(p11("C_Sign"))
        })
    }
}
