//! The `OP_m <33-byte pk>*n OP_n OP_CHECKMULTISIG` template and CHECKMULTISIG evaluated as Elements does.
//!
//! Core/Elements semantics (`src/script/interpreter.cpp`, `OP_CHECKMULTISIG`): the stack holds
//! `[dummy, sig_1..sig_k]`; the walk starts at the last signature and the last key and moves backwards; a key is
//! used up whether or not it matched; it fails as soon as more signatures remain than keys. A signature's encoding
//! (strict DER, LOW_S, sighash byte) and a key's encoding are only checked when they are compared, exactly like
//! Core. With CLEANSTACK (and segwit's implicit clean stack) the stack must hold exactly `m` signatures plus the
//! dummy, and NULLDUMMY requires the dummy to be empty.

use crate::error::ProofError;
use crate::signature::{parse_block_signature, SighashMode};
use secp256k1::{Message, PublicKey, SECP256K1};

/// `OP_1`..`OP_16` are `0x51`..`0x60`.
const OP_1_MINUS_ONE: u8 = 0x50;
/// One key push: `0x21` followed by 33 bytes.
const KEY_PUSH_LEN: usize = 34;
/// `OP_CHECKMULTISIG`.
pub(crate) const OP_CHECKMULTISIG: u8 = 0xae;
/// Push opcode for 33 bytes.
pub(crate) const OP_PUSHBYTES_33: u8 = 0x21;
/// The largest n the template supports (OP_16 is the largest small-integer opcode).
pub(crate) const MAX_TEMPLATE_KEYS: usize = 16;

/// A script that matched the multisig template; keys are read from the script bytes without copying.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MultisigTemplate<'a> {
    script: &'a [u8],
    threshold: usize,
    key_count: usize,
}

impl<'a> MultisigTemplate<'a> {
    /// Matches `script` against `OP_m <33-byte push>*n OP_n OP_CHECKMULTISIG` with `1 <= m <= n <= 16`.
    pub(crate) fn parse(script: &'a [u8]) -> Result<Self, ProofError> {
        let unsupported = |reason: String| ProofError::UnsupportedScript { reason };
        let len = script.len();
        if len < 3 + KEY_PUSH_LEN || !(len - 3).is_multiple_of(KEY_PUSH_LEN) {
            return Err(unsupported(format!(
                "{len}-byte script is not OP_m <33-byte key>*n OP_n OP_CHECKMULTISIG"
            )));
        }
        let key_count = (len - 3) / KEY_PUSH_LEN;
        let small_int = |byte: Option<&u8>| match byte {
            Some(&b) if (0x51..=0x60).contains(&b) => Some(usize::from(b - OP_1_MINUS_ONE)),
            _ => None,
        };
        let threshold = small_int(script.first())
            .ok_or_else(|| unsupported("first opcode is not OP_1..OP_16".to_string()))?;
        let n = small_int(script.get(len - 2)).ok_or_else(|| {
            unsupported("opcode before OP_CHECKMULTISIG is not OP_1..OP_16".to_string())
        })?;
        if script.last() != Some(&OP_CHECKMULTISIG) {
            return Err(unsupported(
                "last opcode is not OP_CHECKMULTISIG".to_string(),
            ));
        }
        if n != key_count {
            return Err(unsupported(format!("OP_{n} but {key_count} keys")));
        }
        if threshold > n {
            return Err(unsupported(format!(
                "threshold {threshold} above key count {n}"
            )));
        }
        for i in 0..key_count {
            if script.get(1 + i * KEY_PUSH_LEN) != Some(&OP_PUSHBYTES_33) {
                return Err(unsupported(format!("key {i} is not a 33-byte push")));
            }
        }
        Ok(MultisigTemplate {
            script,
            threshold,
            key_count,
        })
    }

    /// m.
    pub(crate) fn threshold(&self) -> usize {
        self.threshold
    }

    /// The raw 33 bytes of key `i`.
    fn key_bytes(&self, i: usize) -> Option<&'a [u8]> {
        let start = 2 + i * KEY_PUSH_LEN;
        self.script.get(start..start + 33)
    }
}

/// Builds `OP_m <pk>*n OP_n OP_CHECKMULTISIG` (keys in the given order). Needs `1 <= m <= n <= 16`.
pub(crate) fn multisig_script_bytes(threshold: usize, keys: &[PublicKey]) -> Vec<u8> {
    let mut script = Vec::with_capacity(3 + keys.len() * KEY_PUSH_LEN);
    script.push(OP_1_MINUS_ONE + small_u8(threshold));
    for key in keys {
        script.push(OP_PUSHBYTES_33);
        script.extend_from_slice(&key.serialize());
    }
    script.push(OP_1_MINUS_ONE + small_u8(keys.len()));
    script.push(OP_CHECKMULTISIG);
    script
}

/// Clamps a small count (1..=16 by construction) into a byte without panicking.
fn small_u8(value: usize) -> u8 {
    u8::try_from(value.min(MAX_TEMPLATE_KEYS)).unwrap_or(16)
}

