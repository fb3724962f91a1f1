//! Input script verification through elements-miniscript's interpreter.
//!
//! Each input's scriptSig and witness are interpreted against the script of the output it spends
//! (`Interpreter::from_txdata`): P2PK, P2PKH, P2WPKH, P2WSH, P2SH (legacy, P2SH-P2WPKH, P2SH-P2WSH), bare miniscript
//! and Taproot key and script paths. Scripts that are not miniscript (and witness programs of unknown versions) are
//! refused. An input is valid only if the interpreter's iteration ends without an error.
//!
//! What this module does on top of the interpreter, because the interpreter alone is not a consensus verifier:
//! - signatures are checked with one [`SighashCache`] per transaction (the interpreter's own `iter` builds a new
//!   cache per signature, which makes BIP143/BIP341 hashing quadratic in the number of inputs);
//! - an ECDSA signature's sighash byte must be one of the six defined types and a 65-byte Schnorr signature must not
//!   carry the default type 0x00: the interpreter hashes the *normalised* type while Elements hashes the raw byte, so
//!   only where they agree is a signature accepted (Elements' `SIGHASH_RANGEPROOF` is therefore refused);
//! - `older(n)` is re-checked with BIP112 rules (tx version >= 2, the input's sequence has no disable flag, same
//!   unit, masked comparison): the interpreter compares raw sequence numbers, so a final sequence (0xffffffff) would
//!   pass any `older`;
//! - `after(n)` is re-checked with BIP65's rule that the input's sequence is not final;
//! - scripts with `OP_CODESEPARATOR` (the legacy CHECKSIGFROMSTACK covenant form) and Taproot leaves of a version other
//!   than Tapscript (0xc4) are refused: the sighashes computed here do not cover them;
//! - a panic inside the third-party interpreter on hostile data is turned into a rejection of that input.
//!
//! Lock time and sequence-lock *finality* of the transaction is checked elsewhere (`locktime.rs`).

use super::{LedgerContext, TxRejection};
use elements::opcodes::all::OP_CODESEPARATOR;
use elements::script::Instruction;
use elements::secp256k1_zkp::{All, Message, Secp256k1};
use elements::sighash::{Prevouts, ScriptPath, SighashCache};
use elements::taproot::{ControlBlock, LeafVersion};
use elements::{
    EcdsaSighashType, LockTime, SchnorrSighashType, Script, Sequence, Transaction, TxOut,
};
use elements_miniscript::interpreter::{KeySigPair, SatisfiedConstraint};
use elements_miniscript::{Interpreter, TxEnv};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::LazyLock;

/// The process-wide secp256k1-zkp context used to verify input signatures.
static SECP: LazyLock<Secp256k1<All>> = LazyLock::new(Secp256k1::new);

/// BIP68/BIP112: the sequence disables relative lock times.
const SEQUENCE_DISABLE_FLAG: u32 = 1 << 31;
/// BIP68/BIP112: the relative lock is in units of 512 seconds (else blocks).
const SEQUENCE_TYPE_FLAG: u32 = 1 << 22;
/// BIP68/BIP112: the bits that carry the relative lock value and unit.
const SEQUENCE_LOCKTIME_MASK: u32 = 0x0000_ffff | SEQUENCE_TYPE_FLAG;

