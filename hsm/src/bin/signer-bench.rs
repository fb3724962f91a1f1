//! Signing throughput and latency in one run, printed as JSON:
//! (a) raw SoftHSM `C_Sign`, (a2) the PKCS#11 signer (C_Sign + normalise + verify), (b) libsecp256k1 in process,
//! (c) `BlockSigningGuard` over SoftHSM with the journal fdatasync, (d) `BlockSigningGuard` over the software signer, plus (e) one journal append + fdatasync alone.
//!
//! Usage: `signer-bench [SIGNATURES_PER_CASE] [JOURNAL_DIR]` (defaults 2000 and `target/`; the journal directory
//! must be on a real disk, not tmpfs, or the fsync costs nothing). Needs SoftHSM (`--features testing`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use hsm::softhsm_testing::{shared_context, token_with_key, TEST_USER_PIN};
use hsm::{
    BlockSigningGuard, CertificateVerifier, DigestSigner, JournalRecord, Pkcs11Signer,
    SignRequestRecord, SignerJournal, SoftwareSigner, Verdict,
};
use secp256k1::{Message, SecretKey, SECP256K1};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The bench measures the guard, not a certificate scheme: every certificate is accepted.
struct AcceptAll;
impl CertificateVerifier for AcceptAll {
    fn verify(&self, _: u32, _: [u8; 32], _: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

struct Case {
    name: &'static str,
    latencies: Vec<Duration>,
    total: Duration,
}

impl Case {
    fn run(
        name: &'static str,
        n: u32,
        mut f: impl FnMut(u32) -> BenchResult<()>,
    ) -> BenchResult<Case> {
        let mut latencies = Vec::with_capacity(n as usize);
        let start = Instant::now();
        for i in 0..n {
            let t = Instant::now();
            f(i)?;
            latencies.push(t.elapsed());
        }
        let total = start.elapsed();
        latencies.sort();
        Ok(Case {
            name,
            latencies,
            total,
        })
    }

    fn percentile_us(&self, p: f64) -> f64 {
        let idx = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies
            .get(idx)
            .map(|d| d.as_secs_f64() * 1e6)
            .unwrap_or(0.0)
    }

    fn json(&self) -> String {
        let per_s = self.latencies.len() as f64 / self.total.as_secs_f64().max(1e-9);
        format!(
            "{{\"case\":\"{}\",\"n\":{},\"per_second\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1}}}",
            self.name,
            self.latencies.len(),
            per_s,
            self.percentile_us(0.50),
            self.percentile_us(0.99)
        )
    }
}

fn digest(i: u32) -> [u8; 32] {
    let mut d = [0x5au8; 32];
    d[..4].copy_from_slice(&i.to_le_bytes());
    d
}

fn main() -> BenchResult<()> {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    std::fs::create_dir_all(&dir)?;
    let work = dir.join(format!("signer-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;

    let token = token_with_key("bench")?;
    let mut cases = Vec::new();

    // (a) raw C_Sign on one logged-in session.
    {
        let ctx = shared_context(&token.config.module_path)?;
        let slot = ctx
            .get_slots_with_initialized_token()?
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .map(|i| i.label() == token.config.token_label)
                    .unwrap_or(false)
            })
            .ok_or("bench token not found")?;
        let session = ctx.open_ro_session(slot)?;
        match session.login(
            UserType::User,
            Some(&cryptoki::types::AuthPin::from(TEST_USER_PIN)),
        ) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(e) => return Err(e.into()),
        }
        let key = *session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(token.config.key_label.as_bytes().to_vec()),
            ])?
            .first()
            .ok_or("bench key not found")?;
        cases.push(Case::run("a_softhsm_raw_c_sign", n, |i| {
            session.sign(&Mechanism::Ecdsa, key, &digest(i))?;
            Ok(())
        })?);
    }

    // (a2) the PKCS#11 signer: C_Sign + low-S normalisation + verification, no guard.
    {
        let mut signer = Pkcs11Signer::open(&token.config, &token.user_pin)?;
        cases.push(Case::run("a2_pkcs11_signer_sign_and_verify", n, |i| {
            signer.sign_digest(&digest(i))?;
            Ok(())
        })?);
    }

    // (b) libsecp256k1 in process.
    let secret = SecretKey::from_slice(&[0x42; 32])?;
    cases.push(Case::run("b_libsecp256k1_in_process", n, |i| {
        std::hint::black_box(SECP256K1.sign_ecdsa(&Message::from_digest(digest(i)), &secret));
        Ok(())
    })?);

    // (c) the full guard over SoftHSM: policy, journal append + fdatasync, C_Sign, normalise, verify (twice).
    {
        let signer = Pkcs11Signer::open(&token.config, &token.user_pin)?;
        let mut guard =
            BlockSigningGuard::open(&work.join("softhsm.journal"), signer, Box::new(AcceptAll))?;
        cases.push(Case::run("c_guard_softhsm_with_fsync", n, |i| {
            guard.sign_block(i + 1, digest(i), b"")?;
            Ok(())
        })?);
    }

    // (d) the full guard over the software signer.
    {
        let mut guard = BlockSigningGuard::open(
            &work.join("software.journal"),
            SoftwareSigner::new(secret),
            Box::new(AcceptAll),
        )?;
        cases.push(Case::run("d_guard_software_with_fsync", n, |i| {
            guard.sign_block(i + 1, digest(i), b"")?;
            Ok(())
        })?);
    }

    // (e) one journal append + fdatasync alone: what the guard adds per signature.
    {
        let mut journal = SignerJournal::open(&work.join("append.journal"))?;
        cases.push(Case::run("e_journal_append_fdatasync_only", n, |i| {
            journal.append(&JournalRecord::new(
                SignRequestRecord::Block {
                    height: i + 1,
                    block_hash: digest(i),
                },
                Verdict::Approved,
                "certificate verified",
                0,
            ))?;
            Ok(())
        })?);
    }
    let _ = std::fs::remove_dir_all(&work);

    let body: Vec<String> = cases.iter().map(Case::json).collect();
    println!(
        "{{\"build\":\"{}\",\"journal_dir\":\"{}\",\"fsyncs_per_guard_signature\":1,\"cases\":[{}]}}",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        dir.display(),
        body.join(",")
    );
    Ok(())
}
