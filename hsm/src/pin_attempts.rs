//! Counting failed PIN logins ourselves: SoftHSM (and some other tokens) never lock a PIN.
//!
//! The count lives in a small file (`failures=N`), written atomically (temporary file, fsync, rename, directory
//! fsync). After `max_failures` consecutive failures the signer refuses to even try the PIN until an operator resets
//! the count; a successful login resets it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::HsmError;

/// Consecutive failed logins allowed before the signer stops trying.
pub const DEFAULT_MAX_PIN_FAILURES: u32 = 5;

/// The durable failed-login counter of one token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginAttempts {
    path: PathBuf,
    max_failures: u32,
}

impl LoginAttempts {
    /// A counter kept in `path`, refusing after `max_failures` consecutive failures (at least 1).
    pub fn new(path: &Path, max_failures: u32) -> Self {
        LoginAttempts {
            path: path.to_path_buf(),
            max_failures: max_failures.max(1),
        }
    }

    /// A counter next to the journal: `<journal dir>/pin-attempts.<token label>` (label characters other than
    /// ASCII letters, digits, `-` and `_` become `_`), with [`DEFAULT_MAX_PIN_FAILURES`].
    pub fn beside_journal(journal_path: &Path, token_label: &str) -> Self {
        let safe: String = token_label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = match journal_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        Self::new(
            &dir.join(format!("pin-attempts.{safe}")),
            DEFAULT_MAX_PIN_FAILURES,
        )
    }

    /// The counter file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configured maximum.
    pub fn max_failures(&self) -> u32 {
        self.max_failures
    }

    /// Consecutive failures so far (0 when the file is absent). An unreadable or malformed file is an error (fail
    /// closed: the count is never assumed to be zero).
    pub fn failures(&self) -> Result<u32, HsmError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(self.file_error(format!("cannot read: {e}"))),
        };
        text.trim()
            .strip_prefix("failures=")
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| self.file_error(format!("malformed content {:?}", text.trim())))
    }

    /// Refuses with [`HsmError::PinAttemptsExhausted`] once `max_failures` consecutive failures are recorded.
    pub fn check(&self, token: &str) -> Result<(), HsmError> {
        let failures = self.failures()?;
        if failures >= self.max_failures {
            tracing::error!(target: "hsm", token, failures, path = %self.path.display(),
                "PIN login refused: too many consecutive failures");
            return Err(HsmError::PinAttemptsExhausted {
                token: token.to_string(),
                failures,
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Records one more failure; returns the new count.
    pub fn record_failure(&self) -> Result<u32, HsmError> {
        let n = self.failures()?.saturating_add(1);
        self.write(n)?;
        Ok(n)
    }

    /// A successful login: the count goes back to 0.
    pub fn record_success(&self) -> Result<(), HsmError> {
        if self.failures()? != 0 {
            self.write(0)?;
        }
        Ok(())
    }

    /// Operator reset after fixing the PIN file (also what a success does).
    pub fn reset(&self) -> Result<(), HsmError> {
        tracing::warn!(target: "hsm", path = %self.path.display(), "PIN failure count reset by operator");
        self.write(0)
    }

    fn write(&self, failures: u32) -> Result<(), HsmError> {
        let mut tmp_name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        tmp_name.push(format!(".tmp.{}", std::process::id()));
        let tmp = self.path.with_file_name(tmp_name);
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let result = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(format!("failures={failures}\n").as_bytes())?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .and_then(|()| File::open(dir)?.sync_all());
        result.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.file_error(format!("cannot write: {e}"))
        })
    }

    fn file_error(&self, reason: String) -> HsmError {
        HsmError::PinAttemptFile {
            path: self.path.clone(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_persist_refuse_at_max_and_reset() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("signer.journal");
        let a = LoginAttempts::beside_journal(&journal, "tok/1");
        assert_eq!(a.path(), dir.path().join("pin-attempts.tok_1"));
        assert_eq!(a.failures().unwrap(), 0);
        for n in 1..=4 {
            assert_eq!(a.record_failure().unwrap(), n);
            a.check("tok").unwrap();
        }
        assert_eq!(a.record_failure().unwrap(), 5);
        // A fresh value (as after a restart) sees the same count.
        let again = LoginAttempts::beside_journal(&journal, "tok/1");
        let err = again.check("tok").unwrap_err();
        assert!(
            matches!(err, HsmError::PinAttemptsExhausted { failures: 5, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("pin-attempts.tok_1") && msg.contains("reset"),
            "{msg}"
        );
        again.reset().unwrap();
        again.check("tok").unwrap();
        a.record_failure().unwrap();
        a.record_success().unwrap();
        assert_eq!(a.failures().unwrap(), 0);
    }

    #[test]
    fn a_malformed_counter_file_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin-attempts.x");
        std::fs::write(&path, "garbage").unwrap();
        let a = LoginAttempts::new(&path, 3);
        assert!(matches!(a.check("x"), Err(HsmError::PinAttemptFile { .. })));
    }
}