/// Where the keys of a CHECKMULTISIG come from.
pub(crate) enum KeySource<'a> {
    /// Keys already parsed (our federation's params): no per-block parsing.
    Parsed(&'a [PublicKey]),
    /// Keys read from a script that matched the template; parsed when compared.
    Template(MultisigTemplate<'a>),
}

impl KeySource<'_> {
    fn len(&self) -> usize {
        match self {
            KeySource::Parsed(keys) => keys.len(),
            KeySource::Template(t) => t.key_count,
        }
    }

    /// Key `i`, checked like Core's `CheckPubKeyEncoding` under STRICTENC (0x02/0x03 prefix for 33 bytes).
    /// `Ok(None)` for a well-encoded key that is not on the curve: it can never match.
    fn key(&self, i: usize) -> Result<Option<PublicKey>, ProofError> {
        match self {
            KeySource::Parsed(keys) => Ok(keys.get(i).copied()),
            KeySource::Template(t) => {
                let bytes = t
                    .key_bytes(i)
                    .ok_or_else(|| ProofError::UnsupportedScript {
                        reason: format!("key {i} missing"),
                    })?;
                match bytes.first() {
                    Some(0x02) | Some(0x03) => Ok(PublicKey::from_slice(bytes).ok()),
                    _ => Err(ProofError::UnsupportedScript {
                        reason: format!("key {i} is not a compressed public key encoding"),
                    }),
                }
            }
        }
    }
}

/// Evaluates CHECKMULTISIG (with NULLDUMMY and clean-stack) over `stack = [dummy, sig_1..sig_k]`.
/// Returns the keys that signed, in key order.
pub(crate) fn check_multisig<T: AsRef<[u8]>>(
    keys: &KeySource<'_>,
    threshold: usize,
    stack: &[T],
    digest: &[u8; 32],
    mode: SighashMode,
) -> Result<Vec<PublicKey>, ProofError> {
    let Some((dummy, sigs)) = stack.split_first() else {
        return Err(ProofError::WrongSignatureCount {
            found: 0,
            expected: threshold,
        });
    };
    if sigs.len() != threshold {
        return Err(ProofError::WrongSignatureCount {
            found: sigs.len(),
            expected: threshold,
        });
    }
    if !dummy.as_ref().is_empty() {
        return Err(ProofError::NonEmptyDummy);
    }
    let message = Message::from_digest(*digest);
    let mut signers = Vec::with_capacity(threshold);
    let mut sigs_left = sigs.len();
    let mut keys_left = keys.len();
    let mut current: Option<(usize, secp256k1::ecdsa::Signature)> = None;
    while sigs_left > 0 {
        let sig_index = sigs_left - 1;
        if sigs_left > keys_left {
            return Err(ProofError::SignatureNotMatched { index: sig_index });
        }
        let signature = match current {
            Some((index, sig)) if index == sig_index => sig,
            _ => {
                let raw = sigs.get(sig_index).map(AsRef::as_ref).unwrap_or_default();
                let sig = parse_block_signature(raw, mode, sig_index)?;
                current = Some((sig_index, sig));
                sig
            }
        };
        let key_index = keys_left - 1;
        if let Some(key) = keys.key(key_index)? {
            if SECP256K1.verify_ecdsa(&message, &signature, &key).is_ok() {
                signers.push(key);
                sigs_left -= 1;
            }
        }
        keys_left -= 1;
    }
    signers.reverse();
    Ok(signers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: u8) -> Vec<PublicKey> {
        (1..=n)
            .map(|i| {
                let secret = secp256k1::SecretKey::from_slice(&[i; 32]).unwrap();
                PublicKey::from_secret_key(SECP256K1, &secret)
            })
            .collect()
    }

    #[test]
    fn template_roundtrip() {
        let keys = keys(3);
        let script = multisig_script_bytes(2, &keys);
        assert_eq!(script.len(), 3 + 3 * 34);
        let t = MultisigTemplate::parse(&script).unwrap();
        assert_eq!(t.threshold(), 2);
        assert_eq!(t.key_count, 3);
        assert_eq!(t.key_bytes(2).unwrap(), &keys[2].serialize()[..]);
    }

    #[test]
    fn template_rejects_variants() {
        let keys = keys(3);
        let good = multisig_script_bytes(2, &keys);
        let mut wrong_n = good.clone();
        wrong_n[good.len() - 2] = 0x52;
        assert!(matches!(
            MultisigTemplate::parse(&wrong_n),
            Err(ProofError::UnsupportedScript { .. })
        ));
        let mut m_above_n = good.clone();
        m_above_n[0] = 0x54;
        assert!(MultisigTemplate::parse(&m_above_n).is_err());
        let mut not_cms = good.clone();
        *not_cms.last_mut().unwrap() = 0xaf;
        assert!(MultisigTemplate::parse(&not_cms).is_err());
        let mut bad_push = good.clone();
        bad_push[1] = 0x20;
        assert!(MultisigTemplate::parse(&bad_push).is_err());
        assert!(MultisigTemplate::parse(&good[..good.len() - 1]).is_err());
        assert!(MultisigTemplate::parse(&[]).is_err());
        let mut zero_m = good;
        zero_m[0] = 0x00;
        assert!(MultisigTemplate::parse(&zero_m).is_err());
    }
}
