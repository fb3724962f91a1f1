//! In-process software signer for unit tests and the simulator. Not for production keys.

use std::fmt;

use secp256k1::ecdsa::Signature;
use secp256k1::{Message, PublicKey, SecretKey, SECP256K1};

use crate::verify::verify_digest_signature;
use crate::{DigestSigner, HsmError};

/// Signs with a secret key held in process memory. `Debug` shows only the public key.
pub struct SoftwareSigner {
    secret: SecretKey,
    public: PublicKey,
}

impl SoftwareSigner {
    /// A signer for `secret`.
    pub fn new(secret: SecretKey) -> Self {
        let public = PublicKey::from_secret_key(SECP256K1, &secret);
        SoftwareSigner { secret, public }
    }
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareSigner")
            .field("public_key", &format_args!("{}", self.public))
            .finish_non_exhaustive()
    }
}

impl DigestSigner for SoftwareSigner {
    fn public_key(&self) -> PublicKey {
        self.public
    }

    fn sign_digest(&mut self, digest: &[u8; 32]) -> Result<Signature, HsmError> {
        // libsecp256k1 signs deterministically (RFC 6979) and always low-S; verify anyway, as the trait promises.
        let mut sig = SECP256K1.sign_ecdsa(&Message::from_digest(*digest), &self.secret);
        sig.normalize_s();
        if verify_digest_signature(&self.public, digest, &sig) {
            Ok(sig)
        } else {
            Err(HsmError::InvalidSignature { attempts: 1 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_signatures_verify_and_debug_hides_the_secret() {
        let secret = SecretKey::from_slice(&[0x42; 32]).unwrap();
        let mut signer = SoftwareSigner::new(secret);
        for i in 0u8..50 {
            let digest = [i; 32];
            let sig = signer.sign_digest(&digest).unwrap();
            assert!(verify_digest_signature(&signer.public_key(), &digest, &sig));
            assert!(!verify_digest_signature(
                &signer.public_key(),
                &[i.wrapping_add(1); 32],
                &sig
            ));
        }
        let debug = format!("{signer:?}");
        assert!(
            !debug.contains(&hex::encode(secret.secret_bytes())),
            "{debug}"
        );
        assert!(debug.contains(&signer.public_key().to_string()), "{debug}");
    }
}
