//! `functionary-signer` as a real process on SoftHSM: the socket protocol, the policy through the socket, bad
//! frames, the peer checks, and `functionaryd` talking to it (key check at start-up, reconnecting after the signer
//! restarts, the signer surviving a daemon crash).
//!
//! Every member here is a 1-of-1 federation made by the real ceremony (`functionary-cli ceremony member |
//! assemble | verify`) in its own data dir with its own SoftHSM token directory; the token is only ever opened by
//! child processes (the CLI, then the signer), never by this test process.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use functionary::signer_service::{
    JournalState, SignerClient, SignerRequest, SignerResponse, MAX_FRAME_BYTES, PROTOCOL_VERSION,
};

const SIGNER: &str = env!("CARGO_BIN_EXE_functionary-signer");
const DAEMON: &str = env!("CARGO_BIN_EXE_functionaryd");
const CLI: &str = env!("CARGO_BIN_EXE_functionary-cli");
const WAIT: Duration = Duration::from_secs(60);

/// A 1-of-1 federation member's data dir, after the ceremony.
struct Member {
    dir: tempfile::TempDir,
    rpc_port: u16,
    block_key: secp256k1::PublicKey,
}

impl Member {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn socket(&self) -> PathBuf {
        self.path().join("signer.sock")
    }

    fn rpc(&self) -> functionary::cli::rpc_client::RpcClient {
        functionary::cli::rpc_client::RpcClient::new(
            format!("127.0.0.1:{}", self.rpc_port),
            self.path().join(".cookie"),
        )
    }

    fn height(&self) -> Option<u64> {
        self.rpc()
            .call("getblockcount", &[])
            .ok()
            .and_then(|v| v.as_u64())
    }

    fn wait_height(&self, height: u64) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(h) = self.height().filter(|h| *h >= height) {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "height {height} not reached within {WAIT:?} (at {:?}); daemon log:\n{}\nsigner log:\n{}",
                self.height(),
                self.log("functionaryd.log"),
                self.log("functionary-signer.log")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }

    fn genesis_hash(&self) -> elements::BlockHash {
        functionary::config::FederationConfig::load(&self.path().join("federation.toml"))
            .unwrap()
            .params()
            .unwrap()
            .genesis_hash()
    }

    fn p2p_signing_key(&self) -> ed25519_dalek::SigningKey {
        let keypair = functionary::p2p::load_identity_file(&self.path().join("p2p.key")).unwrap();
        functionary::p2p::dalek_signing_key(&keypair).unwrap()
    }

    /// A commit certificate with this (only) member's precommit for `(height, hash)`, signed with `key`.
    fn certificate_signed_by(
        &self,
        height: u32,
        hash: [u8; 32],
        key: &ed25519_dalek::SigningKey,
    ) -> Vec<u8> {
        let block_hash = elements::BlockHash::from_byte_array(hash);
        let vote = blocksigner::Vote::sign(
            &self.genesis_hash(),
            blocksigner::VoteKind::Precommit,
            height,
            0,
            Some(block_hash),
            0,
            key,
        );
        blocksigner::CommitCertificate {
            height,
            round: 0,
            block_hash,
            precommits: vec![(
                0,
                blocksigner::CertificateSignature::from_bytes(&vote.signature),
            )],
        }
        .encode()
    }

    fn certificate(&self, height: u32, hash: [u8; 32]) -> Vec<u8> {
        self.certificate_signed_by(height, hash, &self.p2p_signing_key())
    }

