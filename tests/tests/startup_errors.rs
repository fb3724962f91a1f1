//! Bad input at start-up: functionaryd exits non-zero with an error that names the problem, and leaves nothing
//! running or half-written (no RPC cookie, and the same data dir starts cleanly once the input is fixed).

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use deploy::SignerProcess;
use tests::{run_daemon_once, TestFederation};

const EXIT_WITHIN: Duration = Duration::from_secs(30);

/// A 1-of-1 federation (its only member can run alone), not started.
fn solo() -> TestFederation {
    TestFederation::create(1, 1, Duration::from_millis(500)).expect("create a 1-member federation")
}

/// Runs the daemon expecting failure; asserts exit code 1, that stderr mentions every `needle`, and that no
/// RPC cookie was left behind.
fn expect_failure(fed: &TestFederation, datadir: &Path, args: &[&str], needles: &[&str]) -> String {
    let (code, stderr) =
        run_daemon_once(&fed.bins, datadir, args, EXIT_WITHIN).expect("run functionaryd");
    assert_eq!(code, Some(1), "expected exit code 1; stderr:\n{stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr does not mention {needle:?}:\n{stderr}"
        );
    }
    assert!(
        !datadir.join(".cookie").exists(),
        "a failed start left an RPC cookie behind"
    );
    stderr
}

/// Runs `functionary-signer` (the only process that opens the token) expecting failure; asserts exit code 1, that
/// stderr mentions every `needle`, and that no signer socket was left behind.
fn expect_signer_failure(
    fed: &TestFederation,
    datadir: &Path,
    args: &[&str],
    needles: &[&str],
) -> String {
    let (code, stderr) = deploy::process::run_once(&fed.bins.signer, datadir, args, EXIT_WITHIN)
        .expect("run functionary-signer");
    assert_eq!(code, Some(1), "expected exit code 1; stderr:\n{stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr does not mention {needle:?}:\n{stderr}"
        );
    }
    assert!(
        !datadir.join(deploy::process::SIGNER_SOCKET).exists(),
        "a failed signer start left its socket behind"
    );
    stderr
}

/// The member's signer, for daemon start-up checks that come after the signer handshake.
fn signer(fed: &TestFederation) -> SignerProcess {
    SignerProcess::start(&fed.layout, 0, &fed.bins, &[]).expect("start the signer")
}

/// After failures, the untouched data dir still starts and serves RPC.
fn assert_starts_cleanly(fed: &mut TestFederation) {
    fed.start(0).expect("start");
    fed.wait_height(&[0], 1, Duration::from_secs(60))
        .expect("the member produces blocks after the failed starts");
    fed.stop(0).expect("clean stop");
}

#[test]
fn missing_node_config_names_the_file() {
    let fed = solo();
    let empty = tempfile::tempdir().unwrap();
    expect_failure(&fed, empty.path(), &[], &["node.toml"]);
}

#[test]
fn malformed_federation_config_names_the_key() {
    let mut fed = solo();
    let datadir = fed.layout.datadir(0);
    let path = datadir.join("federation.toml");
    let good = std::fs::read_to_string(&path).unwrap();

    std::fs::write(&path, good.replace("threshold = 1", "threshold = \"one\"")).unwrap();
    expect_failure(&fed, &datadir, &[], &["threshold"]);

    std::fs::write(&path, good.replace("threshold = 1\n", "")).unwrap();
    expect_failure(&fed, &datadir, &[], &["threshold"]);

    let first_key = good
        .lines()
        .find(|l| l.starts_with("block_pubkey"))
        .unwrap()
        .to_string();
    std::fs::write(&path, good.replace(&first_key, "block_pubkey = \"02zz\"")).unwrap();
    expect_failure(&fed, &datadir, &[], &["block_pubkey"]);

    std::fs::write(
        &path,
        good.replace("block_interval = \"500ms\"", "block_interval = \"50ms\""),
    )
    .unwrap();
    expect_failure(&fed, &datadir, &[], &["block_interval"]);

    std::fs::remove_file(&path).unwrap();
    expect_failure(&fed, &datadir, &[], &["federation.toml"]);

    std::fs::write(&path, good).unwrap();
    assert_starts_cleanly(&mut fed);
}

#[test]
fn missing_pkcs11_module_is_named() {
    let mut fed = solo();
    let datadir = fed.layout.datadir(0);
    expect_signer_failure(
        &fed,
        &datadir,
        &["--hsm-module", "/nonexistent/libpkcs11.so"],
        &["/nonexistent/libpkcs11.so"],
    );
    assert_starts_cleanly(&mut fed);
}

