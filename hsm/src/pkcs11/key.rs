//! Key pairs by label: generation inside the token, lookup, public key decoding.

use std::sync::Mutex;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use secp256k1::PublicKey;
use sha2::{Digest, Sha256};

use super::context::context;
use super::token::{find_token, login_user, validate_token_label};
use super::TokenConfig;
use crate::error::p11;
use crate::verify::sign_verified;
use crate::{HsmError, Pin};

/// DER of the secp256k1 curve OID 1.3.132.0.10 (CKA_EC_PARAMS).
pub(crate) const SECP256K1_OID_DER: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];

/// Serialises `generate_key` within the process (check-then-generate must not race on one label).
static KEYGEN_LOCK: Mutex<()> = Mutex::new(());

/// The digest signed once by `generate_key` and `Pkcs11Signer::open` to prove the key pair works.
pub(crate) fn self_test_digest() -> [u8; 32] {
    Sha256::digest(b"hsm: key pair self-test").into()
}

pub(crate) fn validate_key_label(label: &str) -> Result<(), HsmError> {
    let reason = if label.is_empty() {
        "empty"
    } else if label.len() > 255 {
        "longer than 255 bytes"
    } else {
        return Ok(());
    };
    Err(HsmError::InvalidLabel {
        label: label.to_string(),
        reason,
    })
}

/// Generates a secp256k1 key pair inside the token. The private key is sensitive, never extractable, sign-only
/// (no decrypt, unwrap or derive), not modifiable and not copyable. Refuses if any object carries `cfg.key_label`.
/// The new key signs a self-test digest, verified against the returned public key.
pub fn generate_key(cfg: &TokenConfig, pin: &Pin) -> Result<PublicKey, HsmError> {
    validate_token_label(&cfg.token_label)?;
    validate_key_label(&cfg.key_label)?;
    let ctx = context(&cfg.module_path)?;
    let slot = find_token(&ctx, &cfg.token_label)?;
    let session = ctx.open_rw_session(slot).map_err(p11("C_OpenSession"))?;
    login_user(&session, pin, &cfg.token_label)?;
    let _serialised = KEYGEN_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let existing = session
        .find_objects(&[Attribute::Label(cfg.key_label.as_bytes().to_vec())])
        .map_err(p11("C_FindObjects"))?;
    if !existing.is_empty() {
        return Err(HsmError::KeyExists {
            label: cfg.key_label.clone(),
            token: cfg.token_label.clone(),
        });
    }
    let label = cfg.key_label.as_bytes().to_vec();
    let id = Sha256::digest(&label)[..16].to_vec();
    let public_template = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::EcParams(SECP256K1_OID_DER.to_vec()),
        Attribute::Label(label.clone()),
        Attribute::Id(id.clone()),
    ];
    let private_template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Derive(false),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Modifiable(false),
        Attribute::Copyable(false),
        Attribute::Label(label),
        Attribute::Id(id),
    ];
    let (public_handle, private_handle) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &public_template,
            &private_template,
        )
        .map_err(p11("C_GenerateKeyPair"))?;
    let public_key = read_public_key_from(&session, public_handle, &cfg.key_label)?;
    let digest = self_test_digest();
    sign_verified(&public_key, &digest, || {
        session
            .sign(&Mechanism::Ecdsa, private_handle, &digest)
            .map_err(p11("C_Sign"))
    })?;
    tracing::info!(target: "hsm", token = %cfg.token_label, key = %cfg.key_label, public_key = %public_key,
        "secp256k1 key pair generated inside the token");
    Ok(public_key)
}

/// The public key of the existing key pair labelled `cfg.key_label`.
pub fn read_public_key(cfg: &TokenConfig, pin: &Pin) -> Result<PublicKey, HsmError> {
    validate_token_label(&cfg.token_label)?;
    let ctx = context(&cfg.module_path)?;
    let slot = find_token(&ctx, &cfg.token_label)?;
    let session = ctx.open_ro_session(slot).map_err(p11("C_OpenSession"))?;
    login_user(&session, pin, &cfg.token_label)?;
    find_private_key(&session, cfg)?;
    let public_handle = find_public_key(&session, cfg)?;
    read_public_key_from(&session, public_handle, &cfg.key_label)
}

/// The unique secp256k1 private key labelled `cfg.key_label` (the session must be logged in).
pub(crate) fn find_private_key(
    session: &Session,
    cfg: &TokenConfig,
) -> Result<ObjectHandle, HsmError> {
    let handles = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(cfg.key_label.as_bytes().to_vec()),
        ])
        .map_err(p11("C_FindObjects"))?;
    let handle = match handles.as_slice() {
        [h] => *h,
        [] => {
            return Err(HsmError::KeyNotFound {
                label: cfg.key_label.clone(),
                token: cfg.token_label.clone(),
            })
        }
        many => {
            return Err(HsmError::KeyAmbiguous {
                label: cfg.key_label.clone(),
                token: cfg.token_label.clone(),
                count: many.len(),
            })
        }
    };
    check_secp256k1(session, handle, &cfg.key_label)?;
    Ok(handle)
}

