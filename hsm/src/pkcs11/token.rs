//! Finding tokens by label, logging in, and initialising a new token.

use std::path::Path;
use std::sync::Mutex;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

use super::context::context;
use crate::error::p11;
use crate::{HsmError, Pin};

/// Serialises `init_token` within the process: two concurrent calls would pick the same free slot and the second
/// would re-initialise (wipe) the first one's token. (Other processes are not covered: run ceremonies one at a time.)
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// PKCS#11 token labels are 32 bytes, blank padded.
const MAX_TOKEN_LABEL: usize = 32;

pub(crate) fn validate_token_label(label: &str) -> Result<(), HsmError> {
    let reason = if label.is_empty() {
        "empty"
    } else if label.len() > MAX_TOKEN_LABEL {
        "longer than 32 bytes (PKCS#11 token labels are 32 bytes)"
    } else if label.trim() != label {
        "leading or trailing whitespace"
    } else {
        return Ok(());
    };
    Err(HsmError::InvalidLabel {
        label: label.to_string(),
        reason,
    })
}

/// The slot holding the initialised token labelled `label`.
pub(crate) fn find_token(ctx: &Pkcs11, label: &str) -> Result<Slot, HsmError> {
    let mut present = Vec::new();
    let mut matches = Vec::new();
    for slot in ctx
        .get_slots_with_initialized_token()
        .map_err(p11("C_GetSlotList"))?
    {
        let info = ctx.get_token_info(slot).map_err(p11("C_GetTokenInfo"))?;
        if info.label() == label {
            matches.push(slot);
        }
        present.push(info.label().to_string());
    }
    match matches.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(HsmError::TokenNotFound {
            label: label.to_string(),
            present,
        }),
        many => Err(HsmError::TokenAmbiguous {
            label: label.to_string(),
            count: many.len(),
        }),
    }
}

/// Logs the normal user in; "already logged in" (login is per application and token) is fine.
pub(crate) fn login_user(session: &Session, pin: &Pin, token: &str) -> Result<(), HsmError> {
    login(session, UserType::User, pin, token)
}

fn login(session: &Session, user: UserType, pin: &Pin, token: &str) -> Result<(), HsmError> {
    match session.login(user, Some(pin.auth_pin())) {
        Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(Error::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
            Err(HsmError::PinIncorrect {
                token: token.to_string(),
            })
        }
        Err(Error::Pkcs11(RvError::PinLocked, _)) => Err(HsmError::PinLocked {
            token: token.to_string(),
        }),
        Err(Error::Pkcs11(RvError::UserPinNotInitialized, _)) => Err(HsmError::PinNotInitialized {
            token: token.to_string(),
        }),
        Err(source) => Err(HsmError::Pkcs11 {
            op: "C_Login",
            source,
        }),
    }
}

/// Initialises a token labelled `token_label` in a free slot and sets its user PIN.
///
/// Refuses with [`HsmError::TokenExists`] when a token with that label exists: re-initialising wipes its keys.
pub fn init_token(
    module_path: &Path,
    token_label: &str,
    so_pin: &Pin,
    user_pin: &Pin,
) -> Result<(), HsmError> {
    validate_token_label(token_label)?;
    let ctx = context(module_path)?;
    let _serialised = INIT_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut free = None;
    for slot in ctx.get_slots_with_token().map_err(p11("C_GetSlotList"))? {
        let info = ctx.get_token_info(slot).map_err(p11("C_GetTokenInfo"))?;
        if info.token_initialized() {
            if info.label() == token_label {
                return Err(HsmError::TokenExists {
                    label: token_label.to_string(),
                });
            }
        } else if free.is_none() {
            free = Some(slot);
        }
    }
    let free = free.ok_or_else(|| HsmError::NoFreeSlot {
        label: token_label.to_string(),
    })?;
    ctx.init_token(free, so_pin.auth_pin(), token_label)
        .map_err(|e| pin_setting_error(e, token_label, "C_InitToken"))?;
    // The token may appear under another slot id now: find it again by label.
    let slot = find_token(&ctx, token_label)?;
    let session = ctx.open_rw_session(slot).map_err(p11("C_OpenSession"))?;
    login(&session, UserType::So, so_pin, token_label)?;
    session
        .init_pin(user_pin.auth_pin())
        .map_err(|e| pin_setting_error(e, token_label, "C_InitPIN"))?;
    session.logout().map_err(p11("C_Logout"))?;
    tracing::info!(target: "hsm", token = token_label, module = %module_path.display(), "token initialised");
    Ok(())
}

fn pin_setting_error(e: Error, token: &str, op: &'static str) -> HsmError {
    match e {
        Error::Pkcs11(RvError::PinLenRange, _) => HsmError::PinLength {
            token: token.to_string(),
        },
        source => HsmError::Pkcs11 { op, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_labels_are_validated() {
        assert!(validate_token_label("functionary-0").is_ok());
        assert!(validate_token_label(&"x".repeat(32)).is_ok());
        for bad in ["", " lead", "trail ", &"x".repeat(33)] {
            assert!(
                matches!(
                    validate_token_label(bad),
                    Err(HsmError::InvalidLabel { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
