//! BlockSigningGuard with SoftwareSigner and with a real SoftHSM Pkcs11Signer: policy, journal replay, crash and
//! damage recovery. Every returned signature is checked (DER + 0x01, low-S, verifies over the digest).

use std::path::Path;

mod common;

use common::{capture_logs, valid_certificate, CommitteeVerifier};
use hsm::softhsm_testing::token_with_key;
use hsm::{
    BlockSigningGuard, DigestSigner, GuardError, JournalError, JournalRecord, Pkcs11Signer,
    Refusal, SignRequestRecord, SignedBlock, SignerJournal, SoftwareSigner, Verdict,
};
use secp256k1::ecdsa::Signature;
use secp256k1::{Message, PublicKey, SecretKey, SECP256K1};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
type Factory = Box<dyn Fn() -> Box<dyn DigestSigner>>;

const X: [u8; 32] = [0x58; 32];
const Y: [u8; 32] = [0x59; 32];
const Z: [u8; 32] = [0x5a; 32];

fn software() -> Factory {
    let secret = SecretKey::from_slice(&[0x24; 32]).expect("valid key");
    Box::new(move || Box::new(SoftwareSigner::new(secret)))
}

fn pkcs11(prefix: &str) -> Factory {
    let token = token_with_key(prefix).expect("SoftHSM token");
    Box::new(move || {
        Box::new(Pkcs11Signer::open(&token.config, &token.user_pin).expect("open PKCS#11 signer"))
    })
}

/// Checks the Elements form (DER + SIGHASH_ALL) and that the signature verifies, low-S, over `digest`.
fn assert_valid(sig: &[u8], digest: [u8; 32], pk: &PublicKey) {
    let (der, sighash) = sig.split_at(sig.len() - 1);
    assert_eq!(sighash, [0x01]);
    let parsed = Signature::from_der(der).expect("strict DER");
    let mut normalised = parsed;
    normalised.normalize_s();
    assert_eq!(normalised, parsed, "high-S signature returned");
    SECP256K1
        .verify_ecdsa(&Message::from_digest(digest), &parsed, pk)
        .expect("guard signature must verify over the digest");
}

fn approval(height: u32, block_hash: [u8; 32]) -> JournalRecord {
    JournalRecord::new(
        SignRequestRecord::Block { height, block_hash },
        Verdict::Approved,
        "test",
        1,
    )
}

fn open(
    path: &Path,
    signer: Box<dyn DigestSigner>,
) -> Result<BlockSigningGuard<Box<dyn DigestSigner>>, GuardError> {
    BlockSigningGuard::open(path, signer, CommitteeVerifier::boxed())
}

fn sign_ok(guard: &mut BlockSigningGuard<Box<dyn DigestSigner>>, height: u32, hash: [u8; 32]) {
    let sig = guard
        .sign_block(height, hash, &valid_certificate(height, hash))
        .unwrap_or_else(|e| panic!("sign ({height}, {:02x}) should succeed: {e}", hash[0]));
    assert_valid(&sig, hash, &guard.public_key());
}

fn refused(
    guard: &mut BlockSigningGuard<Box<dyn DigestSigner>>,
    height: u32,
    hash: [u8; 32],
) -> Refusal {
    match guard.sign_block(height, hash, &valid_certificate(height, hash)) {
        Err(GuardError::Refused(r)) => r,
        other => panic!(
            "sign ({height}, {:02x}) should be refused, got {other:?}",
            hash[0]
        ),
    }
}

