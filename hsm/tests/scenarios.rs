//! The scenario corpus (tests/scenarios/*.json): each file is a sequence of requests with the expected verdict, run
//! against BOTH the in-process SoftwareSigner and a SoftHSM token. A verdict that differs fails the test, and so does
//! a journal whose recorded verdicts differ from the expected ones, or a returned signature that does not verify.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bitcoin::blockdata::opcodes::all::OP_CHECKMULTISIG;
use bitcoin::hashes::Hash;
use bitcoin::script::Builder;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    WPubkeyHash, Witness,
};
use common::{certificate_by, committee, valid_certificate, CommitteeVerifier, SignerKind};
use ed25519_dalek::SigningKey;
use hsm::encode_frame;
use hsm::{
    BlockSigningGuard, DigestSigner, FederationCoin, GuardError, JournalRecord, KeyPurpose,
    OperatorOverride, PegoutLimits, PegoutPolicy, PegoutRequest, Refusal, SignRequestRecord,
    SignerJournal, TxSigningGuard, ValidatedPegout, Verdict,
};
use secp256k1::{ecdsa::Signature, Message, PublicKey, SECP256K1};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    description: String,
    #[serde(default)]
    limits: Option<LimitsSpec>,
    #[serde(default)]
    coins: Vec<CoinSpec>,
    #[serde(default)]
    pegouts: Vec<PegoutSpec>,
    steps: Vec<Step>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct LimitsSpec {
    max_fee_sat: u64,
    max_feerate_sat_per_vb: u64,
    max_pegout_per_window_sat: u64,
    window_secs: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CoinSpec {
    id: String,
    value_sat: u64,
    #[serde(default)]
    foreign: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PegoutSpec {
    id: String,
    dest: String,
    amount_sat: u64,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
enum CrashPoint {
    BeforeWrite,
    TornWrite,
    AfterWrite,
    AfterHsm,
}

#[derive(Deserialize, Clone, Copy, Debug)]
#[serde(rename_all = "snake_case")]
enum CertKind {
    Valid,
    Missing,
    Forged,
    OneSignature,
    DuplicateSigner,
    OtherHash,
    OtherHeight,
    Garbage,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Step {
    Block {
        height: u32,
        hash: String,
        cert: CertKind,
        expect: String,
        #[serde(default)]
        message_contains: Option<String>,
    },
    BlockCrash {
        at: CrashPoint,
        height: u32,
        hash: String,
    },
    Pegout {
        tx: TxSpec,
        #[serde(default)]
        override_reason: Option<String>,
        expect: String,
        #[serde(default)]
        message_contains: Option<String>,
    },
    PegoutCrash {
        at: CrashPoint,
        tx: TxSpec,
    },
    Reopen,
    Advance {
        secs: u64,
    },
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct TxSpec {
    inputs: Vec<String>,
    outputs: Vec<OutSpec>,
    /// Peg-out ids the node reports as validated (default: all of the scenario's).
    #[serde(default)]
    validated: Option<Vec<String>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct OutSpec {
    #[serde(default)]
    pegout: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    change_sat: Option<u64>,
    #[serde(default)]
    amount_sat: Option<u64>,
}

fn hash_arg(s: &str) -> [u8; 32] {
    let b = u8::from_str_radix(s, 16).unwrap_or_else(|_| panic!("hash {s:?}: one hex byte"));
    [b; 32]
}

fn label_hash(label: &str) -> [u8; 32] {
    Sha256::digest(label.as_bytes()).into()
}

fn dest_script(label: &str) -> ScriptBuf {
    let h = label_hash(label);
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_slice(&h[..20]).expect("20 bytes"))
}

fn multisig(keys: &[PublicKey]) -> ScriptBuf {
    let mut b = Builder::new().push_int(2);
    for k in keys {
        b = b.push_slice(k.serialize());
    }
    b.push_int(keys.len() as i64)
        .push_opcode(OP_CHECKMULTISIG)
        .into_script()
}

fn other_key(i: u8) -> PublicKey {
    PublicKey::from_secret_key(
        SECP256K1,
        &secp256k1::SecretKey::from_slice(&[0x60 + i; 32]).expect("key"),
    )
}

struct PegWorld {
    our_key: PublicKey,
    limits: PegoutLimits,
    coins: Vec<(String, FederationCoin)>,
    pegouts: Vec<(String, ValidatedPegout)>,
    federation_script: ScriptBuf,
}

impl PegWorld {
    fn new(s: &Scenario, our_key: PublicKey) -> Self {
        let l = s.limits.expect("peg-out scenarios need limits");
        let ours = multisig(&[our_key, other_key(1), other_key(2)]);
        let foreign = multisig(&[other_key(3), other_key(1), other_key(2)]);
        PegWorld {
            our_key,
            limits: PegoutLimits {
                max_fee: Amount::from_sat(l.max_fee_sat),
                max_feerate_sat_per_vb: l.max_feerate_sat_per_vb,
                max_pegout_per_window: Amount::from_sat(l.max_pegout_per_window_sat),
                window_ms: l.window_secs * 1000,
            },
            coins: s
                .coins
                .iter()
                .map(|c| {
                    let coin = FederationCoin {
                        outpoint: outpoint(&c.id),
                        value: Amount::from_sat(c.value_sat),
                        witness_script: if c.foreign {
                            foreign.clone()
                        } else {
                            ours.clone()
                        },
                    };
                    (c.id.clone(), coin)
                })
                .collect(),
            pegouts: s
                .pegouts
                .iter()
                .map(|p| {
                    let v = ValidatedPegout {
                        id: label_hash(&p.id),
                        script_pubkey: dest_script(&p.dest),
                        amount: Amount::from_sat(p.amount_sat),
                    };
                    (p.id.clone(), v)
                })
                .collect(),
            federation_script: ScriptBuf::new_p2wsh(&ours.wscript_hash()),
        }
    }

    fn request(&self, spec: &TxSpec) -> PegoutRequest {
        let input = spec
            .inputs
            .iter()
            .map(|id| TxIn {
                previous_output: outpoint(id),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            })
            .collect();
        let output = spec
            .outputs
            .iter()
            .map(|o| {
                if let Some(p) = &o.pegout {
                    let (_, v) = self
                        .pegouts
                        .iter()
                        .find(|(id, _)| id == p)
                        .expect("peg-out id");
                    TxOut {
                        value: o.amount_sat.map(Amount::from_sat).unwrap_or(v.amount),
                        script_pubkey: v.script_pubkey.clone(),
                    }
                } else if let Some(sat) = o.change_sat {
                    TxOut {
                        value: Amount::from_sat(sat),
                        script_pubkey: self.federation_script.clone(),
                    }
                } else {
                    TxOut {
                        value: Amount::from_sat(o.amount_sat.expect("amount_sat")),
                        script_pubkey: dest_script(o.to.as_deref().expect("to")),
                    }
                }
            })
            .collect();
        let validated = match &spec.validated {
            None => self.pegouts.iter().map(|(_, v)| v.clone()).collect(),
            Some(ids) => self
                .pegouts
                .iter()
                .filter(|(id, _)| ids.contains(id))
                .map(|(_, v)| v.clone())
                .collect(),
        };
        PegoutRequest {
            tx: Transaction {
                version: transaction::Version::TWO,
                lock_time: absolute::LockTime::ZERO,
                input,
                output,
            },
            coins: self.coins.iter().map(|(_, c)| c.clone()).collect(),
            validated_pegouts: validated,
            change_script: self.federation_script.clone(),
        }
    }

    /// Checks one signature per input, each over the BIP143 sighash computed here, independently of the guard.
    fn check_signatures(&self, req: &PegoutRequest, sigs: &[Vec<u8>]) {
        assert_eq!(sigs.len(), req.tx.input.len());
        let mut cache = SighashCache::new(&req.tx);
        for (i, (input, sig)) in req.tx.input.iter().zip(sigs).enumerate() {
            let coin = req
                .coins
                .iter()
                .find(|c| c.outpoint == input.previous_output)
                .expect("coin");
            let sighash = cache
                .p2wsh_signature_hash(i, &coin.witness_script, coin.value, EcdsaSighashType::All)
                .expect("sighash");
            assert_valid(sig, sighash.to_byte_array(), &self.our_key);
        }
    }
}

fn outpoint(id: &str) -> OutPoint {
    OutPoint {
        txid: Txid::from_byte_array(label_hash(&format!("coin:{id}"))),
        vout: 0,
    }
}

fn assert_valid(sig: &[u8], digest: [u8; 32], pk: &PublicKey) {
    let (der, sighash) = sig.split_at(sig.len() - 1);
    assert_eq!(sighash, [0x01]);
    let parsed = Signature::from_der(der).expect("strict DER");
    let mut normalised = parsed;
    normalised.normalize_s();
    assert_eq!(normalised, parsed, "high-S signature returned");
    SECP256K1
        .verify_ecdsa(&Message::from_digest(digest), &parsed, pk)
        .expect("signature must verify over the digest");
}

fn certificate(kind: CertKind, height: u32, hash: [u8; 32]) -> Vec<u8> {
    let c = committee();
    let outsider = SigningKey::from_bytes(&[0x77; 32]);
    match kind {
        CertKind::Valid => valid_certificate(height, hash),
        CertKind::Missing => Vec::new(),
        CertKind::Forged => certificate_by(&[(0, &outsider), (1, &outsider)], height, hash),
        CertKind::OneSignature => certificate_by(&[(1, &c[1])], height, hash),
        CertKind::DuplicateSigner => certificate_by(&[(1, &c[1]), (1, &c[1])], height, hash),
        CertKind::OtherHash => valid_certificate(height, [0xee; 32]),
        CertKind::OtherHeight => valid_certificate(height + 1, hash),
        CertKind::Garbage => vec![0xab; 17],
    }
}

fn block_refusal_kind(r: &Refusal) -> &'static str {
    match r {
        Refusal::Certificate { .. } => "certificate",
        Refusal::ConflictingHash { .. } => "conflicting_hash",
        Refusal::HeightRegression { .. } => "height_regression",
    }
}

fn block_approval(height: u32, block_hash: [u8; 32]) -> JournalRecord {
    JournalRecord::new(
        SignRequestRecord::Block { height, block_hash },
        Verdict::Approved,
        "crash test",
        1,
    )
}

/// Appends the first half of `record`'s frame: an append torn by a crash.
fn append_torn(path: &Path, record: &JournalRecord) {
    use std::io::Write;
    let frame = encode_frame(record).expect("encode");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open journal");
    f.write_all(&frame[..frame.len() / 2])
        .expect("write torn record");
}

fn expected_verdict(expect: &str) -> Verdict {
    match expect {
        "approved" => Verdict::Approved,
        "override" => Verdict::Override,
        e if e.starts_with("refused:") => Verdict::Refused,
        other => panic!("unknown expectation {other:?}"),
    }
}

fn check_message(ctx: &str, msg: &str, contains: &Option<String>) {
    if let Some(c) = contains {
        assert!(
            msg.contains(c.as_str()),
            "{ctx}: message {msg:?} lacks {c:?}"
        );
    }
}

fn run_scenario(file: &Path, kind: &SignerKind) {
    let text = std::fs::read_to_string(file).expect("read scenario");
    let scenario: Scenario =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("journal");
    let is_pegout = scenario.limits.is_some();
    let mut expected_journal: Vec<Verdict> = Vec::new();
    let name = format!(
        "{} [{}]",
        file.file_name().unwrap_or_default().to_string_lossy(),
        kind.name()
    );
    eprintln!("scenario {name}: {}", scenario.description);
    if is_pegout {
        run_pegout(&scenario, kind, &journal, &name, &mut expected_journal);
    } else {
        run_block(&scenario, kind, &journal, &name, &mut expected_journal);
    }
    let mut got = Vec::new();
    SignerJournal::open_with(&journal, |_, r| {
        // Refusals beyond the journal's rate limit are counted in a summary record standing where they were.
        match r.suppressed_refusals() {
            Some(n) => got.extend((0..n).map(|_| Verdict::Refused)),
            None => got.push(r.verdict),
        }
        Ok(())
    })
    .expect("journal reopens");
    assert_eq!(got, expected_journal, "{name}: journaled verdicts");
}

type BlockGuard = BlockSigningGuard<Box<dyn DigestSigner>>;

fn run_block(
    s: &Scenario,
    kind: &SignerKind,
    journal: &Path,
    name: &str,
    expected: &mut Vec<Verdict>,
) {
    let open = || -> BlockGuard {
        BlockSigningGuard::open(
            journal,
            kind.make(KeyPurpose::BlockSigning),
            CommitteeVerifier::boxed(),
        )
        .expect("guard opens")
    };
    let mut guard = Some(open());
    for (i, step) in s.steps.iter().enumerate() {
        let ctx = format!("{name} step {i}");
        match step {
            Step::Block {
                height,
                hash,
                cert,
                expect,
                message_contains,
            } => {
                let hash = hash_arg(hash);
                let g = guard.as_mut().expect("guard");
                let result = g.sign_block(*height, hash, &certificate(*cert, *height, hash));
                let got = match &result {
                    Ok(sig) => {
                        assert_valid(sig, hash, &g.public_key());
                        "approved".to_string()
                    }
                    Err(GuardError::Refused(r)) => {
                        check_message(&ctx, &r.to_string(), message_contains);
                        format!("refused:{}", block_refusal_kind(r))
                    }
                    Err(e) => panic!("{ctx}: unexpected error {e}"),
                };
                assert_eq!(&got, expect, "{ctx}: verdict");
                expected.push(expected_verdict(expect));
            }
            Step::BlockCrash { at, height, hash } => {
                let hash = hash_arg(hash);
                if *at == CrashPoint::AfterHsm {
                    // The guard journaled and the HSM signed; the process died before the signature was used.
                    let g = guard.as_mut().expect("guard");
                    g.sign_block(*height, hash, &valid_certificate(*height, hash))
                        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                }
                drop(guard.take());
                match at {
                    CrashPoint::BeforeWrite | CrashPoint::AfterHsm => {}
                    CrashPoint::TornWrite => append_torn(journal, &block_approval(*height, hash)),
                    CrashPoint::AfterWrite => {
                        SignerJournal::open(journal)
                            .and_then(|mut j| j.append(&block_approval(*height, hash)))
                            .expect("append");
                    }
                }
                if matches!(at, CrashPoint::AfterWrite | CrashPoint::AfterHsm) {
                    expected.push(Verdict::Approved);
                }
                guard = Some(open());
            }
            Step::Reopen => {
                drop(guard.take());
                guard = Some(open());
            }
            other => panic!(
                "{ctx}: step not allowed in a block scenario: {}",
                step_name(other)
            ),
        }
    }
}

fn step_name(s: &Step) -> &'static str {
    match s {
        Step::Block { .. } => "block",
        Step::BlockCrash { .. } => "block_crash",
        Step::Pegout { .. } => "pegout",
        Step::PegoutCrash { .. } => "pegout_crash",
        Step::Reopen => "reopen",
        Step::Advance { .. } => "advance",
    }
}

type PegGuard = TxSigningGuard<Box<dyn DigestSigner>>;

fn run_pegout(
    s: &Scenario,
    kind: &SignerKind,
    journal: &Path,
    name: &str,
    expected: &mut Vec<Verdict>,
) {
    let clock = Arc::new(AtomicU64::new(1_800_000_000_000));
    let signer = kind.make(KeyPurpose::PegWallet);
    let world = PegWorld::new(s, signer.public_key());
    let open = |signer: Box<dyn DigestSigner>| -> PegGuard {
        let c = clock.clone();
        TxSigningGuard::open_with_clock(
            journal,
            signer,
            world.limits,
            Box::new(move || c.load(Ordering::SeqCst)),
        )
        .expect("guard opens")
    };
    let mut guard = Some(open(signer));
    for (i, step) in s.steps.iter().enumerate() {
        let ctx = format!("{name} step {i}");
        match step {
            Step::Pegout {
                tx,
                override_reason,
                expect,
                message_contains,
            } => {
                let req = world.request(tx);
                let o = override_reason
                    .as_deref()
                    .map(|r| OperatorOverride::new(r).expect("non-blank override reason"));
                let g = guard.as_mut().expect("guard");
                let got = match g.sign_pegout(&req, o.as_ref()) {
                    Ok(sigs) => {
                        world.check_signatures(&req, &sigs);
                        match g.last_decision().map(|r| r.verdict) {
                            Some(Verdict::Override) => "override".to_string(),
                            Some(Verdict::Approved) => "approved".to_string(),
                            other => {
                                panic!("{ctx}: signed, but the journal's last verdict is {other:?}")
                            }
                        }
                    }
                    Err(GuardError::PegoutRefused(r)) => {
                        check_message(&ctx, &r.to_string(), message_contains);
                        format!("refused:{}", r.kind())
                    }
                    Err(e) => panic!("{ctx}: unexpected error {e}"),
                };
                assert_eq!(&got, expect, "{ctx}: verdict");
                expected.push(expected_verdict(expect));
            }
            Step::PegoutCrash { at, tx } => {
                let req = world.request(tx);
                if *at == CrashPoint::AfterHsm {
                    let g = guard.as_mut().expect("guard");
                    g.sign_pegout(&req, None)
                        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                }
                drop(guard.take());
                let now = clock.load(Ordering::SeqCst);
                let a = PegoutPolicy::new(world.limits)
                    .assess(&req, &world.our_key, now, true)
                    .unwrap_or_else(|e| panic!("{ctx}: crash request must be valid: {e}"));
                let record = JournalRecord::new(
                    SignRequestRecord::BitcoinTx {
                        txid: a.txid,
                        sighashes: a.sighashes,
                        pegout_ids: a.pegout_ids,
                        pegout_sat: a.pegout_total.to_sat(),
                    },
                    Verdict::Approved,
                    "crash test",
                    now,
                );
                match at {
                    CrashPoint::BeforeWrite | CrashPoint::AfterHsm => {}
                    CrashPoint::TornWrite => append_torn(journal, &record),
                    CrashPoint::AfterWrite => {
                        SignerJournal::open(journal)
                            .and_then(|mut j| j.append(&record))
                            .expect("append");
                    }
                }
                if matches!(at, CrashPoint::AfterWrite | CrashPoint::AfterHsm) {
                    expected.push(Verdict::Approved);
                }
                guard = Some(open(kind.make(KeyPurpose::PegWallet)));
            }
            Step::Reopen => {
                drop(guard.take());
                guard = Some(open(kind.make(KeyPurpose::PegWallet)));
            }
            Step::Advance { secs } => {
                clock.fetch_add(secs * 1000, Ordering::SeqCst);
            }
            other => panic!(
                "{ctx}: step not allowed in a peg-out scenario: {}",
                step_name(other)
            ),
        }
    }
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenario dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the scenario corpus in {}",
        dir.display()
    );
    files
}

#[test]
fn corpus_against_software_signer() {
    let kind = SignerKind::Software;
    for f in scenario_files() {
        run_scenario(&f, &kind);
    }
}

#[test]
fn corpus_against_softhsm() {
    let kind = SignerKind::softhsm("scenarios");
    for f in scenario_files() {
        run_scenario(&f, &kind);
    }
}

#[test]
fn an_override_is_logged_at_warn_with_the_operator_reason() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios/11_pegout_rate_limit_and_override.json");
    let ((), logs) = common::capture_logs(|| run_scenario(&file, &SignerKind::Software));
    let line = logs
        .lines()
        .find(|l| l.contains("OPERATOR OVERRIDE"))
        .unwrap_or_else(|| panic!("no override log line in:\n{logs}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("incident 7: withdrawal backlog"), "{line}");
}

#[test]
fn an_override_needs_a_reason() {
    assert!(OperatorOverride::new("  ").is_none());
    assert_eq!(
        OperatorOverride::new(" incident 42 ").map(|o| o.reason().to_string()),
        Some("incident 42".into())
    );
}