    fn command(&self, program: &str, log: &str) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join(log))
            .unwrap();
        let mut cmd = Command::new(program);
        cmd.arg("--datadir")
            .arg(self.path())
            .env("SOFTHSM2_CONF", self.path().join("softhsm2.conf"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        cmd
    }

    /// Starts the signer and waits until its socket answers.
    fn start_signer(&self) -> Proc {
        let child = self
            .command(SIGNER, "functionary-signer.log")
            .spawn()
            .unwrap();
        let mut proc = Proc(child);
        let deadline = Instant::now() + WAIT;
        while UnixStream::connect(self.socket()).is_err() {
            if let Some(status) = proc.0.try_wait().unwrap() {
                panic!(
                    "signer exited ({status}):\n{}",
                    self.log("functionary-signer.log")
                );
            }
            assert!(Instant::now() < deadline, "signer did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        proc
    }

    fn start_daemon(&self) -> Proc {
        Proc(self.command(DAEMON, "functionaryd.log").spawn().unwrap())
    }

    /// Runs a binary to completion (at most 60 s) and returns (exit code, stderr).
    fn run_once(&self, program: &str) -> (Option<i32>, String) {
        let mut child = Command::new(program)
            .arg("--datadir")
            .arg(self.path())
            .env("SOFTHSM2_CONF", self.path().join("softhsm2.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{program} did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn append_node_toml(&self, text: &str) {
        let path = self.path().join("node.toml");
        let mut node = std::fs::read_to_string(&path).unwrap();
        node.push_str(text);
        std::fs::write(path, node).unwrap();
    }
}

/// A child process killed when dropped.
struct Proc(Child);

impl Proc {
    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    fn sigterm(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn cli(datadir: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(CLI)
        .arg("--datadir")
        .arg(datadir)
        .args(args)
        .env("SOFTHSM2_CONF", datadir.join("softhsm2.conf"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "functionary-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn module_path() -> PathBuf {
    std::env::var_os("HSM_TEST_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A member of its own 1-of-1 federation, through the real ceremony.
fn solo_member(name: &str) -> Member {
    let dir = tempfile::Builder::new()
        .prefix("signer-svc-")
        .tempdir()
        .unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("tokens")).unwrap();
    std::fs::write(
        d.join("softhsm2.conf"),
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            d.join("tokens").display()
        ),
    )
    .unwrap();
    write_private(&d.join("hsm.pin"), "123456");
    write_private(&d.join("so.pin"), "12345678");
    let rpc_port = free_port();
    let p2p_port = free_port();
    std::fs::write(
        d.join("node.toml"),
        format!(
            "member = \"{name}\"\nrpc_bind = \"127.0.0.1:{rpc_port}\"\nlog = \"info\"\n\n[hsm]\nmodule = \"{}\"\n\
             token_label = \"{name}\"\npin_file = \"hsm.pin\"\n",
            module_path().display()
        ),
    )
    .unwrap();
    let path = |p: &str| d.join(p).to_string_lossy().into_owned();
    let member = cli(
        d,
        &[
            "ceremony",
            "member",
            "--so-pin-file",
            &path("so.pin"),
            "--address",
            &format!("/ip4/127.0.0.1/tcp/{p2p_port}"),
            "--out",
            &path("descriptor.json"),
            "--transcript",
            &path("transcript.jsonl"),
        ],
    );
    let block_key: secp256k1::PublicKey = member["block_pubkey"].as_str().unwrap().parse().unwrap();
    let emergency: Vec<String> = functionary::ceremony::throwaway_emergency_keys(3)
        .iter()
        .map(|k| k.to_string())
        .collect();
    let genesis_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let mut args = vec![
        "ceremony",
        "assemble",
        "--descriptor",
        &path("descriptor.json"),
        "--emergency-key",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    args.extend(emergency);
    for (flag, value) in [
        ("--threshold", "1".to_string()),
        ("--interval", "200ms".to_string()),
        ("--emergency-threshold", "2".to_string()),
        ("--emergency-timelock", "4032".to_string()),
        ("--genesis-time", genesis_time),
        ("--chain-name", "signer-service-test".to_string()),
        ("--out", path("federation.toml")),
        ("--transcript", path("transcript.jsonl")),
    ] {
        args.push(flag.to_string());
        args.push(value);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let assembled = cli(d, &args);
    let hash = assembled["config_hash"].as_str().unwrap().to_string();
    cli(
        d,
        &[
            "ceremony",
            "verify",
            "--config",
            &path("federation.toml"),
            "--expect-hash",
            &hash,
            "--transcript",
            &path("transcript.jsonl"),
            "--descriptor",
            &path("descriptor.json"),
        ],
    );
    Member {
        dir,
        rpc_port,
        block_key,
    }
}

fn assert_valid_signature(signature: &[u8], hash: [u8; 32], key: &secp256k1::PublicKey) {
    let (sighash, der) = signature.split_last().expect("non-empty signature");
    assert_eq!(*sighash, 0x01, "SIGHASH_ALL byte");
    let sig = secp256k1::ecdsa::Signature::from_der(der).expect("DER signature");
    secp256k1::Secp256k1::verification_only()
        .verify_ecdsa(&secp256k1::Message::from_digest(hash), &sig, key)
        .expect("the signature verifies under the member's block key");
}

#[test]
fn signer_process_signs_with_a_certificate_and_enforces_the_policy_through_the_socket() {
    let m = solo_member("alice");
    let _signer = m.start_signer();

    let mode = std::fs::metadata(m.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "signer socket mode");

    let mut client = SignerClient::connect(&m.socket()).unwrap();
    let hello = client.hello().unwrap();
    assert_eq!(hello.version, PROTOCOL_VERSION);
    assert_eq!(hello.public_key, m.block_key);
    assert_eq!(client.public_key().unwrap(), m.block_key);
    // The ceremony created the journal together with the new key: open, nothing signed.
    assert_eq!(hello.journal, JournalState::Open { last_signed: None });
    drop(client);
    drop(_signer);

    // Without a journal nothing is signed until one is created (here by us: the signer's own uid).
    std::fs::remove_file(m.path().join("signer.journal")).unwrap();
    let _signer = m.start_signer();
    let mut client = SignerClient::connect(&m.socket()).unwrap();
    let hello = client.hello().unwrap();
    assert_eq!(hello.journal, JournalState::Missing);
    let (h1, a, b) = (1u32, [0xa1; 32], [0xb2; 32]);
    let refused = client
        .sign_block(h1, a, Some(m.certificate(h1, a)))
        .unwrap();
    assert!(
        matches!(&refused, Err(r) if r.contains("missing")),
        "{refused:?}"
    );
    assert!(!m.path().join("signer.journal").exists());
    assert_eq!(
        client.create_journal().unwrap(),
        JournalState::Open { last_signed: None }
    );
    assert!(m.path().join("signer.journal").exists());

    // Valid certificate: signed, and the signature is real.
    let signature = client
        .sign_block(h1, a, Some(m.certificate(h1, a)))
        .unwrap()
        .expect("signed");
    assert_valid_signature(&signature, a, &m.block_key);

    // A second hash at the same height, even with a valid certificate for it: refused.
    let second = client
        .sign_block(h1, b, Some(m.certificate(h1, b)))
        .unwrap();
    assert!(second.is_err(), "double sign at height 1: {second:?}");

    // Next height: a forged certificate and a missing one are refused; a lower height too.
    let forger = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let forged = client
        .sign_block(2, b, Some(m.certificate_signed_by(2, b, &forger)))
        .unwrap();
    assert!(forged.is_err(), "forged certificate: {forged:?}");
    assert!(client.sign_block(2, b, None).unwrap().is_err());
    assert!(client
        .sign_block(0, b, Some(m.certificate(0, b)))
        .unwrap()
        .is_err());
    // Exactly the last decision again (a crash between journal and signature) needs no certificate.
    let again = client.sign_block(h1, a, None).unwrap().expect("re-sign");
    assert_valid_signature(&again, a, &m.block_key);

    // A new connection (after a reconnect) sees the journal's last decision.
    drop(client);
    let mut client = SignerClient::connect(&m.socket()).unwrap();
    assert_eq!(
        client.hello().unwrap().journal,
        JournalState::Open {
            last_signed: Some(functionary::signer_service::LastSigned {
                height: 1,
                block_hash: a
            })
        }
    );
}

/// Reads one response frame from a raw stream (None if the signer closed the connection).
fn read_raw_response(stream: &mut UnixStream) -> Option<SignerResponse> {
    functionary::signer_service::protocol::read_frame::<SignerResponse>(stream).unwrap_or(None)
}

#[test]
fn garbage_and_oversized_frames_never_stop_the_signer() {
    let m = solo_member("bob");
    let mut signer = m.start_signer();
    let timeout = Some(Duration::from_secs(10));

    // An oversized length prefix: an error answer, then the connection is closed (nothing was allocated).
    let mut s = UnixStream::connect(m.socket()).unwrap();
    s.set_read_timeout(timeout).unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).unwrap();
    assert!(matches!(
        read_raw_response(&mut s),
        Some(SignerResponse::ProtocolError(e)) if e.contains("at most")
    ));
    assert!(read_raw_response(&mut s).is_none(), "connection closed");
    let mut s = UnixStream::connect(m.socket()).unwrap();
    s.set_read_timeout(timeout).unwrap();
    s.write_all(&(MAX_FRAME_BYTES + 1).to_be_bytes()).unwrap();
    assert!(matches!(
        read_raw_response(&mut s),
        Some(SignerResponse::ProtocolError(_))
    ));

    // A well-framed garbage body: an error answer, and the same connection still works.
    let mut s = UnixStream::connect(m.socket()).unwrap();
    s.set_read_timeout(timeout).unwrap();
    s.write_all(&[0, 0, 0, 5, 0xff, 0xfe, 0xfd, 0xfc, 0xfb])
        .unwrap();
    assert!(matches!(
        read_raw_response(&mut s),
        Some(SignerResponse::ProtocolError(e)) if e.contains("undecodable")
    ));
    functionary::signer_service::protocol::write_frame(
        &mut s,
        &SignerRequest::Hello {
            version: PROTOCOL_VERSION,
        },
    )
    .unwrap();
    assert!(matches!(
        read_raw_response(&mut s),
        Some(SignerResponse::Hello { .. })
    ));
    // An unsupported version is answered, not fatal.
    functionary::signer_service::protocol::write_frame(
        &mut s,
        &SignerRequest::Hello { version: 999 },
    )
    .unwrap();
    assert!(matches!(
        read_raw_response(&mut s),
        Some(SignerResponse::ProtocolError(e)) if e.contains("999")
    ));

    // Half a frame, then hang up; random bytes, then hang up.
    let mut s = UnixStream::connect(m.socket()).unwrap();
    s.write_all(&[0, 0, 0, 40, 1, 2]).unwrap();
    drop(s);
    let mut s = UnixStream::connect(m.socket()).unwrap();
    s.write_all(&[7; 3]).unwrap();
    drop(s);
    // A connection left idle does not block the next client.
    let _idle = UnixStream::connect(m.socket()).unwrap();

    assert!(signer.alive(), "the signer died");
    let mut client = SignerClient::connect(&m.socket()).unwrap();
    assert_eq!(client.hello().unwrap().public_key, m.block_key);
    let mut buf = [0u8; 1];
    // The idle connection is still open (the signer did not hang up on it).
    let mut idle = _idle;
    idle.set_nonblocking(true).unwrap();
    assert!(matches!(idle.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock));

    // Clean stop on SIGTERM removes the socket.
    let status = signer.sigterm();
    assert!(status.success(), "signer exit on SIGTERM: {status}");
    assert!(!m.socket().exists(), "socket removed on a clean stop");
}

#[test]
fn a_second_signer_for_the_same_socket_refuses_to_start_and_a_stale_socket_is_replaced() {
    let m = solo_member("carol");
    let mut first = m.start_signer();
    let (code, stderr) = m.run_once(SIGNER);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("already serving"), "{stderr}");
    assert!(first.alive());
    // The first one still serves.
    SignerClient::connect(&m.socket()).unwrap().hello().unwrap();
    // Killed hard, it leaves its socket file behind; the next signer replaces it.
    first.kill9();
    assert!(m.socket().exists());
    let _second = m.start_signer();
    SignerClient::connect(&m.socket()).unwrap().hello().unwrap();
}

#[test]
fn daemon_refuses_a_signer_holding_another_members_key_and_names_both_keys() {
    let alice = solo_member("alice");
    let bob = solo_member("bob");
    let _bob_signer = bob.start_signer();
    alice.append_node_toml(&format!(
        "\n[signer]\nsocket = \"{}\"\nconnect_timeout = \"5s\"\n",
        bob.socket().display()
    ));
    let (code, stderr) = alice.run_once(DAEMON);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&bob.block_key.to_string()),
        "names the signer's key: {stderr}"
    );
    assert!(
        stderr.contains(&alice.block_key.to_string()),
        "names the member's key: {stderr}"
    );
    assert!(!alice.path().join(".cookie").exists());
}

#[test]
fn daemon_without_a_signer_names_the_socket_and_never_opens_the_token() {
    let m = solo_member("dave");
    m.append_node_toml("\n[signer]\nconnect_timeout = \"1s\"\n");
    // The daemon in socket mode never reads the PIN: a wrong PIN file must not matter to it.
    write_private(&m.path().join("hsm.pin"), "000000");
    let (code, stderr) = m.run_once(DAEMON);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("signer.sock"), "{stderr}");
    assert!(!stderr.contains("PIN"), "{stderr}");
}

#[test]
fn daemon_reconnects_after_the_signer_restarts_and_the_signer_survives_a_daemon_crash() {
    let m = solo_member("erin");
    let mut signer = m.start_signer();
    let mut daemon = m.start_daemon();
    let h = m.wait_height(3);
    assert!(
        m.path().join("signer.journal").exists(),
        "the ceremony created the journal"
    );

    // The signer crashes and comes back: the daemon reconnects and the chain goes on.
    signer.kill9();
    std::thread::sleep(Duration::from_millis(500));
    let _signer2 = m.start_signer();
    let h = m.wait_height(h + 3);
    assert!(daemon.alive(), "the daemon survived the signer's restart");
    assert!(
        m.log("functionaryd.log")
            .contains("reconnected to the signer"),
        "daemon log:\n{}",
        m.log("functionaryd.log")
    );

    // The daemon crashes: the signer keeps running and serves the restarted daemon.
    daemon.kill9();
    let mut client = SignerClient::connect(&m.socket()).unwrap();
    let last = match client.hello().unwrap().journal {
        JournalState::Open { last_signed } => last_signed.expect("signed blocks"),
        JournalState::Missing => panic!("journal missing"),
    };
    assert!(
        u64::from(last.height) >= h,
        "journal at {last:?}, chain at {h}"
    );
    drop(client);
    let mut daemon = m.start_daemon();
    m.wait_height(h + 3);
    assert!(daemon.alive());
    let status = daemon.sigterm();
    assert!(status.success(), "daemon exit: {status}");
}

/// Running as root: a client under another uid (this test binary run through `setpriv`) reaches the socket through
/// the group bits, but the peer-uid check refuses it unless it is `signer.allowed_uid`.
#[test]
fn another_uid_is_refused_unless_allowed() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("setpriv").arg("--version").output().is_err()
    {
        eprintln!("skipped: needs root and setpriv (the check itself is unit-tested in signer_service::server)");
        return;
    }
    let m = solo_member("frank");
    // The data dir must be traversable by the other uid; the socket is 0660 when another uid is allowed.
    std::fs::set_permissions(m.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let nobody = 65534u32;
    let probe = |uid: u32, create: bool| -> String {
        // This test binary, as uid `uid` (group root, so the 0660 socket is reachable), runs the probe below.
        let out = Command::new("setpriv")
            .args([
                "--reuid",
                &uid.to_string(),
                "--regid",
                "0",
                "--clear-groups",
                "--",
            ])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", "uid_probe_client", "--ignored", "--nocapture"])
            .env(PROBE_SOCKET_ENV, m.socket())
            .env(PROBE_CREATE_ENV, if create { "1" } else { "" })
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "probe: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("PROBE-ANSWER:"))
            .unwrap_or("none")
            .to_string()
    };
    let hello_from = |uid: u32| probe(uid, false);
    let create_from = |uid: u32| probe(uid, true);
    // Another uid is allowed, but not this one.
    m.append_node_toml(&format!("\n[signer]\nallowed_uid = {}\n", nobody - 1));
    {
        let _signer = m.start_signer();
        let mode = std::fs::metadata(m.socket()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let answer = hello_from(nobody);
        assert!(
            answer.starts_with("refused: uid 65534 may not use"),
            "{answer}"
        );
        assert!(m
            .log("functionary-signer.log")
            .contains("may not use the signer"));
    }
    let node = std::fs::read_to_string(m.path().join("node.toml")).unwrap();
    std::fs::write(
        m.path().join("node.toml"),
        node.replace(
            &format!("allowed_uid = {}", nobody - 1),
            &format!("allowed_uid = {nobody}"),
        ),
    )
    .unwrap();
    let journal = m.path().join("signer.journal");
    std::fs::remove_file(&journal).unwrap();
    let _signer = m.start_signer();
    let answer = hello_from(nobody);
    assert_eq!(answer, "hello", "allowed uid");
    // The allowed uid (the daemon) may ask for signatures but never create the journal.
    let create = create_from(nobody);
    assert!(
        create.starts_with("refused: ") && create.contains("own user"),
        "{create}"
    );
    assert!(
        !journal.exists(),
        "the daemon's uid had the journal created"
    );
    // The signer's own uid (operator tools) may.
    let mut client = SignerClient::connect(&m.socket()).unwrap();
    assert_eq!(
        client.create_journal().unwrap(),
        JournalState::Open { last_signed: None }
    );
    assert!(journal.exists());
}

const PROBE_SOCKET_ENV: &str = "SIGNER_SERVICE_TEST_PROBE_SOCKET";
/// Non-empty: the probe asks the signer to create its journal (after hello) and prints that answer instead.
const PROBE_CREATE_ENV: &str = "SIGNER_SERVICE_TEST_PROBE_CREATE";

/// Not a test on its own: the client [`another_uid_is_refused_unless_allowed`] runs under another uid. Says hello
/// on the socket named by the environment and prints what came back.
#[test]
#[ignore = "helper process of another_uid_is_refused_unless_allowed"]
fn uid_probe_client() {
    let Some(path) = std::env::var_os(PROBE_SOCKET_ENV) else {
        return;
    };
    let create = std::env::var_os(PROBE_CREATE_ENV).is_some_and(|v| !v.is_empty());
    let answer = match SignerClient::connect(Path::new(&path)).and_then(|mut c| {
        c.hello()?;
        if create {
            c.create_journal()?;
        }
        Ok(())
    }) {
        Ok(()) if create => "created".to_string(),
        Ok(()) => "hello".to_string(),
        Err(functionary::signer_service::ClientError::Protocol { message, .. }) => {
            format!("refused: {message}")
        }
        Err(e) => format!("error: {e}"),
    };
    println!("PROBE-ANSWER:{answer}");
}

/// Runs the signer once with extra flags, expecting it to fail before binding its socket.
fn signer_fails(m: &Member, args: &[&str], needles: &[&str]) -> String {
    let mut child = Command::new(SIGNER)
        .arg("--datadir")
        .arg(m.path())
        .args(args)
        .env("SOFTHSM2_CONF", m.path().join("softhsm2.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "signer did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    assert!(!m.socket().exists(), "a failed start left a socket behind");
    stderr
}

#[test]
fn signer_start_errors_name_the_module_token_key_and_pin_without_leaking_it() {
    let m = solo_member("grace");
    signer_fails(
        &m,
        &["--hsm-module", "/nonexistent/libpkcs11.so"],
        &["/nonexistent/libpkcs11.so"],
    );
    signer_fails(&m, &["--hsm-key-label", "no-such-key"], &["no-such-key"]);
    signer_fails(
        &m,
        &["--hsm-token-label", "no-such-token"],
        &["no-such-token"],
    );
    write_private(&m.path().join("hsm.pin"), "000000wrong");
    let stderr = signer_fails(&m, &[], &["PIN incorrect"]);
    assert!(!stderr.contains("000000wrong"), "PIN leaked: {stderr}");
    write_private(&m.path().join("hsm.pin"), "123456");
    // A PIN file readable by group or others, a data dir writable by them: refused, naming the file and the fix.
    let pin = m.path().join("hsm.pin");
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = signer_fails(&m, &[], &["hsm.pin", "chmod 600", "0644"]);
    assert!(!stderr.contains("123456"), "PIN leaked: {stderr}");
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(m.path(), std::fs::Permissions::from_mode(0o770)).unwrap();
    signer_fails(
        &m,
        &[],
        &["data_dir", "writable by group or others", "chmod go-w"],
    );
    std::fs::set_permissions(m.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    // Fixed: the signer starts, and says that daemon and signer share a user (no signer.allowed_uid).
    let mut signer = m.start_signer();
    assert!(signer.sigterm().success());
    assert!(
        m.log("functionary-signer.log")
            .contains("daemon and signer run as the same user"),
        "signer log:\n{}",
        m.log("functionary-signer.log")
    );
    // Embedded mode: the daemon signs itself, so a signer process must not open the same token and journal.
    m.append_node_toml("\n[signer]\nmode = \"embedded\"\n");
    signer_fails(&m, &[], &["signer.mode", "embedded"]);
}

#[test]
fn lost_journal_on_a_member_with_blocks_is_refused_until_recreated_and_then_adopted_by_the_running_signer(
) {
    let m = solo_member("heidi");
    let journal = m.path().join("signer.journal");
    let height = {
        let mut signer = m.start_signer();
        let mut daemon = m.start_daemon();
        let h = m.wait_height(2);
        assert!(daemon.sigterm().success());
        assert!(signer.sigterm().success());
        h
    };
    std::fs::remove_file(&journal).unwrap();
    let _signer = m.start_signer();
    let (code, stderr) = m.run_once(DAEMON);
    assert_eq!(code, Some(1), "{stderr}");
    for needle in ["signer journal", "missing", "signer-journal-init"] {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    assert!(!journal.exists(), "the refused start had a journal created");

    // The operator re-creates it while the signer runs; the signer adopts it and the daemon starts.
    let refuse_up_to = height + 1_000;
    let out = cli(
        m.path(),
        &["signer-journal-init", &refuse_up_to.to_string()],
    );
    assert_eq!(out["refuses_up_to_height"], refuse_up_to);
    let mut client = SignerClient::connect(&m.socket()).unwrap();
    assert!(matches!(
        client.hello().unwrap().journal,
        JournalState::Open { .. }
    ));
    // Nothing at or below that height is signed, even with a valid certificate.
    let next = u32::try_from(height).unwrap() + 1;
    let refused = client
        .sign_block(next, [0x77; 32], Some(m.certificate(next, [0x77; 32])))
        .unwrap();
    assert!(refused.is_err(), "{refused:?}");
    drop(client);
    let mut daemon = m.start_daemon();
    std::thread::sleep(Duration::from_secs(2));
    assert!(daemon.alive(), "daemon log:\n{}", m.log("functionaryd.log"));
    assert!(m.height().is_some_and(|h| h <= height + 1));
}
