//! PINs: read from files, zeroised on drop, never printed.

use std::fmt;
use std::path::Path;

use cryptoki::types::AuthPin;

use crate::HsmError;

/// A token PIN. Held as a `secrecy::SecretString` (zeroised on drop); `Debug` prints `Pin(***)`.
#[derive(Clone)]
pub struct Pin(AuthPin);

impl Pin {
    /// Reads a PIN from `path`. Trailing `\n` / `\r\n` are trimmed; an empty PIN is an error naming the path.
    /// Warns (without failing) when the file is readable by group or others; `functionary-signer` refuses to start
    /// on such a file (`functionary::signer_service::load::check_pin_file_mode`).
    pub fn from_file(path: &Path) -> Result<Pin, HsmError> {
        let text = std::fs::read_to_string(path).map_err(|e| HsmError::PinFile {
            path: path.to_path_buf(),
            reason: format!("cannot read: {e}"),
        })?;
        let Some(secret) = pin_from_text(text) else {
            return Err(HsmError::PinFile {
                path: path.to_path_buf(),
                reason: "file is empty".to_string(),
            });
        };
        warn_if_readable_by_others(path);
        Ok(Pin::new(secret))
    }

    /// Wraps a PIN held in memory (tests, ceremonies that prompt).
    pub fn new(secret: String) -> Pin {
        // Copy into an exactly sized secret, then scrub the caller's buffer (best effort without `zeroize`).
        let pin = Pin(AuthPin::from(secret.as_str()));
        let mut bytes = secret.into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
        pin
    }

    pub(crate) fn auth_pin(&self) -> &AuthPin {
        &self.0
    }
}

/// Trims trailing `\n` / `\r\n`; `None` when nothing is left.
fn pin_from_text(mut text: String) -> Option<String> {
    let trimmed_len = text.trim_end_matches(['\n', '\r']).len();
    text.truncate(trimmed_len);
    (!text.is_empty()).then_some(text)
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(***)")
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(target: "hsm", path = %path.display(), mode = format!("{:o}", mode & 0o777),
                "PIN file is accessible by group or others; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn reads_pin_and_trims_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "123456\r\n").unwrap();
        let pin = Pin::from_file(&path).unwrap();
        assert_eq!(format!("{pin:?}"), "Pin(***)");
        assert_eq!(
            pin_from_text("123456\r\n".into()).as_deref(),
            Some("123456")
        );
        assert_eq!(pin_from_text("12 34\n\n".into()).as_deref(), Some("12 34"));
        assert_eq!(pin_from_text("\r\n".into()), None);
    }

    #[test]
    fn empty_pin_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty-pin");
        std::fs::write(&path, "\n").unwrap();
        let err = Pin::from_file(&path).unwrap_err();
        assert!(matches!(err, HsmError::PinFile { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("empty-pin") && msg.contains("empty"), "{msg}");
    }

    #[test]
    fn missing_pin_file_names_the_path() {
        let err = Pin::from_file(Path::new("/nonexistent/dir/pin-file")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/dir/pin-file"),
            "{err}"
        );
    }
}
