//! The durable, append-only journal of every signing decision (blocks and Bitcoin transactions).
//!
//! # File format (version 2)
//!
//! ```text
//! header  = "FNSJRNL2"                                   (8 bytes: magic + format version)
//! record  = len: u32 little-endian                       (length of payload, 1..=MAX_PAYLOAD)
//!           len_check: u32 little-endian = !len          (a damaged length is corruption, never a "torn tail")
//!           payload: postcard(JournalRecord)             (len bytes)
//!           checksum: first 8 bytes of SHA-256(len || payload)
//! ```
//!
//! A record holds the request (block: height and hash; Bitcoin transaction: txid, per-input sighashes, the peg-out
//! ids it pays and their total), the verdict (approved / refused / override), the reason and the time.
//!
//! Version 1 files (`FNSJRNL1`, block approvals only, written by the walking skeleton) are MIGRATED when opened:
//! every record becomes an approved block record, the original is kept as `<name>.v1`
//! (see [`crate::journal_v1`]'s steps; a damaged v1 file is not migrated). Any other version byte
//! (`FNSJRNL3`, ...) is refused with [`JournalError::UnsupportedFormat`] naming the file.
//!
//! The file is created atomically (written and synced under a temporary name, then hard-linked into place, then the
//! directory is fsynced), so the header is never torn. [`SignerJournal::create_new`] builds a complete journal (header
//! and its first records, e.g. an operator's floor) the same way, so a reader of the path (a running signer waiting
//! for its journal) sees either no file or the whole journal, never an empty or partial one.
//! [`SignerJournal::append`] writes one record with a single `write` and `fdatasync`s it before returning; a record is
//! acknowledged only after that.
//!
//! # Refusals are rate-limited
//!
//! Refusals are not needed for safety (only approvals must be durable before signing), but a compromised client can
//! send them as fast as the guard answers. [`SignerJournal::append_refusal`] journals at most
//! [`MAX_REFUSALS_PER_SECOND`] refusals per second (by the records' `unix_ms`), each written and synced like any
//! record; the others are counted, and one summary record (a refused record whose reason starts with
//! [`SUPPRESSED_REFUSALS_PREFIX`] and the count, see [`JournalRecord::suppressed_refusals`]) is written with the next
//! record of a later second, or by [`SignerJournal::flush_refusal_summary`], or when the journal is dropped. The file
//! format is unchanged (a summary is an ordinary refused record), so older code reads it. The journal then grows by
//! at most `MAX_REFUSALS_PER_SECOND + 1` records per second of refusals, and refusals cost at most that many
//! `fdatasync`s per second.
//!
//! # Recovery
//!
//! [`SignerJournal::open`] replays every record. A LAST record that runs past the end of the file (a crash during
//! an append that was never acknowledged) is truncated away with a warning. Everything else is an error
//! ([`JournalError::Corrupt`] with the byte offset of the damaged record), including a complete-length last record
//! with a bad checksum and a length prefix out of range: the guard then refuses to start, never resets silently. An
//! operator decides (restore from backup, or inspect and cut the file by hand).
//!
//! The journal takes an exclusive advisory lock (`flock`) on the file, so two guards (threads or processes) can't
//! append to the same journal: the second open fails with [`JournalError::Locked`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Refusal;

/// Magic and format version at the start of every journal file.
pub const JOURNAL_MAGIC: [u8; 8] = *b"FNSJRNL2";
/// The magic prefix shared by every format version (the 8th byte is the version digit).
const MAGIC_PREFIX: &[u8; 7] = b"FNSJRNL";
/// The format version this code writes and reads.
pub const JOURNAL_VERSION: u8 = 2;
/// Largest accepted payload length; a larger length prefix is corruption. (A block record is under 100 bytes plus
/// its reason; a transaction record is bounded by [`crate::MAX_TX_INPUTS`] sighashes and as many peg-out ids.)
pub const MAX_PAYLOAD: u32 = 1 << 20;
/// Reasons longer than this are cut (at a character boundary) before they are journaled.
pub const MAX_REASON_LEN: usize = 1024;
/// At most this many refusals are journaled one by one per second; the others are counted in a summary record.
pub const MAX_REFUSALS_PER_SECOND: u32 = 4;
/// How the reason of a summary record starts (followed by the number of refusals it stands for and a space).
pub const SUPPRESSED_REFUSALS_PREFIX: &str = "rate-limited: ";
const LEN_PREFIX: usize = 8;
const CHECKSUM_LEN: usize = 8;

