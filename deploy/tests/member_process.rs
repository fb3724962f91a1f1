//! The member process helpers the devnet and the multi-process tests use: each member is a `functionary-signer`
//! plus a `functionaryd`; `kill9` crashes both, `kill9_daemon` only the daemon (the signer keeps serving and the
//! restarted daemon reconnects). Needs the binaries next to this test (`cargo build -p functionary --bins`).

use std::path::Path;
use std::time::{Duration, Instant};

use deploy::process::{signer_answers, SIGNER_SOCKET};
use deploy::{Binaries, FederationSpec, MemberProcess};

fn wait_height(layout: &deploy::FederationLayout, height: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = deploy::rpc::client(layout, 0)
            .call("getblockcount", &[])
            .ok()
            .and_then(|v| v.as_u64());
        if let Some(h) = h.filter(|h| *h >= height) {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "height {height} not reached (at {h:?}); daemon log:\n{}",
            std::fs::read_to_string(layout.datadir(0).join("functionaryd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn socket(layout: &deploy::FederationLayout) -> std::path::PathBuf {
    layout.datadir(0).join(SIGNER_SOCKET)
}

#[test]
fn member_runs_signer_and_daemon_and_the_signer_survives_a_daemon_crash() {
    let bins = Binaries::locate(None)
        .expect("build the binaries first: cargo build -p functionary --bins");
    assert!(Path::new(&bins.signer).is_file());
    let dir = tempfile::Builder::new()
        .prefix("deploy-member-")
        .tempdir()
        .unwrap();
    let spec = FederationSpec::new(1, 1, Duration::from_millis(200));
    let layout = deploy::create(dir.path(), &spec, &bins).unwrap();
    let node = std::fs::read_to_string(layout.datadir(0).join("node.toml")).unwrap();
    assert!(
        node.contains("[signer]") && node.contains("mode = \"socket\""),
        "{node}"
    );

    let mut member = MemberProcess::start(&layout, 0, &bins).unwrap();
    let signer_pid = member.signer_pid().expect("the member started its signer");
    assert_ne!(signer_pid, member.pid());
    let h = wait_height(&layout, 2);
    assert!(layout.datadir(0).join("signer.journal").exists());

    // The daemon crashes: the signer keeps serving; the restarted daemon reconnects and the chain goes on.
    member.kill9_daemon().unwrap();
    assert!(member.try_exit().unwrap().is_some(), "daemon gone");
    assert!(
        member.signer_exit().unwrap().is_none(),
        "signer still running"
    );
    assert!(signer_answers(&socket(&layout)));
    member.restart_daemon(&layout, &bins, &[], &[]).unwrap();
    assert_eq!(member.signer_pid(), Some(signer_pid));
    let h = wait_height(&layout, h + 3);

    // A second start while this signer serves reuses it instead of starting another.
    member.kill9_daemon().unwrap();
    let mut second = MemberProcess::start(&layout, 0, &bins).unwrap();
    assert_eq!(second.signer_pid(), None, "reused the running signer");
    let h = wait_height(&layout, h + 2);
    second.kill9().unwrap();

    // A crash of the member's machine: daemon and signer both gone, the socket no longer answers.
    member.kill9().unwrap();
    assert!(member.signer_exit().unwrap().is_some());
    assert!(!signer_answers(&socket(&layout)));

    // Started again from disk (a stale socket file is replaced), then stopped cleanly: both exit.
    let mut member = MemberProcess::start(&layout, 0, &bins).unwrap();
    wait_height(&layout, h + 2);
    let status = member.terminate(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "daemon exit {status}");
    assert!(member.signer_exit().unwrap().is_some_and(|s| s.success()));
    assert!(
        !socket(&layout).exists(),
        "the signer removed its socket on a clean stop"
    );
}

#[test]
fn a_signer_that_cannot_start_is_reported_with_its_log() {
    let bins = Binaries::locate(None)
        .expect("build the binaries first: cargo build -p functionary --bins");
    let dir = tempfile::Builder::new()
        .prefix("deploy-member-")
        .tempdir()
        .unwrap();
    let spec = FederationSpec::new(1, 1, Duration::from_millis(200));
    let layout = deploy::create(dir.path(), &spec, &bins).unwrap();
    std::fs::write(layout.datadir(0).join("hsm.pin"), "wrong-pin-0000").unwrap();
    let err = match MemberProcess::start(&layout, 0, &bins) {
        Ok(_) => panic!("started with a wrong PIN"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("functionary-signer"), "{err}");
    assert!(err.contains("PIN incorrect"), "{err}");
    assert!(!err.contains("wrong-pin-0000"), "the PIN leaked: {err}");
}
