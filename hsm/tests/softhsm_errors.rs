//! Bad input against real SoftHSM: each error names the problem for an operator.

use std::path::PathBuf;

use hsm::softhsm_testing::{empty_token, process_softhsm, token_with_key, user_pin};
use hsm::{
    generate_key, init_token, read_public_key, DigestSigner, HsmError, Pin, Pkcs11Signer,
    TokenConfig,
};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[test]
fn wrong_module_path_is_a_module_load_error_naming_the_path() -> TestResult {
    process_softhsm()?;
    let cfg = TokenConfig {
        module_path: PathBuf::from("/nonexistent/lib/libnot-a-module.so"),
        token_label: "any".into(),
        key_label: "any".into(),
    };
    let err = Pkcs11Signer::open(&cfg, &user_pin()).unwrap_err();
    assert!(
        matches!(&err, HsmError::ModuleLoad { path, .. } if *path == cfg.module_path),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("/nonexistent/lib/libnot-a-module.so"),
        "{err}"
    );
    let err = init_token(&cfg.module_path, "any", &user_pin(), &user_pin()).unwrap_err();
    assert!(matches!(err, HsmError::ModuleLoad { .. }), "{err:?}");
    // A file that exists but is not a shared library.
    let not_a_lib = tempfile::NamedTempFile::new()?;
    let cfg = TokenConfig {
        module_path: not_a_lib.path().to_path_buf(),
        ..cfg
    };
    let err = generate_key(&cfg, &user_pin()).unwrap_err();
    assert!(matches!(err, HsmError::ModuleLoad { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&not_a_lib.path().display().to_string()),
        "{err}"
    );
    Ok(())
}

#[test]
fn absent_token_label_is_named_and_present_labels_listed() -> TestResult {
    let token = token_with_key("present")?;
    let cfg = TokenConfig {
        token_label: "no-such-token".into(),
        ..token.config.clone()
    };
    let err = Pkcs11Signer::open(&cfg, &token.user_pin).unwrap_err();
    match &err {
        HsmError::TokenNotFound { label, present } => {
            assert_eq!(label, "no-such-token");
            assert!(present.contains(&token.config.token_label), "{present:?}");
        }
        other => panic!("expected TokenNotFound, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("no-such-token") && msg.contains(&token.config.token_label),
        "{msg}"
    );
    assert!(matches!(
        generate_key(&cfg, &token.user_pin),
        Err(HsmError::TokenNotFound { .. })
    ));
    assert!(matches!(
        read_public_key(&cfg, &token.user_pin),
        Err(HsmError::TokenNotFound { .. })
    ));
    Ok(())
}

#[test]
fn wrong_pin_is_pin_incorrect_naming_the_token() -> TestResult {
    let token = token_with_key("wrongpin")?;
    for bad in ["654321", "1"] {
        let err = Pkcs11Signer::open(&token.config, &Pin::new(bad.into())).unwrap_err();
        assert!(
            matches!(&err, HsmError::PinIncorrect { token: t } if *t == token.config.token_label),
            "{err:?}"
        );
        let msg = err.to_string();
        assert_eq!(
            msg,
            format!("PIN incorrect for token {:?}", token.config.token_label)
        );
    }
    // The right PIN still works afterwards.
    Pkcs11Signer::open(&token.config, &token.user_pin)?;
    Ok(())
}

#[test]
fn absent_key_label_is_key_not_found_naming_the_label() -> TestResult {
    let config = empty_token("nokey")?;
    let cfg = TokenConfig {
        key_label: "no-such-key".into(),
        ..config
    };
    let err = Pkcs11Signer::open(&cfg, &user_pin()).unwrap_err();
    assert!(
        matches!(&err, HsmError::KeyNotFound { label, .. } if label == "no-such-key"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("no-such-key") && err.to_string().contains(&cfg.token_label),
        "{err}"
    );
    assert!(matches!(
        read_public_key(&cfg, &user_pin()),
        Err(HsmError::KeyNotFound { .. })
    ));
    Ok(())
}

#[test]
fn pin_files_empty_is_an_error_and_a_trailing_newline_logs_in() -> TestResult {
    let token = token_with_key("pinfile")?;
    let dir = tempfile::tempdir()?;
    let empty = dir.path().join("empty.pin");
    std::fs::write(&empty, "")?;
    let err = Pin::from_file(&empty).unwrap_err();
    assert!(
        matches!(&err, HsmError::PinFile { path, .. } if *path == empty),
        "{err:?}"
    );
    assert!(err.to_string().contains("empty.pin"), "{err}");
    // A PIN file written by `echo 123456 > pin` logs in: the newline is trimmed.
    let with_newline = dir.path().join("user.pin");
    std::fs::write(
        &with_newline,
        format!("{}\n", hsm::softhsm_testing::TEST_USER_PIN),
    )?;
    let pin = Pin::from_file(&with_newline)?;
    assert_eq!(
        Pkcs11Signer::open(&token.config, &pin)?.public_key(),
        token.public_key
    );
    Ok(())
}

#[test]
fn invalid_token_labels_are_refused_before_touching_the_token() -> TestResult {
    let cfg = empty_token("labels")?;
    let long = "x".repeat(33);
    let err = init_token(&cfg.module_path, &long, &user_pin(), &user_pin()).unwrap_err();
    assert!(matches!(err, HsmError::InvalidLabel { .. }), "{err:?}");
    Ok(())
}
