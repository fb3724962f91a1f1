//! Elements header-proof verification: the dynafed signblock witness and the legacy challenge/solution.
//!
//! Both follow E `src/block_proof.cpp` `CheckProof`, which runs `VerifyScript` with
//! `P2SH | STRICTENC | NULLDUMMY | CLEANSTACK | MINIMALDATA | SIGPUSHONLY | LOW_S | WITNESS` (plus
//! `NO_SIGHASH_BYTE` for legacy proofs). Only the multisig template is supported; anything else is rejected with
//! "unsupported script".

use crate::build::signing_digest;
use crate::error::ProofError;
use crate::multisig::{check_multisig, KeySource, MultisigTemplate};
use crate::params::FederationParams;
use crate::signature::SighashMode;
use elements::hashes::sha256;
use elements::BlockExtData;

/// Consensus limit on a witness stack element and a script push (`MAX_SCRIPT_ELEMENT_SIZE`).
const MAX_SCRIPT_ELEMENT_SIZE: usize = 520;
/// Consensus limit on a script's size (`MAX_SCRIPT_SIZE`).
const MAX_SCRIPT_SIZE: usize = 10_000;

/// Elements dynafed rule, exactly: current.signblockscript must equal `expected_signblockscript` (a P2WSH
/// program); witness = `[<empty>, sig_1..sig_k, witnessScript]`; SHA256(witnessScript) must equal the program;
/// witness serialized size <= current.signblock_witness_limit; witnessScript must be the
/// `OP_m <pk>*n OP_n OP_CHECKMULTISIG` template (else error "unsupported script"); CHECKMULTISIG semantics exactly
/// as Elements evaluates it (NULLDUMMY: first item empty; signatures matched against keys in key order (Core's
/// backward walk), each key used at most once, a non-matching key consumed; k must be exactly m (CLEANSTACK);
/// strict DER; LOW_S; last byte must be 0x01 and is stripped before verifying).
/// Returns the public keys that signed, in key order.
pub fn verify_dynafed_proof(
    header: &elements::BlockHeader,
    expected_signblockscript: &elements::Script,
) -> Result<Vec<secp256k1::PublicKey>, ProofError> {
    verify_dynafed(header, expected_signblockscript, None)
}

/// [`verify_dynafed_proof`], using the already parsed keys of `known` when the witness script is its script.
pub(crate) fn verify_dynafed(
    header: &elements::BlockHeader,
    expected_signblockscript: &elements::Script,
    known: Option<&FederationParams>,
) -> Result<Vec<secp256k1::PublicKey>, ProofError> {
    let BlockExtData::Dynafed {
        current,
        signblock_witness,
        ..
    } = &header.ext
    else {
        return Err(ProofError::NotDynafed);
    };
    let (Some(signblockscript), Some(limit)) =
        (current.signblockscript(), current.signblock_witness_limit())
    else {
        return Err(ProofError::NullCurrentParams);
    };
    if signblockscript != expected_signblockscript {
        return Err(ProofError::SignblockscriptMismatch {
            expected: hex::encode(expected_signblockscript.as_bytes()),
            found: hex::encode(signblockscript.as_bytes()),
        });
    }
    let program =
        p2wsh_program(expected_signblockscript.as_bytes()).ok_or_else(|| ProofError::NotP2wsh {
            script: hex::encode(expected_signblockscript.as_bytes()),
        })?;
    let Some((witness_script, stack)) = signblock_witness.split_last() else {
        return Err(ProofError::EmptyWitness);
    };
    let size = witness_serialized_size(signblock_witness);
    if size > usize::try_from(limit).unwrap_or(usize::MAX) {
        return Err(ProofError::WitnessTooLarge { size, limit });
    }
    if sha256::Hash::hash(witness_script).as_byte_array() != program {
        return Err(ProofError::WitnessScriptHashMismatch);
    }
    if let Some((index, item)) = stack
        .iter()
        .enumerate()
        .find(|(_, item)| item.len() > MAX_SCRIPT_ELEMENT_SIZE)
    {
        return Err(ProofError::WitnessItemTooLarge {
            index,
            len: item.len(),
        });
    }
    let digest = signing_digest(header);
    match known {
        Some(params) if params.witness_script().as_bytes() == witness_script.as_slice() => {
            check_multisig(
                &KeySource::Parsed(params.sorted_keys()),
                params.threshold(),
                stack,
                &digest,
                SighashMode::TrailingAll,
            )
        }
        _ => {
            let template = MultisigTemplate::parse(witness_script)?;
            check_multisig(
                &KeySource::Template(template),
                template.threshold(),
                stack,
                &digest,
                SighashMode::TrailingAll,
            )
        }
    }
}

