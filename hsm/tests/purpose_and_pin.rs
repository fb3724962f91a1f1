//! Keys by purpose on SoftHSM (labels, sign-only attributes, label collision, no token re-initialisation) and the
//! failed-PIN counter against a real wrong PIN.

use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use hsm::softhsm_testing::{empty_token, shared_context, so_pin, user_pin, TEST_USER_PIN};
use hsm::{
    generate_purpose_key, init_token, purpose_public_key, DigestSigner, HsmError, KeyPurpose,
    LoginAttempts, Pin, Pkcs11Signer, TokenConfig,
};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[test]
fn purpose_labels_are_fixed_and_round_trip() {
    assert_eq!(KeyPurpose::BlockSigning.label(), "block-signing");
    assert_eq!(KeyPurpose::PegWallet.label(), "peg-wallet");
    for p in KeyPurpose::ALL {
        assert_eq!(KeyPurpose::from_label(p.label()), Some(p));
    }
    assert_eq!(KeyPurpose::from_label("other"), None);
}

#[test]
fn both_purpose_keys_are_generated_sign_only_found_by_label_and_never_twice() -> TestResult {
    let token = empty_token("purpose")?;
    let (module, label) = (token.module_path.clone(), token.token_label.clone());
    let block = generate_purpose_key(&module, &label, KeyPurpose::BlockSigning, &user_pin())?;
    let peg = generate_purpose_key(&module, &label, KeyPurpose::PegWallet, &user_pin())?;
    assert_ne!(block, peg, "one key per purpose");
    assert_eq!(
        purpose_public_key(&module, &label, KeyPurpose::PegWallet, &user_pin())?,
        peg
    );
    let mut signer = Pkcs11Signer::open(
        &TokenConfig::for_purpose(&module, &label, KeyPurpose::PegWallet),
        &user_pin(),
    )?;
    assert_eq!(signer.public_key(), peg);
    signer.sign_digest(&[3; 32])?;

    // A label collision is an error naming the label, and no second key appears.
    let err =
        generate_purpose_key(&module, &label, KeyPurpose::PegWallet, &user_pin()).unwrap_err();
    assert!(
        matches!(&err, HsmError::KeyExists { label, .. } if label == "peg-wallet"),
        "{err:?}"
    );
    assert!(err.to_string().contains("peg-wallet"), "{err}");

    let ctx = shared_context(&module)?;
    let slot = ctx
        .get_slots_with_initialized_token()?
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|i| i.label() == label)
                .unwrap_or(false)
        })
        .ok_or("token not found")?;
    let session = ctx.open_ro_session(slot)?;
    match session.login(
        UserType::User,
        Some(&cryptoki::types::AuthPin::from(TEST_USER_PIN)),
    ) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => return Err(e.into()),
    }
    for purpose in KeyPurpose::ALL {
        let keys = session.find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(purpose.label().as_bytes().to_vec()),
        ])?;
        assert_eq!(keys.len(), 1, "{purpose}: exactly one private key");
        let attrs = session.get_attributes(
            keys[0],
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Sign,
                AttributeType::Decrypt,
                AttributeType::Unwrap,
                AttributeType::Derive,
            ],
        )?;
        let want = [
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
        ];
        assert_eq!(format!("{attrs:?}"), format!("{want:?}"), "{purpose}");
    }

    // init_token on the existing label refuses and both keys survive.
    let err = init_token(&module, &label, &so_pin(), &user_pin()).unwrap_err();
    assert!(matches!(err, HsmError::TokenExists { .. }), "{err:?}");
    assert_eq!(
        purpose_public_key(&module, &label, KeyPurpose::BlockSigning, &user_pin())?,
        block
    );
    assert_eq!(
        purpose_public_key(&module, &label, KeyPurpose::PegWallet, &user_pin())?,
        peg
    );
    Ok(())
}

#[test]
fn wrong_pins_are_counted_and_refused_after_the_maximum_until_reset() -> TestResult {
    let token = empty_token("pincount")?;
    generate_purpose_key(
        &token.module_path,
        &token.token_label,
        KeyPurpose::BlockSigning,
        &user_pin(),
    )?;
    let cfg = TokenConfig::for_purpose(
        &token.module_path,
        &token.token_label,
        KeyPurpose::BlockSigning,
    );
    let dir = tempfile::tempdir()?;
    let attempts = LoginAttempts::new(&dir.path().join("pin-attempts"), 3);
    let wrong = Pin::new("999999".into());

    // A failure in between is reset by a success.
    assert!(matches!(
        Pkcs11Signer::open_counted(&cfg, &wrong, &attempts),
        Err(HsmError::PinIncorrect { .. })
    ));
    assert_eq!(attempts.failures()?, 1);
    Pkcs11Signer::open_counted(&cfg, &user_pin(), &attempts)?;
    assert_eq!(attempts.failures()?, 0);

    for n in 1..=3 {
        let err = Pkcs11Signer::open_counted(&cfg, &wrong, &attempts).unwrap_err();
        assert!(matches!(err, HsmError::PinIncorrect { .. }), "{err:?}");
        assert_eq!(attempts.failures()?, n);
    }
    // Now even the right PIN is not tried (SoftHSM itself would accept it: it never locks).
    let err = Pkcs11Signer::open_counted(&cfg, &user_pin(), &attempts).unwrap_err();
    assert!(
        matches!(err, HsmError::PinAttemptsExhausted { failures: 3, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&token.token_label) && msg.contains("reset") && msg.contains("pin-attempts"),
        "{msg}"
    );
    // The count is durable: a new counter on the same file refuses too.
    let again = LoginAttempts::new(attempts.path(), 3);
    assert!(matches!(
        Pkcs11Signer::open_counted(&cfg, &user_pin(), &again),
        Err(HsmError::PinAttemptsExhausted { .. })
    ));
    again.reset()?;
    Pkcs11Signer::open_counted(&cfg, &user_pin(), &again)?;
    assert_eq!(again.failures()?, 0);
    Ok(())
}

#[test]
fn both_guards_over_a_pkcs11_signer_can_move_to_the_signer_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<hsm::BlockSigningGuard<Pkcs11Signer>>();
    assert_send::<hsm::TxSigningGuard<Pkcs11Signer>>();
}
