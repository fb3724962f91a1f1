//! Block-signature encoding rules: strict DER (BIP66), LOW_S, and the trailing sighash byte.
//!
//! Elements evaluates block proofs with `STRICTENC | LOW_S` (E `src/block_proof.cpp`). Dynafed signatures are
//! DER followed by exactly one `0x01` (SIGHASH_ALL) byte, which is stripped before verification; legacy signatures
//! (`SCRIPT_NO_SIGHASH_BYTE`) are bare DER.

use crate::error::ProofError;
use secp256k1::ecdsa::Signature;

/// The only sighash byte Elements accepts on dynafed block signatures (SIGHASH_ALL).
pub const SIGHASH_ALL: u8 = 0x01;

/// Whether a signature carries a trailing sighash byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SighashMode {
    /// Dynafed: DER followed by exactly one 0x01 byte.
    TrailingAll,
    /// Legacy (`SCRIPT_NO_SIGHASH_BYTE`): bare DER.
    NoSighashByte,
}

/// Bitcoin Core's `IsValidSignatureEncoding` (BIP66), applied to the DER bytes alone (no sighash byte):
/// `0x30 len 0x02 lenR R 0x02 lenS S`, minimal lengths, no negative or needlessly padded integers.
pub(crate) fn is_strict_der(der: &[u8]) -> bool {
    let len = der.len();
    if !(8..=72).contains(&len) {
        return false;
    }
    let byte = |i: usize| der.get(i).copied();
    if byte(0) != Some(0x30) || byte(1).map(usize::from) != Some(len - 2) {
        return false;
    }
    let Some(len_r) = byte(3).map(usize::from) else {
        return false;
    };
    if 4 + len_r >= len {
        return false;
    }
    let Some(len_s) = byte(5 + len_r).map(usize::from) else {
        return false;
    };
    if len_r + len_s + 6 != len {
        return false;
    }
    if byte(2) != Some(0x02) || len_r == 0 {
        return false;
    }
    let (Some(r0), Some(r1)) = (byte(4), byte(5)) else {
        return false;
    };
    if r0 & 0x80 != 0 || (len_r > 1 && r0 == 0 && r1 & 0x80 == 0) {
        return false;
    }
    if byte(len_r + 4) != Some(0x02) || len_s == 0 {
        return false;
    }
    let Some(s0) = byte(len_r + 6) else {
        return false;
    };
    if s0 & 0x80 != 0 {
        return false;
    }
    if len_s > 1 && s0 == 0 {
        match byte(len_r + 7) {
            Some(s1) if s1 & 0x80 != 0 => {}
            _ => return false,
        }
    }
    true
}

/// Parses one block signature under the given mode, enforcing strict DER, LOW_S and (dynafed) the 0x01 sighash
/// byte, in that order (Core's `CheckSignatureEncoding` order). `index` only labels the error.
pub(crate) fn parse_block_signature(
    raw: &[u8],
    mode: SighashMode,
    index: usize,
) -> Result<Signature, ProofError> {
    let (der, sighash) = match mode {
        SighashMode::NoSighashByte => (raw, None),
        SighashMode::TrailingAll => {
            if is_strict_der(raw) {
                return Err(ProofError::MissingSighashByte { index });
            }
            match raw.split_last() {
                Some((last, der)) => (der, Some(*last)),
                None => return Err(ProofError::NonStrictDer { index }),
            }
        }
    };
    if !is_strict_der(der) {
        return Err(ProofError::NonStrictDer { index });
    }
    // Strict DER already checked; from_der additionally rejects r or s not below the group order.
    let signature = Signature::from_der(der).map_err(|_| ProofError::NonStrictDer { index })?;
    let mut normalized = signature;
    normalized.normalize_s();
    if normalized != signature {
        return Err(ProofError::HighS { index });
    }
    if let Some(byte) = sighash {
        if byte != SIGHASH_ALL {
            return Err(ProofError::WrongSighashByte { index, byte });
        }
    }
    Ok(signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_der() -> Vec<u8> {
        let secret = secp256k1::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let message = secp256k1::Message::from_digest([9u8; 32]);
        secp256k1::SECP256K1
            .sign_ecdsa(&message, &secret)
            .serialize_der()
            .to_vec()
    }

    #[test]
    fn strict_der_accepts_libsecp_output_and_rejects_mutations() {
        let der = sample_der();
        assert!(is_strict_der(&der));
        let mut bad_tag = der.clone();
        bad_tag[0] = 0x31;
        assert!(!is_strict_der(&bad_tag));
        let mut bad_len = der.clone();
        bad_len[1] += 1;
        assert!(!is_strict_der(&bad_len));
        let mut padded = der.clone();
        padded.push(0);
        assert!(!is_strict_der(&padded));
        assert!(!is_strict_der(&[]));
        assert!(!is_strict_der(&der[..der.len() - 1]));
    }

    #[test]
    fn strict_der_rejects_negative_and_padded_integers() {
        // r = 0x80 (negative), s = 0x01
        assert!(!is_strict_der(&[
            0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01
        ]));
        // r = 0x00 0x01 (needless padding)
        assert!(!is_strict_der(&[
            0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01
        ]));
        // r = 0x00 0x80 (padding needed): fine
        assert!(is_strict_der(&[
            0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x01
        ]));
        // s = 0x00 0x01 (needless padding)
        assert!(!is_strict_der(&[
            0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x01
        ]));
    }

    #[test]
    fn sighash_byte_rules() {
        let der = sample_der();
        assert_eq!(
            parse_block_signature(&der, SighashMode::TrailingAll, 3),
            Err(ProofError::MissingSighashByte { index: 3 })
        );
        let mut wrong = der.clone();
        wrong.push(0x02);
        assert_eq!(
            parse_block_signature(&wrong, SighashMode::TrailingAll, 1),
            Err(ProofError::WrongSighashByte {
                index: 1,
                byte: 0x02
            })
        );
        let mut good = der.clone();
        good.push(0x01);
        assert!(parse_block_signature(&good, SighashMode::TrailingAll, 0).is_ok());
        assert!(parse_block_signature(&der, SighashMode::NoSighashByte, 0).is_ok());
        assert_eq!(
            parse_block_signature(&good, SighashMode::NoSighashByte, 0),
            Err(ProofError::NonStrictDer { index: 0 })
        );
    }
}