fn policy_rules_hold_across_reopen(make: Factory) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("signer.journal");
    let mut guard = open(&path, make())?;
    assert_eq!(guard.last_signed(), None);
    sign_ok(&mut guard, 5, X);
    sign_ok(&mut guard, 5, X); // idempotent
    assert_eq!(
        refused(&mut guard, 5, Y),
        Refusal::ConflictingHash {
            height: 5,
            signed: X,
            requested: Y
        }
    );
    assert_eq!(
        refused(&mut guard, 4, Z),
        Refusal::HeightRegression {
            requested: 4,
            last: 5
        }
    );
    sign_ok(&mut guard, 6, Y);
    assert_eq!(
        guard.last_signed(),
        Some(SignedBlock {
            height: 6,
            block_hash: Y
        })
    );
    drop(guard);
    // Every decision is journaled: 2 approvals, 1 re-sign, 2 refusals.
    assert_eq!(SignerJournal::open(&path)?.record_count(), 5);

    let mut guard = open(&path, make())?;
    assert_eq!(
        guard.last_signed(),
        Some(SignedBlock {
            height: 6,
            block_hash: Y
        })
    );
    assert_eq!(
        refused(&mut guard, 6, X),
        Refusal::ConflictingHash {
            height: 6,
            signed: Y,
            requested: X
        }
    );
    assert_eq!(
        refused(&mut guard, 5, X),
        Refusal::HeightRegression {
            requested: 5,
            last: 6
        }
    );
    assert_eq!(
        refused(&mut guard, 4, Z),
        Refusal::HeightRegression {
            requested: 4,
            last: 6
        }
    );
    sign_ok(&mut guard, 6, Y);
    sign_ok(&mut guard, 7, X);
    drop(guard);
    let mut verdicts = Vec::new();
    let journal = SignerJournal::open_with(&path, |_, r| {
        verdicts.push(r.verdict);
        Ok(())
    })?;
    use Verdict::{Approved as A, Refused as R};
    assert_eq!(verdicts, [A, A, R, R, A, R, R, R, A, A]);
    assert_eq!(
        journal.last().map(|r| r.request.clone()),
        Some(SignRequestRecord::Block {
            height: 7,
            block_hash: X
        })
    );
    Ok(())
}

fn crash_after_journal_write_before_signature(make: Factory) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("signer.journal");
    {
        let mut guard = open(&path, make())?;
        sign_ok(&mut guard, 9, Z);
    }
    // The decision for height 10 reached the journal, then the process died before the HSM signed.
    {
        let mut journal = SignerJournal::open(&path)?;
        journal.append(&approval(10, X))?;
    }
    let mut guard = open(&path, make())?;
    assert_eq!(
        guard.last_signed(),
        Some(SignedBlock {
            height: 10,
            block_hash: X
        })
    );
    assert_eq!(
        refused(&mut guard, 10, Y),
        Refusal::ConflictingHash {
            height: 10,
            signed: X,
            requested: Y
        }
    );
    // The recorded decision is re-signed WITHOUT a certificate (it was verified when it was approved) ...
    let sig = guard.sign_block(10, X, &[])?;
    assert_valid(&sig, X, &guard.public_key());
    // ... but a new decision needs one.
    match guard.sign_block(11, Y, &[]) {
        Err(GuardError::Refused(Refusal::Certificate { height: 11, .. })) => {}
        other => panic!("expected a certificate refusal, got {other:?}"),
    }
    sign_ok(&mut guard, 11, Y);
    Ok(())
}

fn torn_last_record_is_truncated_with_a_warning(make: Factory) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("signer.journal");
    {
        let mut guard = open(&path, make())?;
        sign_ok(&mut guard, 5, X);
        sign_ok(&mut guard, 6, Y);
    }
    let full_len = std::fs::metadata(&path)?.len();
    let file = std::fs::OpenOptions::new().write(true).open(&path)?;
    file.set_len(full_len - 3)?;
    drop(file);
    let (guard, logs) = capture_logs(|| open(&path, make()));
    let mut guard = guard?;
    assert!(
        logs.contains("WARN") && logs.contains("torn"),
        "expected a warning, logs:\n{logs}"
    );
    assert_eq!(
        guard.last_signed(),
        Some(SignedBlock {
            height: 5,
            block_hash: X
        })
    );
    let record_len = (full_len - 8) / 2;
    assert_eq!(
        std::fs::metadata(&path)?.len(),
        8 + record_len,
        "torn bytes must be cut off"
    );
    // Height 6 was never acknowledged in the journal's view: it is free again; 5 stays locked to X.
    assert_eq!(
        refused(&mut guard, 5, Y),
        Refusal::ConflictingHash {
            height: 5,
            signed: X,
            requested: Y
        }
    );
    sign_ok(&mut guard, 6, Z);
    drop(guard);
    // 5X, 6Y, then (after the torn 6Y was cut) the refusal of 5Y and the approval of 6Z.
    assert_eq!(SignerJournal::open(&path)?.record_count(), 3);
    Ok(())
}

