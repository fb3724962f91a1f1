//! Migration of a format-1 journal (`FNSJRNL1`: block approvals only, written by the walking skeleton) to the
//! current format, keeping every decision.
//!
//! Version 1 frames are `len: u32 LE (1..=256) || postcard({height: u32, block_hash: [u8; 32], unix_ms: u64}) ||
//! first 8 bytes of SHA-256(len || payload)`. Each record becomes an `approved` block record with the reason
//! "migrated from journal format 1". The same recovery rules apply as for the current format: a torn last record is
//! dropped (it was never acknowledged), anything else damaged stops the migration with [`JournalError::Corrupt`].
//!
//! Steps, each crash-safe: write the new file under a temporary name and fsync it; hard-link the old file to
//! `<name>.v1` (the untouched original, kept as evidence); rename the new file over `<name>`; fsync the directory.
//! A crash before the rename leaves the old file in place and the migration simply runs again.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::journal::{encode_frame, SignRequestRecord, Verdict, JOURNAL_MAGIC};
use crate::{JournalError, JournalRecord};

/// The header of a format-1 journal.
pub(crate) const V1_MAGIC: [u8; 8] = *b"FNSJRNL1";
const V1_MAX_PAYLOAD: u32 = 256;

#[derive(Deserialize)]
struct V1Record {
    height: u32,
    block_hash: [u8; 32],
    unix_ms: u64,
}

/// Where the original of a migrated journal is kept.
pub fn v1_backup_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".v1");
    path.with_file_name(name)
}

/// Migrates the format-1 journal at `path` (whose content is `bytes`) in place; returns how many records it kept.
/// The caller holds the journal's lock and must reopen the file afterwards (it is a new inode).
pub(crate) fn migrate(path: &Path, bytes: &[u8]) -> Result<u64, JournalError> {
    let records = parse(path, bytes)?;
    let mut out = JOURNAL_MAGIC.to_vec();
    for r in &records {
        out.extend_from_slice(&encode_frame(r)?);
    }
    let backup = v1_backup_path(path);
    match std::fs::read(&backup) {
        Ok(existing) if existing == bytes => {} // an earlier migration crashed after the link: same original
        Ok(_) => {
            return Err(JournalError::Io {
                path: path.to_path_buf(),
                op: "migrate from format 1",
                source: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists with other content; move it away first",
                        backup.display()
                    ),
                ),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::hard_link(path, &backup).map_err(io_err(path, "keep the format-1 original"))?
        }
        Err(e) => return Err(io_err(path, "read the format-1 backup")(e)),
    }
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(format!(".migrating.{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&out)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, "write the migrated journal")(e));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(path, "fsync directory"))?;
    tracing::warn!(target: "hsm", path = %path.display(), backup = %backup.display(), records = records.len(),
        "signer journal migrated from format 1; the original is kept");
    Ok(records.len() as u64)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<JournalRecord>, JournalError> {
    let corrupt = |offset: usize, reason: String| JournalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason: format!("format-1 journal: {reason}"),
    };
    if bytes.get(..8) != Some(&V1_MAGIC[..]) {
        return Err(corrupt(0, "wrong header".into()));
    }
    let mut offset = V1_MAGIC.len();
    let mut records = Vec::new();
    while offset < bytes.len() {
        let rest = bytes.get(offset..).unwrap_or_default();
        let Some(len_bytes) = rest.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
            break; // torn length prefix
        };
        let len = u32::from_le_bytes(len_bytes);
        if len == 0 || len > V1_MAX_PAYLOAD {
            return Err(corrupt(offset, format!("record length {len} out of range")));
        }
        let len = len as usize;
        let (Some(payload), Some(sum)) = (rest.get(4..4 + len), rest.get(4 + len..4 + len + 8))
        else {
            break; // torn payload or checksum
        };
        let digest = Sha256::new()
            .chain_update(len_bytes)
            .chain_update(payload)
            .finalize();
        if digest.get(..8) != Some(sum) {
            return Err(corrupt(offset, "checksum mismatch".into()));
        }
        let record = match postcard::take_from_bytes::<V1Record>(payload) {
            Ok((r, [])) => r,
            _ => return Err(corrupt(offset, "undecodable record".into())),
        };
        records.push(JournalRecord::new(
            SignRequestRecord::Block {
                height: record.height,
                block_hash: record.block_hash,
            },
            Verdict::Approved,
            "migrated from journal format 1",
            record.unix_ms,
        ));
        offset += 4 + len + 8;
    }
    Ok(records)
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> JournalError {
    let path = path.to_path_buf();
    move |source| JournalError::Io { path, op, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SignerJournal;

    /// Writes a format-1 journal exactly as the walking skeleton did.
    fn v1_journal(records: &[(u32, u8, u64)]) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct R {
            height: u32,
            block_hash: [u8; 32],
            unix_ms: u64,
        }
        let mut out = V1_MAGIC.to_vec();
        for (height, b, unix_ms) in records {
            let payload = postcard::to_stdvec(&R {
                height: *height,
                block_hash: [*b; 32],
                unix_ms: *unix_ms,
            })
            .unwrap();
            let len = (payload.len() as u32).to_le_bytes();
            let sum = Sha256::new()
                .chain_update(len)
                .chain_update(&payload)
                .finalize();
            out.extend_from_slice(&len);
            out.extend_from_slice(&payload);
            out.extend_from_slice(&sum[..8]);
        }
        out
    }

    #[test]
    fn a_v1_journal_is_migrated_keeping_every_decision_and_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signer.journal");
        let mut v1 = v1_journal(&[(5, 0xaa, 1), (6, 0xbb, 2)]);
        v1.extend_from_slice(&[9, 0, 0]); // a torn third record
        std::fs::write(&path, &v1).unwrap();
        let mut seen = Vec::new();
        let j = SignerJournal::open_with(&path, |_, r| {
            seen.push(r.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(j.record_count(), 2);
        assert_eq!(
            seen.iter()
                .map(|r| (r.request.clone(), r.verdict))
                .collect::<Vec<_>>(),
            vec![
                (
                    SignRequestRecord::Block {
                        height: 5,
                        block_hash: [0xaa; 32]
                    },
                    Verdict::Approved
                ),
                (
                    SignRequestRecord::Block {
                        height: 6,
                        block_hash: [0xbb; 32]
                    },
                    Verdict::Approved
                ),
            ]
        );
        assert_eq!(std::fs::read(v1_backup_path(&path)).unwrap(), v1);
        assert!(std::fs::read(&path).unwrap().starts_with(&JOURNAL_MAGIC));
        drop(j);
        // Reopening the migrated journal is a plain open.
        assert_eq!(SignerJournal::open(&path).unwrap().record_count(), 2);
    }

    #[test]
    fn a_corrupt_v1_journal_is_not_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signer.journal");
        let mut v1 = v1_journal(&[(5, 0xaa, 1), (6, 0xbb, 2)]);
        v1[15] ^= 1;
        std::fs::write(&path, &v1).unwrap();
        let err = SignerJournal::open(&path).unwrap_err();
        assert!(
            matches!(err, JournalError::Corrupt { offset: 8, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("format-1"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), v1);
        assert!(!v1_backup_path(&path).exists());
    }
}
