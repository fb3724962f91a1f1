//! Real SoftHSM: token ceremony, 200 signatures, key attributes, refusals. One process = one SoftHSM directory.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use hsm::softhsm_testing::{shared_context, token_with_key};
use hsm::{generate_key, init_token, read_public_key, DigestSigner, HsmError, Pkcs11Signer};
use rand::RngCore;
use secp256k1::{Message, SECP256K1};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[test]
fn generated_key_signs_200_verified_low_s_signatures_and_is_found_again_by_label() -> TestResult {
    let token = token_with_key("sign200")?;
    let mut signer = Pkcs11Signer::open(&token.config, &token.user_pin)?;
    assert_eq!(signer.public_key(), token.public_key);
    let mut rng = rand::thread_rng();
    for i in 0..200 {
        let mut digest = [0u8; 32];
        rng.fill_bytes(&mut digest);
        let sig = signer.sign_digest(&digest)?;
        SECP256K1
            .verify_ecdsa(&Message::from_digest(digest), &sig, &token.public_key)
            .map_err(|e| format!("signature {i} does not verify: {e}"))?;
        let mut normalised = sig;
        normalised.normalize_s();
        assert_eq!(normalised, sig, "signature {i} is high-S");
        // A signature over another digest must not verify (the check is real).
        let mut other = digest;
        other[0] ^= 1;
        assert!(SECP256K1
            .verify_ecdsa(&Message::from_digest(other), &sig, &token.public_key)
            .is_err());
    }

    // A second instance (while the first is open), and a fresh one after both are dropped, find the same key.
    let mut second = Pkcs11Signer::open(&token.config, &token.user_pin)?;
    assert_eq!(second.public_key(), token.public_key);
    let sig = second.sign_digest(&[0x11; 32])?;
    SECP256K1.verify_ecdsa(&Message::from_digest([0x11; 32]), &sig, &token.public_key)?;
    drop(signer);
    drop(second);
    let mut third = Pkcs11Signer::open(&token.config, &token.user_pin)?;
    assert_eq!(third.public_key(), token.public_key);
    third.sign_digest(&[0x22; 32])?;
    assert_eq!(
        read_public_key(&token.config, &token.user_pin)?,
        token.public_key
    );
    Ok(())
}

#[test]
fn private_key_is_sensitive_never_extractable_and_sign_only() -> TestResult {
    let token = token_with_key("attrs")?;
    let ctx = shared_context(&token.config.module_path)?;
    let slot = ctx
        .get_slots_with_initialized_token()?
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|i| i.label() == token.config.token_label)
                .unwrap_or(false)
        })
        .ok_or("token not found")?;
    let session = ctx.open_rw_session(slot)?;
    match session.login(UserType::User, Some(&hsm_pin())) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => return Err(e.into()),
    }
    let keys = session.find_objects(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Label(token.config.key_label.as_bytes().to_vec()),
    ])?;
    assert_eq!(keys.len(), 1);
    let key = keys[0];

    // CKA_VALUE is sensitive: its value can't be read (get_attributes would silently drop it).
    let value_info = session.get_attribute_info(key, &[AttributeType::Value])?;
    assert!(
        matches!(value_info.as_slice(), [AttributeInfo::Sensitive]),
        "{value_info:?}"
    );
    let attrs = session.get_attributes(
        key,
        &[
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
            AttributeType::Sign,
            AttributeType::Decrypt,
            AttributeType::Unwrap,
            AttributeType::Derive,
            AttributeType::Modifiable,
            AttributeType::Copyable,
        ],
    )?;
    let expected = [
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::AlwaysSensitive(true),
        Attribute::NeverExtractable(true),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Modifiable(false),
        Attribute::Copyable(false),
    ];
    assert_eq!(attrs.len(), expected.len(), "{attrs:?}");
    for (got, want) in attrs.iter().zip(expected.iter()) {
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
    }

    // Policy attributes can't be relaxed, and the key can't be wrapped out.
    assert!(session
        .update_attributes(key, &[Attribute::Extractable(true)])
        .is_err());
    assert!(session
        .update_attributes(key, &[Attribute::Sensitive(false)])
        .is_err());
    let wrapping_key = session.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Token(false),
            Attribute::ValueLen(32.into()),
            Attribute::Wrap(true),
            Attribute::Encrypt(true),
        ],
    )?;
    match session.wrap_key(&Mechanism::AesKeyWrapPad, wrapping_key, key) {
        Err(cryptoki::error::Error::Pkcs11(rv, _)) => {
            assert_eq!(rv, cryptoki::error::RvError::KeyUnextractable)
        }
        other => panic!("wrapping the private key must fail with KeyUnextractable, got {other:?}"),
    }
    Ok(())
}

fn hsm_pin() -> cryptoki::types::AuthPin {
    cryptoki::types::AuthPin::from(hsm::softhsm_testing::TEST_USER_PIN)
}

#[test]
fn init_token_refuses_an_existing_label_and_the_key_survives() -> TestResult {
    let token = token_with_key("reinit")?;
    let err = init_token(
        &token.config.module_path,
        &token.config.token_label,
        &token.so_pin,
        &token.user_pin,
    )
    .unwrap_err();
    assert!(
        matches!(&err, HsmError::TokenExists { label } if *label == token.config.token_label),
        "{err:?}"
    );
    assert!(err.to_string().contains(&token.config.token_label), "{err}");
    let mut signer = Pkcs11Signer::open(&token.config, &token.user_pin)?;
    assert_eq!(signer.public_key(), token.public_key);
    signer.sign_digest(&[1u8; 32])?;
    Ok(())
}

#[test]
fn generate_key_refuses_an_existing_label() -> TestResult {
    let token = token_with_key("regen")?;
    let err = generate_key(&token.config, &token.user_pin).unwrap_err();
    assert!(
        matches!(&err, HsmError::KeyExists { label, .. } if *label == token.config.key_label),
        "{err:?}"
    );
    assert!(err.to_string().contains(&token.config.key_label), "{err}");
    // Still exactly one key under the label (open would fail with KeyAmbiguous otherwise), and it is the same one.
    let signer = Pkcs11Signer::open(&token.config, &token.user_pin)?;
    assert_eq!(signer.public_key(), token.public_key);
    // A second key under another label in the same token is fine and different.
    let mut other = token.config.clone();
    other.key_label = "second-key".into();
    let second = generate_key(&other, &token.user_pin)?;
    assert_ne!(second, token.public_key);
    assert_eq!(
        Pkcs11Signer::open(&other, &token.user_pin)?.public_key(),
        second
    );
    Ok(())
}

#[test]
fn signers_on_several_threads_share_one_token() -> TestResult {
    let token = token_with_key("threads")?;
    let handles: Vec<_> = (0u8..4)
        .map(|t| {
            let cfg = token.config.clone();
            let pin = token.user_pin.clone();
            let pk = token.public_key;
            std::thread::spawn(move || -> Result<(), String> {
                let mut signer = Pkcs11Signer::open(&cfg, &pin).map_err(|e| e.to_string())?;
                for i in 0u8..50 {
                    let digest = [t.wrapping_mul(64).wrapping_add(i); 32];
                    let sig = signer.sign_digest(&digest).map_err(|e| e.to_string())?;
                    SECP256K1
                        .verify_ecdsa(&Message::from_digest(digest), &sig, &pk)
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "signing thread panicked")??;
    }
    Ok(())
}

#[test]
fn guard_over_a_pkcs11_signer_can_move_to_a_blocking_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<hsm::BlockSigningGuard<Pkcs11Signer>>();
    assert_send::<hsm::BlockSigningGuard<Box<dyn DigestSigner>>>();
}