fn corrupt_middle_record_refuses_to_open(make: Factory) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("signer.journal");
    {
        let mut guard = open(&path, make())?;
        sign_ok(&mut guard, 5, X);
        sign_ok(&mut guard, 6, Y);
        sign_ok(&mut guard, 7, Z);
    }
    let mut bytes = std::fs::read(&path)?;
    let first_payload = u32::from_le_bytes(bytes[8..12].try_into()?) as u64;
    let second_record = 8 + 8 + first_payload + 8;
    bytes[second_record as usize + 10] ^= 0x40; // inside the second record's payload
    std::fs::write(&path, &bytes)?;
    match open(&path, make()) {
        Err(GuardError::Journal(JournalError::Corrupt { offset, .. })) => {
            assert_eq!(offset, second_record)
        }
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("a corrupt journal must not open"),
    }
    // Nothing was "repaired": the file is as we left it.
    assert_eq!(std::fs::read(&path)?, bytes);
    Ok(())
}

#[test]
fn software_policy_rules_hold_across_reopen() -> TestResult {
    policy_rules_hold_across_reopen(software())
}

#[test]
fn pkcs11_policy_rules_hold_across_reopen() -> TestResult {
    policy_rules_hold_across_reopen(pkcs11("guard-rules"))
}

#[test]
fn software_crash_after_journal_write_before_signature() -> TestResult {
    crash_after_journal_write_before_signature(software())
}

#[test]
fn pkcs11_crash_after_journal_write_before_signature() -> TestResult {
    crash_after_journal_write_before_signature(pkcs11("guard-crash"))
}

#[test]
fn software_torn_last_record_is_truncated_with_a_warning() -> TestResult {
    torn_last_record_is_truncated_with_a_warning(software())
}

#[test]
fn pkcs11_torn_last_record_is_truncated_with_a_warning() -> TestResult {
    torn_last_record_is_truncated_with_a_warning(pkcs11("guard-torn"))
}

#[test]
fn software_corrupt_middle_record_refuses_to_open() -> TestResult {
    corrupt_middle_record_refuses_to_open(software())
}

#[test]
fn pkcs11_corrupt_middle_record_refuses_to_open() -> TestResult {
    corrupt_middle_record_refuses_to_open(pkcs11("guard-corrupt"))
}

#[test]
fn journal_records_that_break_the_policy_refuse_to_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("signer.journal");
    {
        let mut journal = SignerJournal::open(&path)?;
        journal.append(&approval(7, X))?;
        journal.append(&approval(5, X))?;
    }
    match open(&path, software()()) {
        Err(GuardError::Journal(JournalError::Inconsistent { refusal, .. })) => {
            assert_eq!(
                refusal,
                Refusal::HeightRegression {
                    requested: 5,
                    last: 7
                }
            )
        }
        Err(other) => panic!("expected Inconsistent, got {other:?}"),
        Ok(_) => panic!("an inconsistent journal must not open"),
    }
    Ok(())
}

#[test]
fn two_guards_cannot_share_a_journal() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("signer.journal");
    let first = open(&path, software()())?;
    match open(&path, software()()) {
        Err(GuardError::Journal(JournalError::Locked { .. })) => {}
        Err(other) => panic!("expected Locked, got {other:?}"),
        Ok(_) => panic!("a second guard on the same journal must be refused"),
    }
    drop(first);
    open(&path, software()())?;
    Ok(())
}

#[test]
fn journal_in_a_missing_directory_is_an_io_error_naming_the_path() {
    let path = Path::new("/nonexistent-hsm-guard-test/signer.journal");
    match open(path, software()()) {
        Err(e @ GuardError::Journal(JournalError::Io { .. })) => {
            assert!(
                e.to_string()
                    .contains("/nonexistent-hsm-guard-test/signer.journal"),
                "{e}"
            )
        }
        Err(other) => panic!("expected Io, got {other:?}"),
        Ok(_) => panic!("must fail"),
    }
}

/// Writes a format-1 journal byte for byte as the walking skeleton did: `len || postcard(record) || sha256[..8]`.
fn write_v1_journal(path: &Path, records: &[(u32, [u8; 32])]) -> TestResult {
    use sha2::{Digest, Sha256};
    #[derive(serde::Serialize)]
    struct V1 {
        height: u32,
        block_hash: [u8; 32],
        unix_ms: u64,
    }
    let mut out = b"FNSJRNL1".to_vec();
    for (height, block_hash) in records {
        let payload = postcard::to_stdvec(&V1 {
            height: *height,
            block_hash: *block_hash,
            unix_ms: 1,
        })?;
        let len = u32::try_from(payload.len())?.to_le_bytes();
        out.extend_from_slice(&len);
        out.extend_from_slice(&payload);
        out.extend_from_slice(
            &Sha256::new()
                .chain_update(len)
                .chain_update(&payload)
                .finalize()[..8],
        );
    }
    std::fs::write(path, out)?;
    Ok(())
}