/// Verifies every input's scriptSig/witness against the output it spends (`spent[i]` for input `i`).
///
/// For a peg-in input, `spent[i]` must be the output the peg-in claims (claim script, asset, value). A coinbase has
/// no input scripts to verify and is accepted as is. Signatures are checked with Elements' sighashes: the BIP143
/// variant with the spent output's (possibly confidential) value for segwit v0 and legacy sighashes for P2PKH/P2SH,
/// the BIP341 variant with `ctx.genesis_hash` for Taproot.
///
/// Errors: [`TxRejection::Script`] naming the first failing input and what the interpreter reported, including when
/// `spent.len() != tx.input.len()` (a caller error, reported as input index `min(len)`).
pub fn verify_input_scripts(
    ctx: &LedgerContext,
    tx: &Transaction,
    spent: &[TxOut],
) -> Result<(), TxRejection> {
    if tx.is_coinbase() {
        return Ok(());
    }
    if spent.len() != tx.input.len() {
        return Err(TxRejection::Script {
            input: spent.len().min(tx.input.len()),
            detail: format!(
                "{} spent outputs were given for {} inputs: cannot verify scripts",
                spent.len(),
                tx.input.len()
            ),
        });
    }
    let mut cache = SighashCache::new(tx);
    for index in 0..tx.input.len() {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            verify_input(ctx, tx, spent, index, &mut cache)
        }));
        let detail = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(detail)) => detail,
            Err(_) => "the script interpreter panicked on this input's data".to_string(),
        };
        return Err(TxRejection::Script {
            input: index,
            detail,
        });
    }
    Ok(())
}

/// How an input's signatures are hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SpendKind {
    /// Pre-segwit sighash (P2PK, P2PKH, legacy P2SH, bare scripts).
    Legacy,
    /// BIP143 (Elements variant).
    SegwitV0,
    /// BIP341 key path (Elements variant).
    TaprootKey,
    /// BIP341 script path (Elements variant).
    TaprootScript,
}

/// Verifies input `index`. Returns what went wrong as a message.
fn verify_input(
    ctx: &LedgerContext,
    tx: &Transaction,
    spent: &[TxOut],
    index: usize,
    cache: &mut SighashCache<&Transaction>,
) -> Result<(), String> {
    let (Some(txin), Some(prevout)) = (tx.input.get(index), spent.get(index)) else {
        return Err(format!("input {index} does not exist"));
    };
    let spk = &prevout.script_pubkey;
    let witness_items = txin.witness.script_witness.to_vec();
    let witness = witness_items.as_slice();
    // No extensions: Elements' introspection/arithmetic/CHECKSIGFROMSTACK fragments as evaluated by
    // elements-miniscript have not been checked against Elements' opcodes, so scripts using them are refused
    // (not interpreted) until they are.
    let interpreter = Interpreter::<elements_miniscript::extensions::NoExt>::from_txdata_ext(
        spk,
        &txin.script_sig,
        witness,
        txin.sequence,
        tx.lock_time,
    )
            .map_err(|e| {
                format!(
                    "the spent script {} with this scriptSig/witness is not a form the miniscript interpreter \
                     accepts (P2PK, P2PKH, P2WPKH, P2WSH, P2SH, P2SH-P2WPKH, P2SH-P2WSH or Taproot, with miniscript \
                     scripts only): {e}",
                    hex::encode(spk.as_bytes())
                )
            })?;
    let kind = if interpreter.is_taproot_v1_key_spend() {
        SpendKind::TaprootKey
    } else if interpreter.is_taproot_v1_script_spend() {
        SpendKind::TaprootScript
    } else if interpreter.is_segwit_v0() {
        SpendKind::SegwitV0
    } else {
        // `is_legacy` is false for bare scripts, which still use the legacy sighash with the scriptPubKey.
        SpendKind::Legacy
    };
    let script_code = script_code(kind, spk, &txin.script_sig, witness)?;
    if let Some(code) = &script_code {
        if code
            .instructions()
            .any(|ins| matches!(ins, Ok(Instruction::Op(op)) if op == OP_CODESEPARATOR))
        {
            return Err("scripts with OP_CODESEPARATOR (legacy CHECKSIGFROMSTACK covenants) are not supported".into());
        }
    }
    let pushed = pushed_elements(&txin.script_sig, witness);
    let txenv = TxEnv::new(tx, spent, index)
        .ok_or_else(|| "spent outputs do not match the transaction's inputs".to_string())?;
    let genesis_hash = ctx.genesis_hash;
    let spent_value = prevout.value;

    let verify_sig = |pair: &KeySigPair| -> bool {
        match pair {
            KeySigPair::Ecdsa(pk, (sig, hash_ty)) => {
                if !ecdsa_sighash_byte_is_exact(&pushed, &sig.serialize_der(), *hash_ty) {
                    return false;
                }
                let Some(code) = script_code.as_ref() else {
                    return false;
                };
                let sighash = match kind {
                    SpendKind::Legacy => cache.legacy_sighash(index, code, *hash_ty),
                    SpendKind::SegwitV0 => {
                        cache.segwitv0_sighash(index, code, spent_value, *hash_ty)
                    }
                    SpendKind::TaprootKey | SpendKind::TaprootScript => return false,
                };
                Message::from_digest_slice(sighash.as_ref())
                    .map(|msg| SECP.verify_ecdsa(&msg, sig, &pk.inner).is_ok())
                    .unwrap_or(false)
            }
            KeySigPair::Schnorr(xpk, sig) => {
                if sig.hash_ty == SchnorrSighashType::Default
                    && schnorr_has_explicit_default_byte(&pushed, sig.sig.as_ref())
                {
                    return false;
                }
                let prevouts = Prevouts::All(spent);
                let sighash = match (kind, script_code.as_ref()) {
                    (SpendKind::TaprootKey, _) => cache.taproot_key_spend_signature_hash(
                        index,
                        &prevouts,
                        sig.hash_ty,
                        genesis_hash,
                    ),
                    (SpendKind::TaprootScript, Some(leaf)) => cache
                        .taproot_script_spend_signature_hash(
                            index,
                            &prevouts,
                            ScriptPath::with_defaults(leaf).leaf_hash(),
                            sig.hash_ty,
                            genesis_hash,
                        ),
                    _ => return false,
                };
                sighash
                    .ok()
                    .and_then(|hash| Message::from_digest_slice(hash.as_ref()).ok())
                    .map(|msg| SECP.verify_schnorr(&sig.sig, &msg, xpk).is_ok())
                    .unwrap_or(false)
            }
        }
    };

    for step in interpreter.iter_custom(Box::new(verify_sig), Some(&txenv)) {
        match step {
            Ok(SatisfiedConstraint::RelativeTimelock { n }) => {
                check_relative_timelock(tx, txin.sequence, n)?
            }
            Ok(SatisfiedConstraint::AbsoluteTimelock { n }) => {
                check_absolute_timelock(txin.sequence, n)?
            }
            Ok(_) => {}
            Err(e) => return Err(format!("script not satisfied: {e}")),
        }
    }
    Ok(())
}

