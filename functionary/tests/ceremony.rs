//! The key ceremony end to end on SoftHSM: five members, each with its own token, run `member`; a coordinator
//! assembles; every member verifies; an auditor re-checks. Then every way the ceremony must refuse.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once per process: this test binary points it at a private directory before the
//! first PKCS#11 call (the tokens of all tests live there under unique labels).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use functionary::ceremony::{
    require_verified, run_assemble, run_audit, run_member, run_verify, throwaway_emergency_keys,
    AssembleOptions, AssembleParams, AuditOptions, CeremonyError, MemberOptions, VerifyOptions,
    VERIFIED_FILE,
};
use functionary::config::FederationConfig;

const USER_PIN: &str = "123456";
const SO_PIN: &str = "12345678";
const GENESIS_TIME: u32 = 1_763_740_800;

fn module_path() -> PathBuf {
    std::env::var_os("HSM_TEST_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
}

/// This process's SoftHSM directory; sets `SOFTHSM2_CONF` on first use (before any PKCS#11 call).
fn softhsm() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("functionary-ceremony-softhsm-")
            .tempdir()
            .expect("softhsm tempdir")
            .keep();
        std::fs::create_dir_all(dir.join("tokens")).expect("tokens dir");
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .expect("softhsm conf");
        std::env::set_var("SOFTHSM2_CONF", &conf);
        dir
    })
}

