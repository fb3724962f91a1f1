//! Shared test support: a toy consensus certificate (m-of-n ed25519 signatures), signers of both kinds.
#![allow(dead_code)]

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use hsm::softhsm_testing::{empty_token, user_pin};
use hsm::{
    generate_purpose_key, CertificateVerifier, DigestSigner, KeyPurpose, Pin, Pkcs11Signer,
    SoftwareSigner, TokenConfig,
};
use secp256k1::SecretKey;

/// Committee size and threshold of the toy certificate.
pub const COMMITTEE: usize = 3;
pub const THRESHOLD: usize = 2;
const CERT_ENTRY: usize = 1 + 64;

/// The committee's ed25519 keys (deterministic).
pub fn committee() -> Vec<SigningKey> {
    (1..=COMMITTEE as u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect()
}

fn cert_message(height: u32, block_hash: [u8; 32]) -> Vec<u8> {
    let mut m = b"hsm-test-certificate/v1".to_vec();
    m.extend_from_slice(&height.to_le_bytes());
    m.extend_from_slice(&block_hash);
    m
}

/// A certificate signed by the given members (index into `committee()`), or by `outsider` keys.
pub fn certificate_by(keys: &[(u8, &SigningKey)], height: u32, block_hash: [u8; 32]) -> Vec<u8> {
    let msg = cert_message(height, block_hash);
    let mut out = Vec::new();
    for (index, key) in keys {
        out.push(*index);
        out.extend_from_slice(&key.sign(&msg).to_bytes());
    }
    out
}

/// A valid certificate (members 0 and 2).
pub fn valid_certificate(height: u32, block_hash: [u8; 32]) -> Vec<u8> {
    let c = committee();
    certificate_by(&[(0, &c[0]), (2, &c[2])], height, block_hash)
}

/// Verifies THRESHOLD distinct committee signatures over (height, hash).
pub struct CommitteeVerifier {
    keys: Vec<VerifyingKey>,
}

impl CommitteeVerifier {
    pub fn new() -> Self {
        CommitteeVerifier {
            keys: committee().iter().map(|k| k.verifying_key()).collect(),
        }
    }
    pub fn boxed() -> Box<dyn CertificateVerifier> {
        Box::new(Self::new())
    }
}

impl CertificateVerifier for CommitteeVerifier {
    fn verify(&self, height: u32, block_hash: [u8; 32], certificate: &[u8]) -> Result<(), String> {
        if certificate.is_empty() {
            return Err("no certificate".into());
        }
        if !certificate.len().is_multiple_of(CERT_ENTRY) {
            return Err(format!(
                "certificate length {} is not a multiple of {CERT_ENTRY}",
                certificate.len()
            ));
        }
        let msg = cert_message(height, block_hash);
        let mut seen = Vec::new();
        for entry in certificate.chunks(CERT_ENTRY) {
            let index = usize::from(entry[0]);
            let key = self
                .keys
                .get(index)
                .ok_or(format!("member {index} is not in the committee"))?;
            if seen.contains(&index) {
                return Err(format!("member {index} signed twice"));
            }
            let sig =
                ed25519_dalek::Signature::from_slice(&entry[1..]).map_err(|e| e.to_string())?;
            key.verify(&msg, &sig)
                .map_err(|_| format!("signature of member {index} is invalid"))?;
            seen.push(index);
        }
        if seen.len() < THRESHOLD {
            return Err(format!("{} of {THRESHOLD} required signatures", seen.len()));
        }
        Ok(())
    }
}

/// Makes signers for a purpose: software (fixed keys) or SoftHSM (one token holding both purpose keys).
pub enum SignerKind {
    Software,
    SoftHsm { token: TokenConfig, pin: Pin },
}

impl SignerKind {
    pub fn softhsm(prefix: &str) -> Self {
        let token = empty_token(prefix).expect("SoftHSM token");
        for purpose in KeyPurpose::ALL {
            generate_purpose_key(&token.module_path, &token.token_label, purpose, &user_pin())
                .expect("generate key");
        }
        SignerKind::SoftHsm {
            token,
            pin: user_pin(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            SignerKind::Software => "software",
            SignerKind::SoftHsm { .. } => "softhsm",
        }
    }

    pub fn make(&self, purpose: KeyPurpose) -> Box<dyn DigestSigner> {
        match self {
            SignerKind::Software => {
                let byte = match purpose {
                    KeyPurpose::BlockSigning => 0x24,
                    KeyPurpose::PegWallet => 0x35,
                };
                Box::new(SoftwareSigner::new(
                    SecretKey::from_slice(&[byte; 32]).expect("key"),
                ))
            }
            SignerKind::SoftHsm { token, pin } => {
                let cfg = TokenConfig::for_purpose(&token.module_path, &token.token_label, purpose);
                Box::new(Pkcs11Signer::open(&cfg, pin).expect("open PKCS#11 signer"))
            }
        }
    }
}

/// Captures `tracing` output of the closure (this thread only).
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().expect("log buffer")).into_owned();
    (out, text)
}
