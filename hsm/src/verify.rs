//! Turning raw HSM output into a verified low-S signature, with bounded retries.

use secp256k1::ecdsa::Signature;
use secp256k1::{Message, PublicKey, SECP256K1};

use crate::HsmError;

/// How many signatures the PKCS#11 signer asks for before giving up with [`HsmError::InvalidSignature`]: the first
/// attempt plus 3 retries. (SoftHSM with OpenSSL 3 has a reported bug returning invalid secp256k1 signatures.)
pub const MAX_SIGN_ATTEMPTS: u32 = 4;

/// True when `sig` is a valid signature by `public_key` over `digest` (signed as is, not hashed again).
/// libsecp256k1 accepts only low-S signatures, so this also checks the signature is low-S.
pub fn verify_digest_signature(public_key: &PublicKey, digest: &[u8; 32], sig: &Signature) -> bool {
    SECP256K1
        .verify_ecdsa(&Message::from_digest(*digest), sig, public_key)
        .is_ok()
}

/// Asks `raw_sign` for a raw `r || s` signature (64 bytes, as CKM_ECDSA returns it) up to [`MAX_SIGN_ATTEMPTS`] times,
/// normalises each to low-S and returns the first that verifies. Errors of `raw_sign` itself end the loop at once.
pub(crate) fn sign_verified(
    public_key: &PublicKey,
    digest: &[u8; 32],
    mut raw_sign: impl FnMut() -> Result<Vec<u8>, HsmError>,
) -> Result<Signature, HsmError> {
    for attempt in 1..=MAX_SIGN_ATTEMPTS {
        let raw = raw_sign()?;
        match Signature::from_compact(&raw) {
            Ok(mut sig) => {
                sig.normalize_s();
                if verify_digest_signature(public_key, digest, &sig) {
                    return Ok(sig);
                }
                tracing::warn!(target: "hsm", attempt, max = MAX_SIGN_ATTEMPTS, digest = %hex::encode(digest),
                    "HSM signature does not verify against the public key; retrying");
            }
            Err(e) => {
                tracing::warn!(target: "hsm", attempt, max = MAX_SIGN_ATTEMPTS, len = raw.len(), error = %e,
                    "HSM returned a malformed raw ECDSA signature; retrying");
            }
        }
    }
    Err(HsmError::InvalidSignature {
        attempts: MAX_SIGN_ATTEMPTS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secp256k1::SecretKey;

    fn key() -> (SecretKey, PublicKey) {
        let sk = SecretKey::from_slice(&[7u8; 32]).unwrap();
        (sk, PublicKey::from_secret_key(SECP256K1, &sk))
    }

    /// A high-S version of a valid signature: s' = n - s.
    fn high_s(sig: &Signature) -> [u8; 64] {
        const N: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c,
            0xd0, 0x36, 0x41, 0x41,
        ];
        let mut compact = sig.serialize_compact();
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let v = N[i] as i16 - compact[32 + i] as i16 - borrow;
            borrow = i16::from(v < 0);
            compact[32 + i] = v.rem_euclid(256) as u8;
        }
        compact
    }

    #[test]
    fn high_s_is_normalised_and_verified() {
        let (sk, pk) = key();
        let digest = [3u8; 32];
        let low = SECP256K1.sign_ecdsa(&Message::from_digest(digest), &sk);
        let raw = high_s(&low);
        // The raw high-S form does not verify as is ...
        assert!(!verify_digest_signature(
            &pk,
            &digest,
            &Signature::from_compact(&raw).unwrap()
        ));
        // ... but sign_verified normalises it.
        let sig = sign_verified(&pk, &digest, || Ok(raw.to_vec())).unwrap();
        assert_eq!(sig, low);
    }

    #[test]
    fn invalid_signatures_are_retried_then_accepted() {
        let (sk, pk) = key();
        let digest = [4u8; 32];
        let good = SECP256K1
            .sign_ecdsa(&Message::from_digest(digest), &sk)
            .serialize_compact();
        let mut calls = 0u32;
        let sig = sign_verified(&pk, &digest, || {
            calls += 1;
            Ok(match calls {
                1 => vec![1u8; 10],      // malformed length
                2 => [5u8; 64].to_vec(), // well-formed, wrong
                _ => good.to_vec(),
            })
        })
        .unwrap();
        assert_eq!(calls, 3);
        assert!(verify_digest_signature(&pk, &digest, &sig));
    }

    #[test]
    fn always_invalid_gives_invalid_signature_after_max_attempts() {
        let (_, pk) = key();
        let mut calls = 0u32;
        let err = sign_verified(&pk, &[9u8; 32], || {
            calls += 1;
            Ok([5u8; 64].to_vec())
        })
        .unwrap_err();
        assert!(
            matches!(
                err,
                HsmError::InvalidSignature {
                    attempts: MAX_SIGN_ATTEMPTS
                }
            ),
            "{err:?}"
        );
        assert_eq!(calls, MAX_SIGN_ATTEMPTS);
    }
}
