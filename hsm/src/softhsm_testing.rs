//! Test support: a private SoftHSM configuration per process. Compiled for this crate's tests and with the
//! `testing` feature (`hsm = { workspace = true, features = ["testing"] }` in another crate's dev-dependencies, or
//! in the devnet).
//!
//! SoftHSM reads `SOFTHSM2_CONF` once per process, at `C_Initialize`, and Debian's SoftHSM 2.6.1 is not safe with
//! several processes sharing one token directory. So every test binary (= process) gets its own directory:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use hsm::softhsm_testing::token_with_key;
//! use hsm::{DigestSigner, Pkcs11Signer};
//! // First call in the process: creates $TMPDIR/hsm-softhsm-<pid>-<n>/{tokens,softhsm2.conf} and points
//! // SOFTHSM2_CONF at it. Then initialises a fresh token (unique label) and generates a key in it.
//! let token = token_with_key("mytest")?;
//! let mut signer = Pkcs11Signer::open(&token.config, &token.user_pin)?;
//! let _sig = signer.sign_digest(&[7u8; 32])?;
//! # Ok(()) }
//! ```
//!
//! Tests of one binary run as threads of one process and share the directory: give each test its own token label
//! ([`unique_label`] does). A process that spawns children (the devnet) calls [`write_softhsm_conf`] for a directory
//! per child and sets `SOFTHSM2_CONF` in each child's environment.
//!
//! The directories are left behind in `$TMPDIR` (a few KB per token) so a failed test can be inspected; the next
//! process that sets one up removes those older than an hour whose process is gone.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::{generate_key, init_token, Pin, TokenConfig};

/// Debian's SoftHSM module path.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Environment variable that overrides [`SOFTHSM_MODULE`] in [`module_path`].
pub const MODULE_ENV: &str = "HSM_TEST_PKCS11_MODULE";
/// SO PIN of tokens made by [`token_with_key`].
pub const TEST_SO_PIN: &str = "12345678";
/// User PIN of tokens made by [`token_with_key`].
pub const TEST_USER_PIN: &str = "123456";

/// A SoftHSM configuration: `dir/softhsm2.conf` pointing at `dir/tokens`.
#[derive(Clone, Debug)]
pub struct SoftHsmDir {
    /// The directory holding the config and the token directory.
    pub dir: PathBuf,
    /// The config file (the value for `SOFTHSM2_CONF`).
    pub conf: PathBuf,
}

/// The SoftHSM module to use in tests: `$HSM_TEST_PKCS11_MODULE` or [`SOFTHSM_MODULE`].
pub fn module_path() -> PathBuf {
    std::env::var_os(MODULE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SOFTHSM_MODULE))
}

/// Creates `dir/tokens` and writes `dir/softhsm2.conf` (file object store, log level ERROR) atomically (temporary
/// file + rename: a reader never sees a half-written config). Returns the config path. Does not touch the
/// environment.
pub fn write_softhsm_conf(dir: &Path) -> io::Result<PathBuf> {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)?;
    let conf = dir.join("softhsm2.conf");
    let tmp = dir.join(format!("softhsm2.conf.tmp.{}", std::process::id()));
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
        tokens.display()
    );
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &conf)?;
    Ok(conf)
}

/// This process's SoftHSM directory. The first call creates it under `$TMPDIR` and sets `SOFTHSM2_CONF`; call it
/// before any PKCS#11 call of the process (every helper here does).
///
/// Setting an environment variable is racy with threads that read the environment from C at that moment; the call
/// happens once, before SoftHSM is initialised, which is as early as a test binary allows.
pub fn process_softhsm() -> io::Result<&'static SoftHsmDir> {
    static DIR: OnceLock<Result<SoftHsmDir, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let made = (|| {
            let dir = make_process_dir()?;
            let conf = write_softhsm_conf(&dir)?;
            std::env::set_var("SOFTHSM2_CONF", &conf);
            Ok::<_, io::Error>(SoftHsmDir { dir, conf })
        })();
        made.map_err(|e| format!("cannot set up a SoftHSM directory for this process: {e}"))
    })
    .as_ref()
    .map_err(|msg| io::Error::other(msg.clone()))
}

fn make_process_dir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    prune_stale_dirs(&base);
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    for attempt in 0..100u32 {
        let dir = base.join(format!("hsm-softhsm-{pid}-{nanos}-{attempt}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "could not create a unique SoftHSM test directory",
    ))
}

/// Removes `hsm-softhsm-<pid>-*` directories older than an hour whose process is gone (Linux `/proc` check; does
/// nothing where `/proc` is absent). Best effort: errors are ignored.
fn prune_stale_dirs(base: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hsm-softhsm-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(3600));
        if old && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A token label unique within the process: `prefix` (cut to 20 bytes) plus a counter.
pub fn unique_label(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut cut = prefix.len().min(20);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{n}", &prefix[..cut])
}

/// A token made by [`token_with_key`].
#[derive(Debug)]
pub struct TestToken {
    /// Module, token label and key label.
    pub config: TokenConfig,
    /// The user PIN ([`TEST_USER_PIN`]).
    pub user_pin: Pin,
    /// The SO PIN ([`TEST_SO_PIN`]).
    pub so_pin: Pin,
    /// The generated key's public key.
    pub public_key: secp256k1::PublicKey,
}

/// The user PIN of test tokens ([`TEST_USER_PIN`]).
pub fn user_pin() -> Pin {
    Pin::new(TEST_USER_PIN.to_string())
}

/// The SO PIN of test tokens ([`TEST_SO_PIN`]).
pub fn so_pin() -> Pin {
    Pin::new(TEST_SO_PIN.to_string())
}

/// Sets up this process's SoftHSM (if needed), initialises a new token labelled `unique_label(prefix)` with the
/// test PINs and generates the key `block-signing` in it.
pub fn token_with_key(prefix: &str) -> Result<TestToken, Box<dyn std::error::Error + Send + Sync>> {
    let config = empty_token(prefix)?;
    let public_key = generate_key(&config, &user_pin())?;
    Ok(TestToken {
        config,
        user_pin: user_pin(),
        so_pin: so_pin(),
        public_key,
    })
}

/// Like [`token_with_key`] without generating a key: returns the config (key label `block-signing`, not present).
pub fn empty_token(prefix: &str) -> Result<TokenConfig, Box<dyn std::error::Error + Send + Sync>> {
    process_softhsm()?;
    let config = TokenConfig {
        module_path: module_path(),
        token_label: unique_label(prefix),
        key_label: "block-signing".to_string(),
    };
    init_token(
        &config.module_path,
        &config.token_label,
        &so_pin(),
        &user_pin(),
    )?;
    Ok(config)
}

/// The process-wide cryptoki context of `module_path` (the same one the signers use; initialised once, never
/// finalised), for tests that inspect token objects directly. Calls [`process_softhsm`] first.
pub fn shared_context(
    module_path: &Path,
) -> Result<cryptoki::context::Pkcs11, Box<dyn std::error::Error + Send + Sync>> {
    process_softhsm()?;
    Ok(crate::pkcs11::context::context(module_path)?)
}
