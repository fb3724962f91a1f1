//! The RPC cookie: a random secret written to `<data_dir>/.cookie` as `__cookie__:<64 hex>` (mode 0600), and the
//! constant-time check of an `Authorization: Basic ...` header against it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use rand::RngCore;

/// The user name in the cookie, as bitcoind.
pub const COOKIE_USER: &str = "__cookie__";

/// Name of the cookie file inside the data directory.
pub const COOKIE_FILE_NAME: &str = ".cookie";

/// The `user:password` credentials a client must present. Debug never shows the secret.
pub struct CookieCredentials {
    user_pass: String,
}

impl std::fmt::Debug for CookieCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieCredentials(<redacted>)")
    }
}

impl CookieCredentials {
    /// A fresh random cookie (32 random bytes, hex).
    pub fn generate() -> Self {
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Self {
            user_pass: format!("{COOKIE_USER}:{}", hex::encode(secret)),
        }
    }

    /// True when `authorization` (an HTTP `Authorization` header value) is `Basic base64(user:pass)` with exactly
    /// these credentials. The comparison of the decoded credentials does not depend on where they differ.
    pub fn authorizes(&self, authorization: &[u8]) -> bool {
        let Some(encoded) = authorization.strip_prefix(b"Basic ") else {
            return false;
        };
        let encoded = trim_ascii(encoded);
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            return false;
        };
        constant_time_eq(&decoded, self.user_pass.as_bytes())
    }

    /// Writes the cookie to `path` atomically (temporary file with mode 0600, fsync, rename).
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        let tmp = tmp_path(path);
        let result = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(self.user_pass.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// The cookie file's path inside `data_dir`.
pub fn cookie_path(data_dir: &Path) -> PathBuf {
    data_dir.join(COOKIE_FILE_NAME)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user_pass: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
        .into_bytes()
    }

    #[test]
    fn accepts_only_the_exact_credentials() {
        let cookie = CookieCredentials::generate();
        assert!(cookie.authorizes(&header(&cookie.user_pass)));
        let mut wrong = cookie.user_pass.clone();
        wrong.pop();
        wrong.push(if cookie.user_pass.ends_with('0') {
            '1'
        } else {
            '0'
        });
        assert!(!cookie.authorizes(&header(&wrong)));
        assert!(!cookie.authorizes(&header(&cookie.user_pass[..cookie.user_pass.len() - 1])));
        assert!(!cookie.authorizes(b"Bearer abc"));
        assert!(!cookie.authorizes(b"Basic !!!notbase64"));
        assert!(!format!("{cookie:?}").contains(&cookie.user_pass[COOKIE_USER.len() + 1..]));
    }

    #[test]
    fn cookie_format_is_user_colon_64_hex() {
        let cookie = CookieCredentials::generate();
        let (user, secret) = cookie.user_pass.split_once(':').expect("colon");
        assert_eq!(user, COOKIE_USER);
        assert_eq!(secret.len(), 64);
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(cookie.user_pass, CookieCredentials::generate().user_pass);
    }
}
