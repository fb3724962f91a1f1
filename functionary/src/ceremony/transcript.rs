//! The ceremony transcript: one JSON object per line, appended by every step, hash-chained per file.
//!
//! ```json
//! {"version":1,"step":"member","who":"alice","time":1763740800,
//!  "inputs":{"node_config":"<sha256 hex>"},"outputs":{"descriptor":"<sha256 hex>"},
//!  "details":{...},"prev":"<sha256 hex of the previous line's bytes, or 64 zeros>"}
//! ```
//!
//! `inputs` and `outputs` map a name to the SHA-256 (hex) of a file's bytes, or to a hash value the step produced
//! (`config_hash`). `prev` chains each line to the line before it in the same file (without its newline), so a
//! line removed, altered or reordered in the middle of a file is detected. An auditor may be handed several
//! files (one per machine); each is checked on its own.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files::{read_text, sha256_hex, unix_now};
use super::CeremonyError;

/// Version of the transcript line format.
pub const TRANSCRIPT_VERSION: u32 = 1;
/// `prev` of the first line of a file.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Default transcript file name (in the data dir for member steps, next to the output for the coordinator).
pub const TRANSCRIPT_FILE: &str = "ceremony.transcript.jsonl";

/// One step of the ceremony as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscriptEntry {
    /// Line format version ([`TRANSCRIPT_VERSION`]).
    pub version: u32,
    /// `member`, `assemble` or `verify`.
    pub step: String,
    /// The member name, or the coordinator's name for `assemble`.
    pub who: String,
    /// Unix seconds when the step finished.
    pub time: u64,
    /// Hashes of the inputs, by name.
    pub inputs: BTreeMap<String, String>,
    /// Hashes of the outputs, by name.
    pub outputs: BTreeMap<String, String>,
    /// Step-specific values an auditor needs to redo the step (public keys, assembly parameters).
    pub details: serde_json::Value,
    /// SHA-256 of the previous line of this file, or [`GENESIS_PREV`].
    pub prev: String,
}

/// A step about to be recorded (everything but `version`, `time` and `prev`).
#[derive(Clone, Debug)]
pub struct NewEntry {
    /// See [`TranscriptEntry::step`].
    pub step: &'static str,
    /// See [`TranscriptEntry::who`].
    pub who: String,
    /// See [`TranscriptEntry::inputs`].
    pub inputs: BTreeMap<String, String>,
    /// See [`TranscriptEntry::outputs`].
    pub outputs: BTreeMap<String, String>,
    /// See [`TranscriptEntry::details`].
    pub details: serde_json::Value,
}

/// Appends a step to the transcript at `path` (created if absent), chained to its last line, and fsyncs it.
pub fn append(path: &Path, entry: NewEntry) -> Result<TranscriptEntry, CeremonyError> {
    let prev = match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| sha256_hex(l.as_bytes()))
            .unwrap_or_else(|| GENESIS_PREV.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => GENESIS_PREV.to_string(),
        Err(source) => {
            return Err(CeremonyError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let recorded = TranscriptEntry {
        version: TRANSCRIPT_VERSION,
        step: entry.step.to_string(),
        who: entry.who,
        time: unix_now(),
        inputs: entry.inputs,
        outputs: entry.outputs,
        details: entry.details,
        prev,
    };
    let mut line = serde_json::to_string(&recorded)
        .map_err(|e| CeremonyError::invalid("transcript", format!("cannot encode a line: {e}")))?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(CeremonyError::io(path))?;
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(CeremonyError::io(path))?;
    tracing::info!(target: "ceremony", transcript = %path.display(), step = %recorded.step, who = %recorded.who,
        "transcript line appended");
    Ok(recorded)
}

/// Reads a transcript file and checks its form and hash chain. Returns the entries with their 1-based line
/// numbers.
pub fn read(path: &Path) -> Result<Vec<(usize, TranscriptEntry)>, CeremonyError> {
    let text = read_text(path)?;
    let mut entries = Vec::new();
    let mut expected_prev = GENESIS_PREV.to_string();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| CeremonyError::Transcript {
            path: PathBuf::from(path),
            line: line_no,
            message,
        };
        let entry: TranscriptEntry =
            serde_json::from_str(line).map_err(|e| bad(format!("not a transcript line: {e}")))?;
        if entry.version != TRANSCRIPT_VERSION {
            return Err(bad(format!("unsupported version {}", entry.version)));
        }
        if entry.prev != expected_prev {
            return Err(bad(format!(
                "hash chain broken: prev is {}, but the previous line hashes to {expected_prev} \
                 (a line was removed, altered or reordered)",
                entry.prev
            )));
        }
        expected_prev = sha256_hex(line.as_bytes());
        entries.push((line_no, entry));
    }
    Ok(entries)
}