/// Legacy (pre-dynafed) signed-block rule: header's challenge must equal `expected_challenge` (a bare multisig);
/// solution is a push-only scriptSig `OP_0 <sig>...` with minimal pushes; signatures carry NO sighash byte; same
/// multisig semantics as [`verify_dynafed_proof`]. Elements also bounds the solution by the chain's
/// `max_block_signature_size`, which this function does not know; only the generic 10,000-byte script limit is
/// applied. Returns the public keys that signed, in key order.
pub fn verify_legacy_proof(
    header: &elements::BlockHeader,
    expected_challenge: &elements::Script,
) -> Result<Vec<secp256k1::PublicKey>, ProofError> {
    let BlockExtData::Proof {
        challenge,
        solution,
    } = &header.ext
    else {
        return Err(ProofError::NotLegacy);
    };
    if challenge != expected_challenge {
        return Err(ProofError::ChallengeMismatch {
            expected: hex::encode(expected_challenge.as_bytes()),
            found: hex::encode(challenge.as_bytes()),
        });
    }
    let template = MultisigTemplate::parse(challenge.as_bytes())?;
    let stack = parse_push_only(solution.as_bytes())?;
    let digest = signing_digest(header);
    check_multisig(
        &KeySource::Template(template),
        template.threshold(),
        &stack,
        &digest,
        SighashMode::NoSighashByte,
    )
}

/// The 32-byte program of a P2WSH script `0x00 0x20 <32 bytes>`.
fn p2wsh_program(script: &[u8]) -> Option<&[u8; 32]> {
    match script {
        [0x00, 0x20, program @ ..] => program.try_into().ok(),
        _ => None,
    }
}

/// Serialized size of a witness stack: compact-size count, then each item as compact-size length + bytes
/// (Elements `CScriptWitness::GetSerializedSize`).
pub(crate) fn witness_serialized_size(witness: &[Vec<u8>]) -> usize {
    witness
        .iter()
        .fold(compact_size_len(witness.len()), |acc, item| {
            acc.saturating_add(compact_size_len(item.len()))
                .saturating_add(item.len())
        })
}

