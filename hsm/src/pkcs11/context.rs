//! One cryptoki context per module and process: `C_Initialize` once (with `CKF_OS_LOCKING_OK`), never finalised.
//!
//! A second `C_Initialize` in the same process fails and `C_Finalize` would break every other user of the module,
//! so contexts are kept in a process-wide registry keyed by the (canonical) module path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};

use crate::HsmError;

static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();

/// The initialised context of the module at `module_path`, loading and initialising it on first use.
pub(crate) fn context(module_path: &Path) -> Result<Pkcs11, HsmError> {
    let key = std::fs::canonicalize(module_path).unwrap_or_else(|_| module_path.to_path_buf());
    let registry = CONTEXTS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut contexts = registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(ctx) = contexts.get(&key) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module_path).map_err(|source| HsmError::ModuleLoad {
        path: module_path.to_path_buf(),
        source,
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        // Someone else in this process initialised the module: it is usable as is.
        Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {
            tracing::warn!(target: "hsm", module = %module_path.display(),
                "PKCS#11 module was already initialised in this process by someone else");
        }
        Err(source) => {
            return Err(HsmError::Pkcs11 {
                op: "C_Initialize",
                source,
            })
        }
    }
    tracing::info!(target: "hsm", module = %module_path.display(), "PKCS#11 module loaded and initialised");
    contexts.insert(key, ctx.clone());
    Ok(ctx)
}