#[test]
fn wrong_pin_is_refused() {
    let mut fed = solo();
    let datadir = fed.layout.datadir(0);
    let pin_file = datadir.join("hsm.pin");
    let good = std::fs::read(&pin_file).unwrap();
    std::fs::write(&pin_file, b"000000wrong").unwrap();
    let stderr = expect_signer_failure(&fed, &datadir, &[], &["PIN incorrect"]);
    assert!(
        !stderr.contains("000000wrong"),
        "the PIN appeared in the error output"
    );
    std::fs::write(&pin_file, good).unwrap();
    assert_starts_cleanly(&mut fed);
}

#[test]
fn absent_key_label_and_token_are_named() {
    let mut fed = solo();
    let datadir = fed.layout.datadir(0);
    expect_signer_failure(
        &fed,
        &datadir,
        &["--hsm-key-label", "no-such-key"],
        &["no-such-key"],
    );
    expect_signer_failure(
        &fed,
        &datadir,
        &["--hsm-token-label", "no-such-token"],
        &["no-such-token"],
    );
    assert_starts_cleanly(&mut fed);
}

#[test]
fn ports_in_use_are_named_and_nothing_keeps_running() {
    let mut fed = solo();
    let datadir = fed.layout.datadir(0);
    let rpc_addr = fed.layout.members[0].rpc_addr;
    // The ports are bound after the daemon has checked its signer.
    let running_signer = signer(&fed);
    {
        let _busy = TcpListener::bind(rpc_addr).unwrap();
        expect_failure(&fed, &datadir, &[], &[&rpc_addr.to_string()]);
    }
    let p2p_port = fed.layout.members[0].p2p_port;
    {
        let _busy = TcpListener::bind(("127.0.0.1", p2p_port)).unwrap();
        expect_failure(&fed, &datadir, &[], &[&p2p_port.to_string()]);
    }
    drop(running_signer);
    assert_starts_cleanly(&mut fed);
}

#[test]
fn data_dir_of_another_chain_is_refused() {
    let mut fed = solo();
    let datadir = fed.layout.datadir(0);
    assert_starts_cleanly(&mut fed);
    // Same keys, different chain: the stored genesis no longer matches the federation config.
    let path = datadir.join("federation.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        good.replace(
            "chain_name = \"functionary-devnet\"",
            "chain_name = \"other-chain\"",
        ),
    )
    .unwrap();
    // The operator verified the new config (the ceremony step), so start-up reaches the genesis check.
    let marker = datadir.join(functionary::ceremony::VERIFIED_FILE);
    let verified = std::fs::read(&marker).unwrap();
    deploy::setup::reverify_member(&fed.layout, &fed.bins, 0).unwrap();
    let running_signer = signer(&fed);
    expect_failure(&fed, &datadir, &[], &["genesis"]);
    drop(running_signer);
    std::fs::write(&path, good).unwrap();
    std::fs::write(&marker, verified).unwrap();
    assert_starts_cleanly(&mut fed);
}

#[test]
fn missing_signer_journal_on_a_member_with_blocks_is_refused_until_recreated_explicitly() {
    let mut fed = solo();
    let datadir = fed.layout.datadir(0);
    assert_starts_cleanly(&mut fed);
    let journal = datadir.join("signer.journal");
    std::fs::remove_file(&journal).unwrap();
    // The signer starts without a journal (it signs nothing until one exists); the daemon sees the chain.
    let _running_signer = signer(&fed);
    // No silent reset to a blank journal: the member might sign again what it signed before.
    expect_failure(
        &fed,
        &datadir,
        &[],
        &["signer journal", "missing", "signer-journal-init"],
    );
    assert!(!journal.exists(), "the failed start created a journal");
    // The operator re-creates it explicitly, refusing every height up to one the chain has passed.
    let height = fed.height(0).unwrap_or(0) + 1_000;
    let out = fed
        .bins
        .cli_json(&datadir, &["signer-journal-init", &height.to_string()])
        .unwrap();
    assert_eq!(out["refuses_up_to_height"], height);
    assert!(
        fed.bins
            .cli_json(&datadir, &["signer-journal-init", "1"])
            .is_err(),
        "an existing journal is never replaced"
    );
    // It starts again (the running signer adopts the new journal; it signs nothing at or below `height`, so a
    // 1-of-1 chain stops growing there).
    fed.start(0).expect("start");
    std::thread::sleep(Duration::from_secs(2));
    fed.stop(0).expect("clean stop");
}