fn unique_token(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A member's machine: a data dir with node.toml, the user PIN and SO PIN files.
struct Machine {
    dir: tempfile::TempDir,
    name: String,
    port: u16,
}

impl Machine {
    fn new(name: &str, token: &str, port: u16) -> Machine {
        softhsm();
        let dir = tempfile::tempdir().expect("datadir");
        std::fs::write(
            dir.path().join("node.toml"),
            format!(
                "member = \"{name}\"\np2p_key_file = \"p2p.key\"\n\n[hsm]\nmodule = \"{}\"\ntoken_label = \"{token}\"\npin_file = \"hsm.pin\"\n",
                module_path().display()
            ),
        )
        .expect("node.toml");
        std::fs::write(dir.path().join("hsm.pin"), USER_PIN).expect("pin");
        std::fs::write(dir.path().join("so.pin"), SO_PIN).expect("so pin");
        Machine {
            dir,
            name: name.to_string(),
            port,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn member_opts(&self) -> MemberOptions {
        MemberOptions {
            datadir: self.path().to_path_buf(),
            address: format!("/ip4/127.0.0.1/tcp/{}", self.port),
            so_pin_file: Some(self.path().join("so.pin")),
            out: None,
            transcript: None,
        }
    }

    fn descriptor(&self) -> PathBuf {
        self.path().join("member-descriptor.json")
    }

    fn transcript(&self) -> PathBuf {
        self.path().join("ceremony.transcript.jsonl")
    }
}

/// `n` machines with fresh tokens, each having run the member step.
fn members(n: usize, prefix: &str) -> Vec<Machine> {
    const NAMES: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
    (0..n)
        .map(|i| {
            let m = Machine::new(NAMES[i], &unique_token(prefix), 7100 + i as u16);
            let out = run_member(&m.member_opts()).expect("member step");
            assert!(out.token_created && out.block_key_created && out.peg_key_created);
            assert!(out.p2p_identity_created);
            // A new block key has signed nothing: its (empty) signer journal is created with it.
            assert!(out.signer_journal_created);
            let journal = std::fs::read(m.path().join("signer.journal")).expect("signer journal");
            assert_eq!(journal, b"FNSJRNL2");
            m
        })
        .collect()
}

fn params(threshold: usize) -> AssembleParams {
    AssembleParams {
        chain_name: "ceremony-test".into(),
        threshold,
        block_interval: "2s".into(),
        round_timeout: None,
        genesis_time: GENESIS_TIME,
        emergency_keys: throwaway_emergency_keys(3)
            .iter()
            .map(|k| k.to_string())
            .collect(),
        emergency_threshold: 2,
        csv_timelock: 4032,
        initial_coins_amount: None,
        initial_coins_script: None,
    }
}

fn assemble(
    dir: &Path,
    descriptors: Vec<PathBuf>,
    params: AssembleParams,
) -> Result<functionary::ceremony::AssembleOutcome, CeremonyError> {
    run_assemble(&AssembleOptions {
        descriptors,
        params,
        out: dir.join("federation.toml"),
        transcript: None,
        who: "coordinator".into(),
    })
}

fn verify(
    m: &Machine,
    config: &Path,
    hash: &str,
    descriptors: &[PathBuf],
) -> Result<functionary::ceremony::VerifyOutcome, CeremonyError> {
    run_verify(&VerifyOptions {
        datadir: m.path().to_path_buf(),
        config: Some(config.to_path_buf()),
        expect_hash: hash.to_string(),
        descriptors: descriptors.to_vec(),
        transcript: None,
    })
}

#[test]
fn five_member_ceremony_end_to_end() {
    let machines = members(5, "e2e");
    let first_keys = FederationKeys::of(&machines[0]);

    // Re-running the member step reuses the token, both keys and the identity, and re-signs the descriptor.
    let again = run_member(&machines[0].member_opts()).expect("second member run");
    assert!(!again.token_created && !again.block_key_created && !again.peg_key_created);
    assert!(!again.p2p_identity_created);
    assert!(!again.signer_journal_created);
    assert_eq!(FederationKeys::of(&machines[0]), first_keys);
    // A journal lost later is never re-created by the ceremony for a key that already existed (it may have
    // signed): only an operator can, with a floor (`signer-journal-init`).
    let journal = machines[1].path().join("signer.journal");
    std::fs::remove_file(&journal).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let again = run_member(&MemberOptions {
        out: Some(scratch.path().join("descriptor.json")),
        transcript: Some(scratch.path().join("transcript.jsonl")),
        ..machines[1].member_opts()
    })
    .expect("member run after the journal was lost");
    assert!(!again.block_key_created && !again.signer_journal_created);
    assert!(
        !journal.exists(),
        "the ceremony re-created a journal for an existing key"
    );
    hsm::SignerJournal::create_new(&journal, &[]).unwrap();

    let coordinator = tempfile::tempdir().unwrap();
    let descriptors: Vec<PathBuf> = machines.iter().map(Machine::descriptor).collect();
    // The coordinator runs the CLI, as an operator would.
    let mut args: Vec<String> = vec!["assemble".into()];
    for d in &descriptors {
        args.extend(["--descriptor".into(), d.display().to_string()]);
    }
    let emergency: Vec<String> = throwaway_emergency_keys(3)
        .iter()
        .map(|k| k.to_string())
        .collect();
    args.extend(["--emergency-key".to_string()]);
    args.extend(emergency.iter().cloned());
    for (flag, value) in [
        ("--threshold", "3".to_string()),
        ("--interval", "2s".into()),
        ("--emergency-threshold", "2".into()),
        ("--emergency-timelock", "4032".into()),
        ("--genesis-time", GENESIS_TIME.to_string()),
        ("--chain-name", "ceremony-test".into()),
        (
            "--out",
            coordinator
                .path()
                .join("federation.toml")
                .display()
                .to_string(),
        ),
    ] {
        args.extend([flag.to_string(), value]);
    }
    let printed = functionary::ceremony::cli::run(None, &args).expect("assemble through the CLI");
    let hash = printed["config_hash"]
        .as_str()
        .expect("config_hash printed")
        .to_string();
    let config_path = coordinator.path().join("federation.toml");
    let config = FederationConfig::load(&config_path).expect("assembled config loads");
    assert_eq!(config.config_hash(), hash);
    assert_eq!(config.members.len(), 5);
    assert_eq!(config.threshold, 3);
    let peg = config.peg_wallet.as_ref().expect("peg wallet section");
    assert_eq!(peg.emergency_threshold, 2);
    assert_eq!(peg.csv_timelock, 4032);
    assert_eq!(
        peg.emergency_keys
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>(),
        emergency
    );
    for m in &machines {
        let entry = config.member_by_name(&m.name).expect("member in config");
        let keys = FederationKeys::of(m);
        assert_eq!(entry.block_pubkey.to_string(), keys.block);
        assert_eq!(entry.peg_pubkey.map(|k| k.to_string()), Some(keys.peg));
        assert_eq!(entry.peer_id.to_string(), keys.peer);
    }
    config.params().expect("valid consensus params");

    // Before verification the daemon check refuses, and says which command to run.
    let err = require_verified(machines[0].path(), &config).expect_err("not verified yet");
    assert!(matches!(err, CeremonyError::NotVerified { .. }), "{err}");
    assert!(err.to_string().contains("ceremony verify"), "{err}");

    // Every member verifies its own copy (as on its own machine).
    let mut transcripts = vec![coordinator.path().join("ceremony.transcript.jsonl")];
    for m in &machines {
        let copy = m.path().join("federation.toml");
        std::fs::copy(&config_path, &copy).unwrap();
        let out = verify(m, &copy, &hash, &descriptors).expect("member verifies");
        assert_eq!(out.config_hash, hash);
        assert_eq!(
            std::fs::read_to_string(m.path().join(VERIFIED_FILE))
                .unwrap()
                .trim(),
            hash
        );
        require_verified(m.path(), &config).expect("verified config is accepted");
        transcripts.push(m.transcript());
    }

    // A changed config is not the verified one.
    let mut changed = config.clone();
    changed.genesis_time += 1;
    let err = require_verified(machines[1].path(), &changed).expect_err("other config");
    assert!(
        matches!(err, CeremonyError::VerifiedMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ceremony verify"), "{err}");

    // The auditor re-checks everything from the transcripts.
    let report = run_audit(&AuditOptions {
        transcripts: transcripts.clone(),
        config: config_path.clone(),
        descriptors: descriptors.clone(),
    })
    .expect("audit passes");
    assert_eq!(report.config_hash, hash);
    assert_eq!(report.members.len(), 5);
    // 5 + 1 member steps, 1 assemble, 5 verifies; the first descriptor of alice was replaced.
    assert_eq!(report.entries, 12);
    assert_eq!(report.superseded, 1);

    // Without one member's transcript, its member and verify steps are missing.
    let err = run_audit(&AuditOptions {
        transcripts: transcripts[..5].to_vec(),
        config: config_path.clone(),
        descriptors: descriptors.clone(),
    })
    .expect_err("erin's steps are missing");
    assert!(err.to_string().contains("erin"), "{err}");

    // A transcript line altered after the fact breaks the hash chain.
    let alice_transcript = machines[0].transcript();
    let text = std::fs::read_to_string(&alice_transcript).unwrap();
    std::fs::write(
        &alice_transcript,
        text.replacen("\"alice\"", "\"mallory\"", 1),
    )
    .unwrap();
    let err = run_audit(&AuditOptions {
        transcripts,
        config: config_path.clone(),
        descriptors: descriptors.clone(),
    })
    .expect_err("tampered transcript");
    assert!(err.to_string().contains("hash chain broken"), "{err}");

    // A config file edited after assembly is caught by the audit too, even with a fresh transcript line.
    let edited = config_path.with_file_name("edited.toml");
    std::fs::write(
        &edited,
        std::fs::read_to_string(&config_path).unwrap() + "\n# edited\n",
    )
    .unwrap();
    let err = run_audit(&AuditOptions {
        transcripts: vec![coordinator.path().join("ceremony.transcript.jsonl")],
        config: edited,
        descriptors,
    })
    .expect_err("edited file");
    assert!(err.to_string().contains("changed after assembly"), "{err}");
}

/// A member's public identity read back from its descriptor file.
#[derive(Debug, PartialEq, Eq)]
struct FederationKeys {
    block: String,
    peg: String,
    peer: String,
}

impl FederationKeys {
    fn of(m: &Machine) -> FederationKeys {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(m.descriptor()).unwrap()).unwrap();
        let s = |k: &str| v["member"][k].as_str().unwrap().to_string();
        FederationKeys {
            block: s("block_pubkey"),
            peg: s("peg_pubkey"),
            peer: s("peer_id"),
        }
    }
}

fn edit_descriptor(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    let out = path.with_file_name("edited-descriptor.json");
    std::fs::write(&out, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    out
}

#[test]
fn tampered_descriptor_is_refused() {
    let machines = members(3, "tamper");
    let coordinator = tempfile::tempdir().unwrap();
    let tampered = edit_descriptor(&machines[1].descriptor(), |v| {
        v["member"]["address"] = "/ip4/10.9.9.9/tcp/7101".into();
    });
    let descriptors = vec![
        machines[0].descriptor(),
        tampered.clone(),
        machines[2].descriptor(),
    ];
    let err = assemble(coordinator.path(), descriptors, params(2)).expect_err("tampered");
    assert!(
        matches!(&err, CeremonyError::ProofInvalid { member, .. } if member == "bob"),
        "{err}"
    );
    assert!(
        err.to_string().contains(&tampered.display().to_string()),
        "{err}"
    );
    assert!(!coordinator.path().join("federation.toml").exists());

    // A proof swapped in from another key does not verify either.
    let swapped = edit_descriptor(&machines[0].descriptor(), |v| {
        let block = v["proofs"]["block_key"].clone();
        v["proofs"]["peg_key"] = block;
    });
    let err = assemble(
        coordinator.path(),
        vec![swapped, machines[1].descriptor(), machines[2].descriptor()],
        params(2),
    )
    .expect_err("swapped proof");
    assert!(
        matches!(&err, CeremonyError::ProofInvalid { proof, .. } if *proof == "peg_key"),
        "{err}"
    );
}

#[test]
fn missing_proof_is_refused() {
    let machines = members(2, "missing");
    let coordinator = tempfile::tempdir().unwrap();
    for proof in ["block_key", "peg_key", "p2p_key"] {
        let stripped = edit_descriptor(&machines[1].descriptor(), |v| {
            v["proofs"].as_object_mut().unwrap().remove(proof);
        });
        let err = assemble(
            coordinator.path(),
            vec![machines[0].descriptor(), stripped],
            params(2),
        )
        .expect_err("missing proof");
        assert!(
            matches!(&err, CeremonyError::ProofMissing { proof: p, .. } if *p == proof),
            "{err}"
        );
        assert!(err.to_string().contains(proof), "{err}");
    }
}

#[test]
fn bad_threshold_and_emergency_values_are_refused() {
    let machines = members(3, "badm");
    let coordinator = tempfile::tempdir().unwrap();
    let descriptors: Vec<PathBuf> = machines.iter().map(Machine::descriptor).collect();
    for (m, fragment) in [(0, "--threshold"), (4, "--threshold"), (1, "threshold")] {
        let err = assemble(coordinator.path(), descriptors.clone(), params(m)).expect_err("bad m");
        assert!(err.to_string().contains(fragment), "m={m}: {err}");
    }
    let mut p = params(2);
    p.emergency_threshold = 4;
    let err = assemble(coordinator.path(), descriptors.clone(), p).expect_err("bad k");
    assert!(
        err.to_string().contains("peg_wallet.emergency_threshold"),
        "{err}"
    );
    let mut p = params(2);
    p.emergency_keys.push(FederationKeys::of(&machines[0]).peg);
    let err = assemble(coordinator.path(), descriptors.clone(), p)
        .expect_err("member key as emergency key");
    assert!(
        err.to_string().contains("peg_wallet.emergency_keys[3]"),
        "{err}"
    );
    let mut p = params(2);
    p.csv_timelock = 0;
    let err = assemble(coordinator.path(), descriptors, p).expect_err("bad timelock");
    assert!(err.to_string().contains("peg_wallet.csv_timelock"), "{err}");
}

#[test]
fn duplicated_key_peer_id_and_name_are_refused() {
    let coordinator = tempfile::tempdir().unwrap();
    // Two members on one token: the same block and peg keys under two names and two identities.
    let token = unique_token("dupkey");
    let a = Machine::new("alice", &token, 7201);
    let b = Machine::new("bob", &token, 7202);
    run_member(&a.member_opts()).expect("alice");
    let out = run_member(&b.member_opts()).expect("bob reuses the token");
    assert!(!out.token_created && !out.block_key_created);
    assert!(!out.signer_journal_created && !b.path().join("signer.journal").exists());
    let err = assemble(
        coordinator.path(),
        vec![a.descriptor(), b.descriptor()],
        params(2),
    )
    .expect_err("duplicated key");
    assert!(
        matches!(&err, CeremonyError::Duplicate { what, .. } if *what == "secp256k1 key"),
        "{err}"
    );
    assert!(
        err.to_string().contains(&FederationKeys::of(&a).block),
        "{err}"
    );

    // Two tokens, one p2p identity.
    let c = Machine::new("carol", &unique_token("duppeer"), 7203);
    let d = Machine::new("dave", &unique_token("duppeer"), 7204);
    run_member(&c.member_opts()).expect("carol");
    std::fs::copy(c.path().join("p2p.key"), d.path().join("p2p.key")).unwrap();
    run_member(&d.member_opts()).expect("dave");
    let err = assemble(
        coordinator.path(),
        vec![c.descriptor(), d.descriptor()],
        params(2),
    )
    .expect_err("duplicated PeerId");
    assert!(
        matches!(&err, CeremonyError::Duplicate { what, .. } if *what == "PeerId"),
        "{err}"
    );
    assert!(
        err.to_string().contains(&FederationKeys::of(&c).peer),
        "{err}"
    );

    // Two members with one name.
    let e = Machine::new("carol", &unique_token("dupname"), 7205);
    run_member(&e.member_opts()).expect("second carol");
    let err = assemble(
        coordinator.path(),
        vec![c.descriptor(), e.descriptor()],
        params(2),
    )
    .expect_err("duplicated name");
    assert!(
        matches!(&err, CeremonyError::Duplicate { what, .. } if *what == "member name"),
        "{err}"
    );

    // The same descriptor twice.
    let err = assemble(
        coordinator.path(),
        vec![c.descriptor(), c.descriptor()],
        params(2),
    )
    .expect_err("same descriptor twice");
    assert!(matches!(err, CeremonyError::Duplicate { .. }), "{err}");
}

#[test]
fn wrong_hash_and_mismatching_config_are_refused_by_verify() {
    let machines = members(3, "verify");
    let coordinator = tempfile::tempdir().unwrap();
    let descriptors: Vec<PathBuf> = machines.iter().map(Machine::descriptor).collect();
    let out = assemble(coordinator.path(), descriptors.clone(), params(2)).expect("assemble");
    let config_path = out.out.clone();

    let wrong = "00".repeat(32);
    let err = verify(&machines[0], &config_path, &wrong, &descriptors).expect_err("wrong hash");
    assert!(matches!(err, CeremonyError::HashMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains(&wrong) && err.to_string().contains(&out.config_hash),
        "{err}"
    );
    assert!(!machines[0].path().join(VERIFIED_FILE).exists());

    // A descriptor missing: refused.
    let err = verify(
        &machines[0],
        &config_path,
        &out.config_hash,
        &descriptors[..2],
    )
    .expect_err("missing descriptor");
    assert!(err.to_string().contains("carol"), "{err}");

    // A config changed after assembly (with the changed config's own hash): it disagrees with the descriptors.
    let text = std::fs::read_to_string(&config_path).unwrap();
    let changed_path = coordinator.path().join("changed.toml");
    std::fs::write(&changed_path, text.replace("tcp/7101", "tcp/7999")).unwrap();
    let changed = FederationConfig::load(&changed_path).unwrap();
    let err = verify(
        &machines[0],
        &changed_path,
        &changed.config_hash(),
        &descriptors,
    )
    .expect_err("config disagrees with descriptors");
    assert!(
        matches!(&err, CeremonyError::DescriptorMismatch { member, .. } if member == "bob"),
        "{err}"
    );

    // A member that is not in the config cannot verify it.
    let outsider = members(1, "outsider").pop().unwrap();
    let err =
        verify(&outsider, &config_path, &out.config_hash, &descriptors).expect_err("outsider");
    assert!(matches!(err, CeremonyError::NotInConfig { .. }), "{err}");

    verify(&machines[0], &config_path, &out.config_hash, &descriptors)
        .expect("the right hash verifies");
}

#[test]
fn wrong_pin_absent_token_and_label_collision_are_clear_errors() {
    let m = Machine::new("alice", &unique_token("pin"), 7301);
    // No SO PIN: the absent token is not created.
    let mut opts = m.member_opts();
    opts.so_pin_file = None;
    let err = run_member(&opts).expect_err("token absent");
    assert!(matches!(err, CeremonyError::TokenAbsent { .. }), "{err}");
    assert!(err.to_string().contains("--so-pin-file"), "{err}");

    run_member(&m.member_opts()).expect("first run");
    std::fs::write(m.path().join("hsm.pin"), "999999").unwrap();
    let err = run_member(&m.member_opts()).expect_err("wrong PIN");
    assert!(err.to_string().contains("PIN incorrect"), "{err}");
    assert!(!err.to_string().contains("999999"), "the PIN leaked: {err}");

    // Both keys under one label.
    let n = Machine::new("bob", &unique_token("label"), 7302);
    let node = n.path().join("node.toml");
    let text = std::fs::read_to_string(&node).unwrap();
    std::fs::write(&node, text + "peg_key_label = \"block-signing\"\n").unwrap();
    let err = run_member(&n.member_opts()).expect_err("label collision");
    assert!(err.to_string().contains("hsm.peg_key_label"), "{err}");
}

#[test]
fn require_verified_refuses_a_stale_or_garbled_marker() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/federation.toml"),
    )
    .unwrap();
    let config = FederationConfig::from_toml_str(&text).unwrap();
    let err = require_verified(dir.path(), &config).expect_err("no marker");
    assert!(err.to_string().contains(VERIFIED_FILE), "{err}");
    std::fs::write(dir.path().join(VERIFIED_FILE), "not a hash\n").unwrap();
    assert!(matches!(
        require_verified(dir.path(), &config),
        Err(CeremonyError::VerifiedMismatch { .. })
    ));
    std::fs::write(
        dir.path().join(VERIFIED_FILE),
        format!("{}\n", config.config_hash()),
    )
    .unwrap();
    require_verified(dir.path(), &config).expect("matching marker");
}
