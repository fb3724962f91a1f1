//! Optional per-block timing records for the latency benchmark: enabled by setting `FUNCTIONARY_TIMING_LOG` to a
//! file path. One JSON object per line: `{"event":"proposed"|"stored"|"signed", "height", "hash", "at_ms", ...}`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// Writer of timing records (no-op when disabled).
pub struct TimingLog {
    out: Option<BufWriter<File>>,
}

impl TimingLog {
    /// Opens the file named by `FUNCTIONARY_TIMING_LOG`, if set.
    pub fn from_env() -> Self {
        let out = std::env::var_os("FUNCTIONARY_TIMING_LOG").and_then(|path| {
            match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
                Ok(f) => Some(BufWriter::new(f)),
                Err(e) => {
                    tracing::warn!(target: "daemon", error = %e, "cannot open FUNCTIONARY_TIMING_LOG");
                    None
                }
            }
        });
        TimingLog { out }
    }

    /// Appends one record (flushed at once so a killed process loses nothing already reported).
    pub fn record(
        &mut self,
        event: &str,
        height: u32,
        hash: &elements::BlockHash,
        extra: serde_json::Value,
    ) {
        let Some(out) = self.out.as_mut() else { return };
        let mut obj = serde_json::json!({ "event": event, "height": height, "hash": hash.to_string(), "at_ms": now_ms() });
        if let (Some(map), serde_json::Value::Object(more)) = (obj.as_object_mut(), extra) {
            map.extend(more);
        }
        let _ = writeln!(out, "{obj}");
        let _ = out.flush();
    }
}

/// Wall clock in unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