/// What was asked of the signer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignRequestRecord {
    /// Sign a sidechain block (block-signing key).
    Block {
        /// Block height.
        height: u32,
        /// The digest to sign (block hash, raw byte order).
        block_hash: [u8; 32],
    },
    /// Sign a Bitcoin peg-out transaction (peg-wallet key), one signature per input.
    BitcoinTx {
        /// Transaction id (raw byte order, as `Txid::to_byte_array`).
        txid: [u8; 32],
        /// The BIP143 sighash of each input, in input order (empty when the request was refused before they could
        /// be computed).
        sighashes: Vec<[u8; 32]>,
        /// Ids of the validated peg-outs this transaction pays.
        pegout_ids: Vec<[u8; 32]>,
        /// Sum of the peg-out outputs in satoshi (what counts against the rate limit).
        pegout_sat: u64,
    },
}

/// The guard's verdict on a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// The policy allowed it; written (and synced) before the HSM call.
    Approved,
    /// The policy refused it; nothing was signed.
    Refused,
    /// Allowed only because an operator override lifted the rate limit; written before the HSM call.
    Override,
}

impl Verdict {
    /// Approved or override: the signer was (or was about to be) asked to sign.
    pub fn signs(self) -> bool {
        matches!(self, Verdict::Approved | Verdict::Override)
    }
}

/// One signing decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRecord {
    /// The request.
    pub request: SignRequestRecord,
    /// The verdict.
    pub verdict: Verdict,
    /// Why (the refusal, the override's operator reason, or what was approved).
    pub reason: String,
    /// Wall-clock time of the decision, milliseconds since the Unix epoch (the peg-out rate limit window uses it).
    pub unix_ms: u64,
}

impl JournalRecord {
    /// A record with `reason` cut to [`MAX_REASON_LEN`] bytes.
    pub fn new(request: SignRequestRecord, verdict: Verdict, reason: &str, unix_ms: u64) -> Self {
        let mut cut = reason.len().min(MAX_REASON_LEN);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        JournalRecord {
            request,
            verdict,
            reason: reason.get(..cut).unwrap_or_default().to_string(),
            unix_ms,
        }
    }

    /// For a summary record written by [`SignerJournal::append_refusal`]: how many refusals it stands for (they
    /// were not journaled one by one). `None` for any other record.
    pub fn suppressed_refusals(&self) -> Option<u64> {
        if self.verdict != Verdict::Refused {
            return None;
        }
        let rest = self.reason.strip_prefix(SUPPRESSED_REFUSALS_PREFIX)?;
        let digits = rest.split(' ').next()?;
        digits.parse().ok()
    }
}

