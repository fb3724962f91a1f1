//! Small file helpers of the ceremony: reading, hashing, atomic writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::CeremonyError;

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads a whole file, naming it on error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, CeremonyError> {
    std::fs::read(path).map_err(CeremonyError::io(path))
}

/// Reads a file as UTF-8 text, naming it on error.
pub(crate) fn read_text(path: &Path) -> Result<String, CeremonyError> {
    std::fs::read_to_string(path).map_err(CeremonyError::io(path))
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory (mode `mode`), fsync, rename,
/// then fsync of the directory (best effort).
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), CeremonyError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(CeremonyError::Io { path: tmp, source });
    }
    std::fs::rename(&tmp, path).map_err(CeremonyError::io(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// `path` if absolute, else `base/path`.
pub(crate) fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// How a file is named in messages: its path as given.
pub(crate) fn display_name(path: &Path) -> String {
    path.display().to_string()
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