#[test]
fn a_format_1_journal_is_migrated_and_its_watermark_still_binds() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("signer.journal");
    write_v1_journal(&path, &[(6, Y), (7, X)])?;
    let mut guard = open(&path, software()())?;
    assert_eq!(
        guard.last_signed(),
        Some(SignedBlock {
            height: 7,
            block_hash: X
        })
    );
    assert_eq!(
        refused(&mut guard, 6, Y),
        Refusal::HeightRegression {
            requested: 6,
            last: 7
        }
    );
    assert!(matches!(
        refused(&mut guard, 7, Z),
        Refusal::ConflictingHash { height: 7, .. }
    ));
    // The migrated approval is the last approved decision: re-signed without a certificate.
    let sig = guard.sign_block(7, X, &[])?;
    assert_valid(&sig, X, &guard.public_key());
    assert!(hsm::journal_v1::v1_backup_path(&path).exists());
    Ok(())
}

/// A client flooding the guard with refused requests cannot grow the journal without bound: 10,000 refusals add a
/// bounded number of records (the rest are counted in summary records), while approvals are still journaled and
/// durable, and every refusal is either journaled or counted.
#[test]
fn ten_thousand_refusals_add_a_bounded_number_of_records_and_approvals_stay_durable() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("signer.journal");
    let mut guard = open(&path, software()())?;
    sign_ok(&mut guard, 5, X);
    let size_before = std::fs::metadata(&path)?.len();
    let started = std::time::Instant::now();
    for _ in 0..10_000 {
        refused(&mut guard, 4, Y);
    }
    // Seconds (of wall-clock) the flood may have touched, rounded up generously.
    let seconds = started.elapsed().as_secs() + 2;
    sign_ok(&mut guard, 6, Z);
    // The approval is on disk before the guard returns (no drop needed): a second reader sees it.
    let on_disk = {
        let mut records = Vec::new();
        let bytes = std::fs::read(&path)?;
        let copy = dir.path().join("copy.journal");
        std::fs::write(&copy, bytes)?;
        SignerJournal::open_with(&copy, |_, r| {
            records.push(r.clone());
            Ok(())
        })?;
        records
    };
    assert_eq!(
        on_disk
            .iter()
            .filter(|r| r.verdict.signs())
            .map(|r| r.request.clone())
            .collect::<Vec<_>>(),
        vec![
            SignRequestRecord::Block {
                height: 5,
                block_hash: X
            },
            SignRequestRecord::Block {
                height: 6,
                block_hash: Z
            }
        ]
    );
    let per_second = u64::from(SignerJournal::MAX_REFUSALS_PER_SECOND) + 1;
    let refusal_records = on_disk.iter().filter(|r| !r.verdict.signs()).count() as u64;
    assert!(
        refusal_records <= per_second * seconds,
        "{refusal_records} refusal records for 10,000 refusals in {seconds} s"
    );
    let grown = std::fs::metadata(&path)?.len() - size_before;
    assert!(
        grown <= 400 * (per_second * seconds + 1),
        "journal grew by {grown} bytes for 10,000 refusals"
    );
    let one_by_one = on_disk
        .iter()
        .filter(|r| r.verdict == Verdict::Refused && r.suppressed_refusals().is_none())
        .count() as u64;
    let summarised: u64 = on_disk.iter().filter_map(|r| r.suppressed_refusals()).sum();
    assert_eq!(
        one_by_one + summarised,
        10_000,
        "every refusal is journaled or counted"
    );
    assert!(
        summarised > 0,
        "a summary record counts the refusals not journaled one by one"
    );
    drop(guard);
    // Reopening replays the approvals; the refusals changed nothing.
    let guard = open(&path, software()())?;
    assert_eq!(
        guard.last_signed(),
        Some(SignedBlock {
            height: 6,
            block_hash: Z
        })
    );
    Ok(())
}