/// Why the journal can't be opened or appended to.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An IO operation failed.
    #[error("signer journal {}: {op} failed: {source}", path.display())]
    Io {
        /// Journal path.
        path: PathBuf,
        /// What we were doing.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another open journal (in this or another process) holds the lock.
    #[error("signer journal {} is locked by another signer (only one guard may use a journal)", path.display())]
    Locked {
        /// Journal path.
        path: PathBuf,
    },
    /// The file is damaged in a way that is not a torn last record. The guard refuses to start.
    #[error("signer journal {} is corrupt at byte offset {offset}: {reason}; refusing to start (restore it or repair it by hand; never delete it to get going)", path.display())]
    Corrupt {
        /// Journal path.
        path: PathBuf,
        /// Byte offset of the damaged record (0: the header).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The file is a journal of a format version this code neither reads nor migrates.
    #[error("signer journal {} has format version {found} but this signer reads version {JOURNAL_VERSION} (and migrates version 1); refusing to start: use the signer version that wrote it, and never delete the journal to get going", path.display())]
    UnsupportedFormat {
        /// Journal path.
        path: PathBuf,
        /// The version byte found in the header (as a character).
        found: char,
    },
    /// A record of a kind this journal's guard does not keep (e.g. a Bitcoin transaction in a block journal).
    #[error("signer journal {} holds a {found} record at byte offset {offset}, but it is the journal of a {expected} guard (journals mixed up?)", path.display())]
    WrongKind {
        /// Journal path.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// Which kind the guard keeps.
        expected: &'static str,
        /// Which kind was found.
        found: &'static str,
    },
    /// A record the policy refuses given the records before it (the journal was edited or mixed up).
    #[error("signer journal {} is inconsistent at byte offset {offset}: {refusal}", path.display())]
    Inconsistent {
        /// Journal path.
        path: PathBuf,
        /// Byte offset of the offending record.
        offset: u64,
        /// What the policy says about it.
        refusal: Refusal,
    },
    /// An earlier append failed; the on-disk state is unknown until the journal is reopened.
    #[error("signer journal {} is unusable after an earlier write failure; restart the signer", path.display())]
    Poisoned {
        /// Journal path.
        path: PathBuf,
    },
    /// [`SignerJournal::create_new`] found a file at the path: an existing journal is never replaced.
    #[error("signer journal {} exists; refusing to replace it (it is what keeps this member from signing twice)", path.display())]
    Exists {
        /// Journal path.
        path: PathBuf,
    },
    /// A record could not be encoded.
    #[error("cannot encode a signer journal record: {0}")]
    Encode(#[from] postcard::Error),
}

/// The append-only journal file, open and locked.
#[derive(Debug)]
pub struct SignerJournal {
    path: PathBuf,
    file: File,
    len: u64,
    last: Option<JournalRecord>,
    record_count: u64,
    poisoned: bool,
    refusals: RefusalWindow,
}

/// Counts the refusals of the current second (see the module docs).
#[derive(Debug, Default)]
struct RefusalWindow {
    /// The second (`unix_ms / 1000`) of the refusals counted here.
    second: u64,
    /// Refusals journaled one by one in that second.
    journaled: u32,
    /// Refusals counted but not journaled since the last summary.
    suppressed: u64,
    /// Time of the first of them.
    first_suppressed_ms: u64,
    /// The last of them (its request and reason go into the summary).
    last_suppressed: Option<JournalRecord>,
}

impl RefusalWindow {
    /// The summary of the refusals counted and not journaled, if any (the count is reset).
    fn take_summary(&mut self) -> Option<JournalRecord> {
        let last = self.last_suppressed.take()?;
        let count = std::mem::take(&mut self.suppressed);
        let reason = format!(
            "{SUPPRESSED_REFUSALS_PREFIX}{count} refusals between unix_ms {} and {} were not journaled one by one \
             (at most {MAX_REFUSALS_PER_SECOND} per second); the last one: {}",
            self.first_suppressed_ms, last.unix_ms, last.reason
        );
        Some(JournalRecord::new(
            last.request,
            Verdict::Refused,
            &reason,
            last.unix_ms,
        ))
    }
}

impl SignerJournal {
    /// [`MAX_REFUSALS_PER_SECOND`], reachable from outside the crate.
    pub const MAX_REFUSALS_PER_SECOND: u32 = MAX_REFUSALS_PER_SECOND;

    /// Creates a NEW journal at `path` holding `records` (e.g. an operator's floor record, or none for a fresh key)
    /// atomically: the complete file is written and synced under a temporary name in the same directory, hard-linked
    /// into place (which never replaces a file) and the directory is synced. A reader of `path` sees either no
    /// file or the complete journal. Fails with [`JournalError::Exists`] if anything is at `path`.
    pub fn create_new(path: &Path, records: &[JournalRecord]) -> Result<(), JournalError> {
        let mut bytes = JOURNAL_MAGIC.to_vec();
        for record in records {
            bytes.extend_from_slice(&encode_frame(record)?);
        }
        match write_new_file_atomically(path, &bytes)? {
            true => {
                tracing::info!(target: "hsm", path = %path.display(), records = records.len(),
                    "signer journal created");
                Ok(())
            }
            false => Err(JournalError::Exists {
                path: path.to_path_buf(),
            }),
        }
    }

    /// Opens (creating if missing) and replays the journal at `path`. See the module docs for recovery rules.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        Self::open_with(path, |_, _| Ok(()))
    }

    /// Like [`open`](Self::open), calling `visit(offset, record)` for every valid record in file order; an error from
    /// `visit` aborts the open.
    pub fn open_with(
        path: &Path,
        mut visit: impl FnMut(u64, &JournalRecord) -> Result<(), JournalError>,
    ) -> Result<Self, JournalError> {
        create_if_missing(path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(io_err(path, "open"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked {
                    path: path.to_path_buf(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(path, "lock")(e)),
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err(path, "read"))?;
        if bytes.starts_with(&crate::journal_v1::V1_MAGIC) {
            crate::journal_v1::migrate(path, &bytes)?;
            drop(file);
            // The migrated journal is a new file: open and lock it again.
            return Self::open_with(path, visit);
        }
        let replay = replay(path, &bytes, &mut visit)?;
        let mut len = bytes.len() as u64;
        if replay.valid_len < len {
            tracing::warn!(target: "hsm", path = %path.display(), offset = replay.valid_len,
                dropped_bytes = len - replay.valid_len,
                "signer journal: truncating a torn last record (a crash during an append that was never acknowledged)");
            file.set_len(replay.valid_len)
                .map_err(io_err(path, "truncate torn record"))?;
            file.sync_all()
                .map_err(io_err(path, "fsync after truncation"))?;
            len = replay.valid_len;
        }
        tracing::info!(target: "hsm", path = %path.display(), records = replay.record_count,
            "signer journal opened");
        Ok(SignerJournal {
            path: path.to_path_buf(),
            file,
            len,
            last: replay.last,
            record_count: replay.record_count,
            poisoned: false,
            refusals: RefusalWindow::default(),
        })
    }

    /// Appends `record` and `fdatasync`s the file before returning. A pending summary of rate-limited refusals is
    /// written first, in the same `write` (so an approval still costs one `fdatasync`). After a failure the journal
    /// is poisoned (every later append fails) because the on-disk state is unknown; reopening recovers.
    pub fn append(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        let summary = self.refusals.take_summary();
        self.write_records(summary.iter().chain(std::iter::once(record)))
    }

    /// Journals a refusal, rate-limited (see the module docs): at most [`MAX_REFUSALS_PER_SECOND`] per second of
    /// `record.unix_ms` are written (and synced); the others are counted for a summary record. Returns whether
    /// `record` itself was written. A record that signs (approved, override) is always [`append`](Self::append)ed.
    pub fn append_refusal(&mut self, record: &JournalRecord) -> Result<bool, JournalError> {
        if record.verdict.signs() {
            self.append(record)?;
            return Ok(true);
        }
        let second = record.unix_ms / 1000;
        if second != self.refusals.second {
            let summary = self.refusals.take_summary();
            self.refusals.second = second;
            self.refusals.journaled = 1;
            self.write_records(summary.iter().chain(std::iter::once(record)))?;
            return Ok(true);
        }
        if self.refusals.journaled < MAX_REFUSALS_PER_SECOND {
            self.refusals.journaled += 1;
            self.write_records(std::iter::once(record))?;
            return Ok(true);
        }
        if self.refusals.suppressed == 0 {
            self.refusals.first_suppressed_ms = record.unix_ms;
        }
        self.refusals.suppressed += 1;
        self.refusals.last_suppressed = Some(record.clone());
        Ok(false)
    }

    /// Writes (and syncs) the summary of refusals counted but not journaled, if there are any.
    pub fn flush_refusal_summary(&mut self) -> Result<(), JournalError> {
        match self.refusals.take_summary() {
            Some(summary) => self.write_records(std::iter::once(&summary)),
            None => Ok(()),
        }
    }

    /// Refusals counted since the last summary and not journaled yet.
    pub fn pending_suppressed_refusals(&self) -> u64 {
        self.refusals.suppressed
    }

    /// Writes `records` with one `write` and one `fdatasync`.
    fn write_records<'a>(
        &mut self,
        records: impl Iterator<Item = &'a JournalRecord>,
    ) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned {
                path: self.path.clone(),
            });
        }
        let mut bytes = Vec::new();
        let mut written = Vec::new();
        for record in records {
            let frame = encode_frame(record)?;
            if frame.len() > LEN_PREFIX + MAX_PAYLOAD as usize + CHECKSUM_LEN {
                return Err(JournalError::Io {
                    path: self.path.clone(),
                    op: "append",
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "record larger than MAX_PAYLOAD",
                    ),
                });
            }
            bytes.extend_from_slice(&frame);
            written.push(record);
        }
        let Some(last) = written.last() else {
            return Ok(());
        };
        let result = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = result {
            self.poisoned = true;
            // Best effort: drop the partial record so that a restart sees a clean tail.
            let _ = self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.sync_data());
            return Err(io_err(&self.path, "append")(e));
        }
        self.len += bytes.len() as u64;
        self.last = Some((*last).clone());
        self.record_count += written.len() as u64;
        Ok(())
    }

    /// The last record (after replay and appends).
    pub fn last(&self) -> Option<&JournalRecord> {
        self.last.as_ref()
    }

    /// How many records the journal holds.
    pub fn record_count(&self) -> u64 {
        self.record_count
    }

    /// The journal file path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SignerJournal {
    /// Writes the summary of refusals not journaled yet (best effort).
    fn drop(&mut self) {
        if self.poisoned || self.refusals.suppressed == 0 {
            return;
        }
        if let Err(e) = self.flush_refusal_summary() {
            tracing::warn!(target: "hsm", error = %e, "could not journal the summary of rate-limited refusals");
        }
    }
}