/// The script the signatures of this input commit to (BIP143 scriptCode, legacy script, or Tapscript leaf); `None`
/// for a Taproot key path spend. Mirrors what the interpreter itself uses, which `from_txdata` has already checked
/// against the spent script's hash.
fn script_code(
    kind: SpendKind,
    spk: &Script,
    script_sig: &Script,
    witness: &[Vec<u8>],
) -> Result<Option<Script>, String> {
    let last_push = || -> Option<Vec<u8>> {
        match script_sig.instructions_minimal().last() {
            Some(Ok(Instruction::PushBytes(bytes))) => Some(bytes.to_vec()),
            _ => None,
        }
    };
    match kind {
        SpendKind::TaprootKey => Ok(None),
        SpendKind::TaprootScript => {
            let (Some(leaf), Some(control)) = (
                witness.len().checked_sub(2).and_then(|i| witness.get(i)),
                witness.last(),
            ) else {
                return Err(
                    "Taproot script path witness lacks the leaf script or control block".into(),
                );
            };
            let control = ControlBlock::from_slice(control)
                .map_err(|e| format!("bad Taproot control block: {e}"))?;
            if control.leaf_version != LeafVersion::default() {
                return Err(format!(
                    "Taproot leaf version {:#04x} is not Tapscript (0xc4): not supported",
                    control.leaf_version.as_u8()
                ));
            }
            Ok(Some(Script::from(leaf.clone())))
        }
        SpendKind::SegwitV0 => {
            let program: Vec<u8> = if spk.is_p2sh() {
                last_push().ok_or("P2SH-wrapped segwit scriptSig lacks the redeem script")?
            } else {
                spk.as_bytes().to_vec()
            };
            let program = Script::from(program);
            if program.is_v0_p2wpkh() {
                let hash = program
                    .as_bytes()
                    .get(2..22)
                    .and_then(|h| {
                        <elements::PubkeyHash as bitcoin::hashes::Hash>::from_slice(h).ok()
                    })
                    .ok_or("P2WPKH program is not 20 bytes")?;
                Ok(Some(Script::new_p2pkh(&hash)))
            } else {
                let script = witness
                    .last()
                    .ok_or("P2WSH witness lacks the witness script")?;
                Ok(Some(Script::from(script.clone())))
            }
        }
        SpendKind::Legacy => {
            if spk.is_p2sh() {
                Ok(Some(Script::from(
                    last_push().ok_or("P2SH scriptSig lacks the redeem script")?,
                )))
            } else {
                Ok(Some(spk.clone()))
            }
        }
    }
}