/// Length of Bitcoin's compact-size encoding of `n`.
pub(crate) fn compact_size_len(n: usize) -> usize {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// The 1-byte values pushed by `OP_1`..`OP_16`.
static SMALL_INTS: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
/// The value pushed by `OP_1NEGATE`.
static NEGATIVE_ONE: [u8; 1] = [0x81];

/// Executes a push-only script under SIGPUSHONLY and MINIMALDATA and returns the resulting stack.
fn parse_push_only(script: &[u8]) -> Result<Vec<&[u8]>, ProofError> {
    let invalid = |reason: String| ProofError::InvalidSolution { reason };
    if script.len() > MAX_SCRIPT_SIZE {
        return Err(invalid(format!(
            "{} bytes exceeds the script size limit",
            script.len()
        )));
    }
    let mut stack: Vec<&[u8]> = Vec::new();
    let mut pos = 0usize;
    while let Some(&opcode) = script.get(pos) {
        let at = pos;
        pos += 1;
        let data_len = match opcode {
            0x00 => 0,
            0x01..=0x4b => usize::from(opcode),
            0x4c => read_le(script, &mut pos, 1)
                .ok_or_else(|| invalid(format!("truncated push at {at}")))?,
            0x4d => read_le(script, &mut pos, 2)
                .ok_or_else(|| invalid(format!("truncated push at {at}")))?,
            0x4e => read_le(script, &mut pos, 4)
                .ok_or_else(|| invalid(format!("truncated push at {at}")))?,
            0x4f => {
                stack.push(&NEGATIVE_ONE);
                continue;
            }
            0x51..=0x60 => {
                let index = usize::from(opcode - 0x51);
                stack.push(SMALL_INTS.get(index..=index).unwrap_or_default());
                continue;
            }
            _ => {
                return Err(invalid(format!(
                    "opcode {opcode:#04x} at {at} is not a push"
                )))
            }
        };
        let end = pos
            .checked_add(data_len)
            .filter(|end| *end <= script.len())
            .ok_or_else(|| invalid(format!("push at {at} runs past the end")))?;
        let data = script.get(pos..end).unwrap_or_default();
        pos = end;
        if data.len() > MAX_SCRIPT_ELEMENT_SIZE {
            return Err(invalid(format!("push at {at} is {} bytes", data.len())));
        }
        if !is_minimal_push(opcode, data) {
            return Err(invalid(format!("push at {at} is not minimally encoded")));
        }
        stack.push(data);
    }
    Ok(stack)
}

/// Reads a little-endian length of `width` bytes.
fn read_le(script: &[u8], pos: &mut usize, width: usize) -> Option<usize> {
    let bytes = script.get(*pos..pos.checked_add(width)?)?;
    *pos += width;
    Some(
        bytes
            .iter()
            .rev()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
    )
}

/// Core's `CheckMinimalPush` for a data push (opcodes 0x00..=0x4e).
fn is_minimal_push(opcode: u8, data: &[u8]) -> bool {
    match data {
        [] => opcode == 0x00,
        [b] if (1..=16).contains(b) => false,
        [0x81] => false,
        _ if data.len() <= 75 => usize::from(opcode) == data.len(),
        _ if data.len() <= 255 => opcode == 0x4c,
        _ if data.len() <= 65535 => opcode == 0x4d,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_only_parser() {
        assert_eq!(
            parse_push_only(&[0x00, 0x02, 0xaa, 0xbb]).unwrap(),
            vec![&[][..], &[0xaa, 0xbb][..]]
        );
        assert_eq!(parse_push_only(&[0x52]).unwrap(), vec![&[2u8][..]]);
        // non-minimal: one byte 0x05 pushed directly instead of OP_5
        assert!(parse_push_only(&[0x01, 0x05]).is_err());
        // non-minimal: PUSHDATA1 for 2 bytes
        assert!(parse_push_only(&[0x4c, 0x02, 0xaa, 0xbb]).is_err());
        // truncated
        assert!(parse_push_only(&[0x03, 0xaa]).is_err());
        assert!(parse_push_only(&[0x4d, 0x01]).is_err());
        // not push-only
        assert!(parse_push_only(&[0x00, 0xae]).is_err());
        assert!(parse_push_only(&[0x50]).is_err());
    }

    #[test]
    fn witness_size() {
        assert_eq!(witness_serialized_size(&[]), 1);
        assert_eq!(
            witness_serialized_size(&[vec![], vec![0; 72], vec![0; 513]]),
            1 + 1 + 73 + 3 + 513
        );
    }

    #[test]
    fn p2wsh_program_shape() {
        let mut script = vec![0x00, 0x20];
        script.extend_from_slice(&[7; 32]);
        assert_eq!(p2wsh_program(&script), Some(&[7; 32]));
        assert_eq!(p2wsh_program(&script[..33]), None);
        script[0] = 0x51;
        assert_eq!(p2wsh_program(&script), None);
    }
}