/// Encodes one record as `len || payload || checksum`.
pub fn encode_frame(record: &JournalRecord) -> Result<Vec<u8>, JournalError> {
    let payload = postcard::to_stdvec(record)?;
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(LEN_PREFIX + payload.len() + CHECKSUM_LEN);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&(!len).to_le_bytes());
    frame.extend_from_slice(&payload);
    let sum = checksum(&len.to_le_bytes(), &payload);
    frame.extend_from_slice(&sum);
    Ok(frame)
}

fn checksum(len: &[u8; 4], payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::new()
        .chain_update(len)
        .chain_update(payload)
        .finalize();
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

struct Replay {
    valid_len: u64,
    last: Option<JournalRecord>,
    record_count: u64,
}

fn replay(
    path: &Path,
    bytes: &[u8],
    visit: &mut impl FnMut(u64, &JournalRecord) -> Result<(), JournalError>,
) -> Result<Replay, JournalError> {
    let corrupt = |offset: usize, reason: String| JournalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    if let Some((prefix, [version, ..])) = bytes.split_at_checked(MAGIC_PREFIX.len()) {
        if prefix == MAGIC_PREFIX && *version != JOURNAL_VERSION + b'0' {
            return Err(JournalError::UnsupportedFormat {
                path: path.to_path_buf(),
                found: char::from(*version),
            });
        }
    }
    if bytes.get(..JOURNAL_MAGIC.len()) != Some(&JOURNAL_MAGIC[..]) {
        return Err(corrupt(
            0,
            "missing or wrong header (not a signer journal, or another format version)".into(),
        ));
    }
    let mut offset = JOURNAL_MAGIC.len();
    let mut last = None;
    let mut record_count = 0u64;
    while offset < bytes.len() {
        let rest = bytes.get(offset..).unwrap_or_default();
        let (Some(len_bytes), Some(check_bytes)) = (
            rest.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()),
            rest.get(4..LEN_PREFIX)
                .and_then(|b| <[u8; 4]>::try_from(b).ok()),
        ) else {
            break; // torn length prefix
        };
        let len = u32::from_le_bytes(len_bytes);
        if u32::from_le_bytes(check_bytes) != !len {
            return Err(corrupt(
                offset,
                "record length and its check word disagree".into(),
            ));
        }
        if len == 0 || len > MAX_PAYLOAD {
            return Err(corrupt(
                offset,
                format!("record length {len} out of range 1..={MAX_PAYLOAD}"),
            ));
        }
        let len = len as usize;
        let (Some(payload), Some(sum)) = (
            rest.get(LEN_PREFIX..LEN_PREFIX + len),
            rest.get(LEN_PREFIX + len..LEN_PREFIX + len + CHECKSUM_LEN),
        ) else {
            break; // torn payload or checksum
        };
        if checksum(&len_bytes, payload)[..] != sum[..] {
            return Err(corrupt(offset, "checksum mismatch".into()));
        }
        let record = match postcard::take_from_bytes::<JournalRecord>(payload) {
            Ok((record, [])) => record,
            Ok((_, extra)) => {
                return Err(corrupt(
                    offset,
                    format!("{} unexpected bytes after the record", extra.len()),
                ))
            }
            Err(e) => return Err(corrupt(offset, format!("undecodable record: {e}"))),
        };
        visit(offset as u64, &record)?;
        last = Some(record);
        record_count += 1;
        offset += LEN_PREFIX + len + CHECKSUM_LEN;
    }
    Ok(Replay {
        valid_len: offset as u64,
        last,
        record_count,
    })
}