/// Every element pushed by the scriptSig plus every witness item (where signatures can be).
fn pushed_elements<'a>(script_sig: &'a Script, witness: &'a [Vec<u8>]) -> Vec<&'a [u8]> {
    let mut pushed: Vec<&[u8]> = script_sig
        .instructions_minimal()
        .filter_map(|ins| match ins {
            Ok(Instruction::PushBytes(bytes)) => Some(bytes),
            _ => None,
        })
        .collect();
    pushed.extend(witness.iter().map(Vec::as_slice));
    pushed
}

/// True if the signature `der` was pushed with exactly the sighash byte the interpreter hashed (`hash_ty`), i.e. its
/// raw byte is one of the defined types and not a value the interpreter normalised.
fn ecdsa_sighash_byte_is_exact(pushed: &[&[u8]], der: &[u8], hash_ty: EcdsaSighashType) -> bool {
    let expected = hash_ty.as_u32();
    let mut found = false;
    for element in pushed {
        if let Some((last, body)) = element.split_last() {
            if body == der {
                if u32::from(*last) != expected {
                    return false;
                }
                found = true;
            }
        }
    }
    found
}

/// True if a 65-byte push carries this Schnorr signature with the explicit byte 0x00 (invalid per BIP341).
fn schnorr_has_explicit_default_byte(pushed: &[&[u8]], sig: &[u8]) -> bool {
    pushed
        .iter()
        .any(|element| matches!(element.split_last(), Some((0, body)) if body == sig))
}

/// BIP112 rules for an `older(n)` the interpreter found satisfied.
fn check_relative_timelock(
    tx: &Transaction,
    sequence: Sequence,
    required: Sequence,
) -> Result<(), String> {
    let required = required.to_consensus_u32();
    let sequence = sequence.to_consensus_u32();
    if required & SEQUENCE_DISABLE_FLAG != 0 {
        return Ok(());
    }
    if tx.version < 2 {
        return Err(format!(
            "older({required}) needs transaction version >= 2, this one is {}",
            tx.version
        ));
    }
    if sequence & SEQUENCE_DISABLE_FLAG != 0 {
        return Err(format!(
            "older({required}) needs a relative lock time but the input's sequence {sequence:#010x} disables it"
        ));
    }
    if required & SEQUENCE_TYPE_FLAG != sequence & SEQUENCE_TYPE_FLAG {
        return Err(format!(
            "older({required}) and the input's sequence {sequence:#010x} use different units (blocks vs time)"
        ));
    }
    if required & SEQUENCE_LOCKTIME_MASK > sequence & SEQUENCE_LOCKTIME_MASK {
        return Err(format!(
            "relative timelock not passed: older({required}) but the input's sequence is {sequence:#010x}"
        ));
    }
    Ok(())
}

/// BIP65's rule for an `after(n)` the interpreter found satisfied: a final input sequence would make the
/// transaction's lock time meaningless.
fn check_absolute_timelock(sequence: Sequence, required: LockTime) -> Result<(), String> {
    if sequence == Sequence::MAX {
        return Err(format!(
            "after({}) needs a non-final input sequence (0xffffffff disables the lock time)",
            required.to_consensus_u32()
        ));
    }
    Ok(())
}