/// The unique public key object labelled `cfg.key_label`.
pub(crate) fn find_public_key(
    session: &Session,
    cfg: &TokenConfig,
) -> Result<ObjectHandle, HsmError> {
    let handles = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(cfg.key_label.as_bytes().to_vec()),
        ])
        .map_err(p11("C_FindObjects"))?;
    match handles.as_slice() {
        [h] => Ok(*h),
        [] => Err(HsmError::PublicKeyNotFound {
            label: cfg.key_label.clone(),
            token: cfg.token_label.clone(),
        }),
        many => Err(HsmError::KeyAmbiguous {
            label: cfg.key_label.clone(),
            token: cfg.token_label.clone(),
            count: many.len(),
        }),
    }
}

fn check_secp256k1(session: &Session, handle: ObjectHandle, label: &str) -> Result<(), HsmError> {
    let attrs = session
        .get_attributes(handle, &[AttributeType::KeyType, AttributeType::EcParams])
        .map_err(p11("C_GetAttributeValue"))?;
    let wrong = |reason: &str| HsmError::WrongKeyType {
        label: label.to_string(),
        reason: reason.to_string(),
    };
    let key_type = attrs.iter().find_map(|a| match a {
        Attribute::KeyType(t) => Some(*t),
        _ => None,
    });
    if key_type != Some(KeyType::EC) {
        return Err(wrong("not an EC key"));
    }
    let params = attrs.iter().find_map(|a| match a {
        Attribute::EcParams(p) => Some(p.as_slice()),
        _ => None,
    });
    if params != Some(&SECP256K1_OID_DER[..]) {
        return Err(HsmError::WrongKeyType {
            label: label.to_string(),
            reason: format!(
                "curve parameters {} are not secp256k1",
                hex::encode(params.unwrap_or_default())
            ),
        });
    }
    Ok(())
}

pub(crate) fn read_public_key_from(
    session: &Session,
    public_handle: ObjectHandle,
    label: &str,
) -> Result<PublicKey, HsmError> {
    let attrs = session
        .get_attributes(public_handle, &[AttributeType::EcPoint])
        .map_err(p11("C_GetAttributeValue"))?;
    let point = attrs
        .iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => Some(p.as_slice()),
            _ => None,
        })
        .ok_or_else(|| HsmError::WrongKeyType {
            label: label.to_string(),
            reason: "public key has no CKA_EC_POINT".to_string(),
        })?;
    ec_point_to_public_key(point).map_err(|reason| HsmError::WrongKeyType {
        label: label.to_string(),
        reason,
    })
}

/// CKA_EC_POINT is a DER OCTET STRING around the SEC1 point (`04 41 || 04 X Y`); some HSMs return the bare point.
pub(crate) fn ec_point_to_public_key(ec_point: &[u8]) -> Result<PublicKey, String> {
    let sec1 = match ec_point {
        [0x04, len, rest @ ..]
            if usize::from(*len) == rest.len() && (rest.len() == 65 || rest.len() == 33) =>
        {
            rest
        }
        _ if ec_point.len() == 65 || ec_point.len() == 33 => ec_point,
        _ => {
            return Err(format!(
                "unexpected CKA_EC_POINT encoding {}",
                hex::encode(ec_point)
            ))
        }
    };
    PublicKey::from_slice(sec1).map_err(|e| format!("CKA_EC_POINT is not a secp256k1 point: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secp256k1::{SecretKey, SECP256K1};

    #[test]
    fn ec_point_forms_decode() {
        let pk = PublicKey::from_secret_key(SECP256K1, &SecretKey::from_slice(&[1u8; 32]).unwrap());
        let raw = pk.serialize_uncompressed();
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend_from_slice(&raw);
        assert_eq!(ec_point_to_public_key(&wrapped).unwrap(), pk);
        assert_eq!(ec_point_to_public_key(&raw).unwrap(), pk);
        assert_eq!(ec_point_to_public_key(&pk.serialize()).unwrap(), pk);
        assert!(ec_point_to_public_key(&[0x04, 0x41, 1, 2, 3]).is_err());
        assert!(ec_point_to_public_key(&[]).is_err());
        let mut off_curve = wrapped.clone();
        off_curve[66] ^= 1;
        assert!(ec_point_to_public_key(&off_curve).is_err());
    }
}