/// Creates the journal with its header atomically if it does not exist (see [`write_new_file_atomically`]).
fn create_if_missing(path: &Path) -> Result<(), JournalError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path, "stat")(e)),
    }
    if write_new_file_atomically(path, &JOURNAL_MAGIC)? {
        tracing::info!(target: "hsm", path = %path.display(), "signer journal created");
    }
    Ok(())
}

/// Writes `contents` to a new temporary file beside `path`, fsyncs it, hard-links it to `path` (which never
/// clobbers a file created meanwhile), fsyncs the directory and removes the temporary name. Returns `false` (and
/// leaves `path` alone) when something already exists at `path`.
fn write_new_file_atomically(path: &Path, contents: &[u8]) -> Result<bool, JournalError> {
    static TEMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let file_name = path.file_name().ok_or_else(|| JournalError::Io {
        path: path.to_path_buf(),
        op: "create",
        source: io::Error::new(io::ErrorKind::InvalidInput, "journal path has no file name"),
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(
        ".creating.{}.{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let tmp = path.with_file_name(tmp_name);
    let mut created = false;
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err(path, "create temporary file"))?;
        f.write_all(contents)
            .map_err(io_err(path, "write new journal"))?;
        f.sync_all().map_err(io_err(path, "fsync new file"))?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => created = true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(path, "link new file into place")(e)),
        }
        sync_parent_dir(path)
    })();
    let _ = std::fs::remove_file(&tmp);
    result.map(|()| created)
}

fn sync_parent_dir(path: &Path) -> Result<(), JournalError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(path, "fsync directory"))
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> JournalError {
    let path = path.to_path_buf();
    move |source| JournalError::Io { path, op, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(height: u32, b: u8) -> JournalRecord {
        JournalRecord::new(
            SignRequestRecord::Block {
                height,
                block_hash: [b; 32],
            },
            Verdict::Approved,
            "test",
            1_700_000_000_000 + u64::from(height),
        )
    }

    fn write_records(path: &Path, n: u32) -> Vec<u64> {
        let mut j = SignerJournal::open(path).unwrap();
        let mut offsets = Vec::new();
        for h in 1..=n {
            offsets.push(j.len);
            j.append(&rec(h, h as u8)).unwrap();
        }
        offsets
    }

    #[test]
    fn new_journal_has_header_and_no_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let j = SignerJournal::open(&path).unwrap();
        assert_eq!(j.last(), None);
        assert_eq!(j.record_count(), 0);
        drop(j);
        assert_eq!(std::fs::read(&path).unwrap(), JOURNAL_MAGIC);
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn records_round_trip_through_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_records(&path, 5);
        let mut seen = Vec::new();
        let j = SignerJournal::open_with(&path, |_, r| {
            seen.push(r.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, (1..=5).map(|h| rec(h, h as u8)).collect::<Vec<_>>());
        assert_eq!(j.last(), Some(&rec(5, 5)));
        assert_eq!(j.record_count(), 5);
    }

    #[test]
    fn every_torn_tail_is_truncated_and_appending_continues() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let offsets = write_records(&path, 3);
        let full = std::fs::read(&path).unwrap();
        let last_start = offsets[2] as usize;
        for cut in last_start + 1..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let mut j = SignerJournal::open(&path).unwrap();
            assert_eq!(j.last(), Some(&rec(2, 2)), "cut at {cut}");
            assert_eq!(j.record_count(), 2);
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                last_start as u64,
                "cut at {cut}"
            );
            j.append(&rec(3, 0x33)).unwrap();
            drop(j);
            let j = SignerJournal::open(&path).unwrap();
            assert_eq!(j.last(), Some(&rec(3, 0x33)));
            assert_eq!(j.record_count(), 3);
        }
    }

    #[test]
    fn a_flipped_byte_in_any_middle_record_is_corrupt_with_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let offsets = write_records(&path, 3);
        let full = std::fs::read(&path).unwrap();
        let (start, end) = (offsets[1] as usize, offsets[2] as usize);
        for i in start..end {
            let mut bad = full.clone();
            bad[i] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            match SignerJournal::open(&path) {
                Err(JournalError::Corrupt { offset, .. }) => {
                    assert_eq!(offset, start as u64, "flip at {i}")
                }
                other => panic!("flip at {i}: expected Corrupt, got {other:?}"),
            }
            // The damaged file is left untouched.
            assert_eq!(std::fs::read(&path).unwrap(), bad);
        }
    }

    #[test]
    fn a_complete_last_record_with_bad_checksum_is_corrupt_not_torn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let offsets = write_records(&path, 2);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let err = SignerJournal::open(&path).unwrap_err();
        assert!(
            matches!(err, JournalError::Corrupt { offset, .. } if offset == offsets[1]),
            "{err:?}"
        );
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn zero_filled_tail_and_bad_header_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_records(&path, 1);
        let mut bytes = std::fs::read(&path).unwrap();
        let good_len = bytes.len();
        bytes.extend_from_slice(&[0u8; 40]);
        std::fs::write(&path, &bytes).unwrap();
        let err = SignerJournal::open(&path).unwrap_err();
        assert!(
            matches!(err, JournalError::Corrupt { offset, .. } if offset == good_len as u64),
            "{err:?}"
        );

        std::fs::write(&path, b"not a journal at all").unwrap();
        let err = SignerJournal::open(&path).unwrap_err();
        assert!(
            matches!(err, JournalError::Corrupt { offset: 0, .. }),
            "{err:?}"
        );
        std::fs::write(&path, b"FNS").unwrap();
        assert!(matches!(
            SignerJournal::open(&path),
            Err(JournalError::Corrupt { offset: 0, .. })
        ));
    }

    #[test]
    fn an_unknown_format_version_is_refused_naming_the_file_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.journal");
        let mut v3 = b"FNSJRNL3".to_vec();
        v3.extend_from_slice(&[5, 0, 0, 0, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0, 0]);
        std::fs::write(&path, &v3).unwrap();
        let err = SignerJournal::open(&path).unwrap_err();
        assert!(
            matches!(err, JournalError::UnsupportedFormat { found: '3', .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("future.journal")
                && msg.contains("version 3")
                && msg.contains("version 2"),
            "{msg}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), v3);
    }

    #[test]
    fn long_reasons_are_cut_at_a_char_boundary() {
        let r = JournalRecord::new(
            SignRequestRecord::Block {
                height: 1,
                block_hash: [0; 32],
            },
            Verdict::Refused,
            &"é".repeat(MAX_REASON_LEN),
            0,
        );
        assert!(r.reason.len() <= MAX_REASON_LEN && !r.reason.is_empty());
    }

    #[test]
    fn second_open_is_locked_out_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let first = SignerJournal::open(&path).unwrap();
        let err = SignerJournal::open(&path).unwrap_err();
        assert!(matches!(err, JournalError::Locked { .. }), "{err:?}");
        drop(first);
        SignerJournal::open(&path).unwrap();
    }

    #[test]
    fn visitor_errors_abort_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_records(&path, 2);
        let err = SignerJournal::open_with(&path, |offset, _| {
            Err(JournalError::Corrupt {
                path: PathBuf::from("x"),
                offset,
                reason: "visitor says no".into(),
            })
        })
        .unwrap_err();
        assert!(err.to_string().contains("visitor says no"), "{err}");
    }

    #[test]
    fn missing_directory_error_names_the_path() {
        let err =
            SignerJournal::open(Path::new("/nonexistent-dir-for-hsm-test/journal")).unwrap_err();
        assert!(matches!(err, JournalError::Io { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("/nonexistent-dir-for-hsm-test/journal"),
            "{err}"
        );
    }

    fn refusal(height: u32, unix_ms: u64) -> JournalRecord {
        JournalRecord::new(
            SignRequestRecord::Block {
                height,
                block_hash: [0xee; 32],
            },
            Verdict::Refused,
            "height regression",
            unix_ms,
        )
    }

    #[test]
    fn create_new_writes_the_whole_journal_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signer.journal");
        SignerJournal::create_new(&path, &[rec(7, 7)]).unwrap();
        let j = SignerJournal::open(&path).unwrap();
        assert_eq!(j.last(), Some(&rec(7, 7)));
        assert_eq!(j.record_count(), 1);
        drop(j);
        let before = std::fs::read(&path).unwrap();
        let err = SignerJournal::create_new(&path, &[]).unwrap_err();
        assert!(matches!(err, JournalError::Exists { .. }), "{err:?}");
        assert!(err.to_string().contains("signer.journal"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // Only the journal: no temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A fresh journal without records is just the header.
        let empty = dir.path().join("fresh.journal");
        SignerJournal::create_new(&empty, &[]).unwrap();
        assert_eq!(std::fs::read(&empty).unwrap(), JOURNAL_MAGIC);
    }

    /// A reader polling the path while journals with a floor record are created sees either no file or the
    /// complete journal: never an empty or partial one (which a waiting signer would adopt without its floor).
    #[test]
    fn a_journal_being_created_is_never_seen_empty_or_partial() {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signer.journal");
        let floor = rec(1000, 0);
        let mut complete = JOURNAL_MAGIC.to_vec();
        complete.extend_from_slice(&encode_frame(&floor).unwrap());
        let done = Arc::new(AtomicBool::new(false));
        let seen_complete = Arc::new(AtomicU64::new(0));
        let reader = {
            let (path, done, seen_complete, complete) = (
                path.clone(),
                done.clone(),
                seen_complete.clone(),
                complete.clone(),
            );
            std::thread::spawn(move || {
                let mut bad = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    match std::fs::read(&path) {
                        Ok(bytes) if bytes == complete => {
                            seen_complete.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(bytes) => bad.push(bytes.len()),
                        Err(e) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
                    }
                }
                bad
            })
        };
        for _ in 0..300 {
            SignerJournal::create_new(&path, std::slice::from_ref(&floor)).unwrap();
            std::thread::yield_now();
            std::fs::remove_file(&path).unwrap();
        }
        done.store(true, Ordering::SeqCst);
        let bad = reader.join().unwrap();
        assert!(
            bad.is_empty(),
            "the reader saw incomplete journals of lengths {bad:?}"
        );
        assert!(
            seen_complete.load(Ordering::SeqCst) > 0,
            "the reader never saw the journal"
        );
    }

    #[test]
    fn refusals_are_rate_limited_and_summarised_approvals_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut j = SignerJournal::open(&path).unwrap();
        j.append(&rec(10, 10)).unwrap();
        let size_before = std::fs::metadata(&path).unwrap().len();
        let start_ms = 1_700_000_000_000u64;
        // 10,000 refusals within one second.
        let mut written = 0;
        for i in 0..10_000u64 {
            if j.append_refusal(&refusal(9, start_ms + i / 10)).unwrap() {
                written += 1;
            }
        }
        assert_eq!(written, MAX_REFUSALS_PER_SECOND);
        assert_eq!(j.record_count(), 1 + u64::from(MAX_REFUSALS_PER_SECOND));
        assert_eq!(
            j.pending_suppressed_refusals(),
            10_000 - u64::from(MAX_REFUSALS_PER_SECOND)
        );
        // An approval writes the summary first, in the same write; it is journaled and durable.
        j.append(&rec(11, 11)).unwrap();
        assert_eq!(j.pending_suppressed_refusals(), 0);
        // 10,000 more refusals spread over 5 seconds: at most MAX + 1 records per second.
        for i in 0..10_000u64 {
            j.append_refusal(&refusal(9, start_ms + 2_000 + i / 2))
                .unwrap();
        }
        drop(j); // the pending summary is written on drop
        let size = std::fs::metadata(&path).unwrap().len() - size_before;
        let mut records = Vec::new();
        let j = SignerJournal::open_with(&path, |_, r| {
            records.push(r.clone());
            Ok(())
        })
        .unwrap();
        let per_second = u64::from(MAX_REFUSALS_PER_SECOND) + 1;
        assert!(
            records.len() as u64 <= 2 + per_second * 6,
            "{} records for 20,000 refusals",
            records.len()
        );
        assert!(
            size < 300 * (2 + per_second * 6),
            "{size} bytes for 20,000 refusals"
        );
        let approvals: Vec<_> = records.iter().filter(|r| r.verdict.signs()).collect();
        assert_eq!(approvals, vec![&rec(10, 10), &rec(11, 11)]);
        let journaled = records
            .iter()
            .filter(|r| r.verdict == Verdict::Refused && r.suppressed_refusals().is_none())
            .count() as u64;
        let suppressed: u64 = records.iter().filter_map(|r| r.suppressed_refusals()).sum();
        assert_eq!(
            journaled + suppressed,
            20_000,
            "every refusal is journaled or counted"
        );
        assert_eq!(records.get(1).and_then(|r| r.suppressed_refusals()), None);
        assert!(j.last().and_then(|r| r.suppressed_refusals()).is_some());
        assert_eq!(rec(1, 1).suppressed_refusals(), None);
    }
}
