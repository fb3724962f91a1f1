//! The JSON-RPC server end to end: a real RocksDB `BlockStore` in a tempdir holding a small signed chain, a real
//! server on 127.0.0.1:0, and the blocking `RpcClient` / the `functionary-cli` binary talking to it.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use elements::{Block, BlockHash};
use functionary::cli::rpc_client::{http_post, CliError, RpcClient};
use functionary::rpc::ledger_source::{
    AcceptedInfo, LedgerRpcSource, MempoolEntryInfo, MempoolSummary,
};
use functionary::rpc::{self, NodeStatusSource, RpcContext, RpcError, RpcServer};
use functionary::storage::BlockStore;
use secp256k1::{Message, Secp256k1, SecretKey};
use serde_json::{json, Value};

const MEMBER_NAMES: [&str; 3] = ["alice", "bob", "carol"];
const GENESIS_TIME: u32 = 1_700_000_000;
/// Which members (by index in sorted key order) sign blocks 1, 2, 3.
const SIGNERS: [[usize; 2]; 3] = [[0, 1], [1, 2], [0, 2]];

struct FakeStatus;

impl NodeStatusSource for FakeStatus {
    fn peer_info(&self) -> Value {
        json!([{ "id": 0, "name": "bob", "peer_id": "12D3KooWFake", "connected": true }])
    }
    fn consensus_info(&self) -> Value {
        json!({ "height": 3, "round": 0, "state": "idle" })
    }
}

/// A node with an empty mempool that refuses every submission (these tests cover the chain methods; the ledger
/// methods are in `rpc_ledger.rs`).
struct EmptyLedger;

impl LedgerRpcSource for EmptyLedger {
    fn submit(
        &self,
        _tx: elements::Transaction,
    ) -> Result<AcceptedInfo, chain::ledger::TxRejection> {
        Err(chain::ledger::TxRejection::Lookup(
            chain::ledger::UtxoLookupError("no ledger in this test".into()),
        ))
    }
    fn test_accept(
        &self,
        tx: &elements::Transaction,
    ) -> Result<AcceptedInfo, chain::ledger::TxRejection> {
        self.submit(tx.clone())
    }
    fn mempool_transaction(&self, _txid: &elements::Txid) -> Option<elements::Transaction> {
        None
    }
    fn mempool_txids(&self) -> Vec<elements::Txid> {
        Vec::new()
    }
    fn mempool_entry(&self, _txid: &elements::Txid) -> Option<MempoolEntryInfo> {
        None
    }
    fn mempool_summary(&self) -> MempoolSummary {
        MempoolSummary::default()
    }
    fn mempool_spender(&self, _outpoint: &elements::OutPoint) -> Option<elements::Txid> {
        None
    }
    fn mempool_output(&self, _outpoint: &elements::OutPoint) -> Option<elements::TxOut> {
        None
    }
}

/// A signed chain of 4 blocks (genesis + 3) in a RocksDB store and a running RPC server over it.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    params: Arc<chain::FederationParams>,
    blocks: Vec<Block>,
    server: Option<RpcServer>,
    shutdown_rx: tokio::sync::watch::Receiver<bool>,
}

impl Fixture {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = tempfile::tempdir().expect("tempdir");

        let secp = Secp256k1::new();
        let secrets: Vec<SecretKey> = (0..3)
            .map(|_| SecretKey::new(&mut rand::thread_rng()))
            .collect();
        let pubkeys = secrets.iter().map(|s| s.public_key(&secp)).collect();
        let params =
            chain::FederationParams::new("rpc-test", pubkeys, 2, GENESIS_TIME).expect("params");
        // secret key of each member index (sorted key order)
        let mut by_index: Vec<(usize, SecretKey)> = secrets
            .iter()
            .map(|s| {
                (
                    params.member_index(&s.public_key(&secp)).expect("member"),
                    *s,
                )
            })
            .collect();
        by_index.sort_by_key(|(i, _)| *i);

        let store = BlockStore::open(&dir.path().join("blocks")).expect("open store");
        let genesis = params.genesis_block();
        store.init_genesis(&genesis).expect("init genesis");
        let mut blocks = vec![genesis];
        for (n, signers) in SIGNERS.iter().enumerate() {
            let parent = &blocks[n].header;
            let mut block = chain::build_block(&params, parent, GENESIS_TIME + 60 * (n as u32 + 1));
            let digest = chain::signing_digest(&block.header);
            let signatures: Vec<(usize, Vec<u8>)> = signers
                .iter()
                .map(|&i| {
                    let mut sig = secp.sign_ecdsa(&Message::from_digest(digest), &by_index[i].1);
                    sig.normalize_s();
                    let mut der = sig.serialize_der().to_vec();
                    der.push(0x01);
                    (i, der)
                })
                .collect();
            chain::attach_signatures(&params, &mut block.header, &signatures)
                .expect("attach signatures");
            store.put_block(&block).expect("put block");
            blocks.push(block);
        }

        let params = Arc::new(params);
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let ctx = RpcContext {
            store: Arc::new(store),
            params: Arc::clone(&params),
            member_names: MEMBER_NAMES.iter().map(|s| s.to_string()).collect(),
            federation_info: json!({ "config_hash": "ab".repeat(32), "block_interval_ms": 1000 }),
            status: Arc::new(FakeStatus),
            shutdown,
            ledger: Arc::new(EmptyLedger),
        };
        let server = runtime
            .block_on(rpc::start(
                "127.0.0.1:0".parse().expect("addr"),
                dir.path(),
                ctx,
            ))
            .expect("start rpc server");
        Fixture {
            runtime,
            dir,
            params,
            blocks,
            server: Some(server),
            shutdown_rx,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.as_ref().expect("server running").local_addr()
    }

    fn cookie_file(&self) -> PathBuf {
        self.dir.path().join(".cookie")
    }

    fn client(&self) -> RpcClient {
        RpcClient::new(self.addr(), self.cookie_file()).with_timeout(Duration::from_secs(10))
    }

    fn call(&self, method: &str, params: &[Value]) -> Value {
        self.client()
            .call(method, params)
            .unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    fn call_err(&self, method: &str, params: &[Value]) -> (i64, String) {
        match self.client().call(method, params) {
            Err(CliError::Rpc { code, message }) => (code, message),
            other => panic!("{method} {params:?}: expected an rpc error, got {other:?}"),
        }
    }

    fn hash(&self, height: usize) -> BlockHash {
        self.blocks[height].block_hash()
    }

    fn auth_header(&self) -> String {
        let cookie = std::fs::read_to_string(self.cookie_file()).expect("cookie");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(cookie.trim())
        )
    }

    fn post(&self, body: &str) -> (u16, Value) {
        let reply = http_post(
            &self.addr().to_string(),
            Some(&self.auth_header()),
            body.as_bytes(),
            Duration::from_secs(10),
        )
        .expect("post");
        let json = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        (reply.status, json)
    }
}

#[test]
fn chain_methods_return_the_stored_chain() {
    let f = Fixture::new();
    assert_eq!(f.call("getblockcount", &[]), json!(3));
    assert_eq!(
        f.call("getbestblockhash", &[]),
        json!(f.hash(3).to_string())
    );
    for height in 0..=3 {
        assert_eq!(
            f.call("getblockhash", &[json!(height)]),
            json!(f.hash(height).to_string())
        );
    }

    let info = f.call("getblockchaininfo", &[]);
    assert_eq!(info["chain"], json!("rpc-test"));
    assert_eq!(info["blocks"], json!(3));
    assert_eq!(info["headers"], json!(3));
    assert_eq!(info["bestblockhash"], json!(f.hash(3).to_string()));
    assert_eq!(info["time"], json!(f.blocks[3].header.time));
    // median of the times of blocks 0..=3 (sorted: g, g+60, g+120, g+180) is the element at index 2
    assert_eq!(info["mediantime"], json!(GENESIS_TIME + 120));
    assert_eq!(info["initialblockdownload"], json!(false));
    assert_eq!(info["pruned"], json!(false));
    assert_eq!(info["verificationprogress"], json!(1));
    assert_eq!(
        info["current_signblock_hex"],
        json!(hex::encode(f.params.signblockscript().as_bytes()))
    );
    assert_eq!(
        info["current_signblock_asm"],
        json!(format!(
            "0 {}",
            hex::encode(&f.params.signblockscript().as_bytes()[2..])
        ))
    );
    assert_eq!(
        info["max_block_witness"],
        json!(f.params.signblock_witness_limit())
    );
    assert!(info["size_on_disk"].as_u64().is_some(), "{info}");
}

#[test]
fn getblock_returns_hex_and_json_with_signers() {
    let f = Fixture::new();
    for height in 0..=3 {
        let hash = f.hash(height).to_string();
        let hex_block = f.call("getblock", &[json!(hash), json!(0)]);
        let bytes = hex::decode(hex_block.as_str().expect("hex string")).expect("hex");
        let decoded: Block = elements::encode::deserialize(&bytes).expect("block decodes");
        assert_eq!(decoded, f.blocks[height], "block {height}");
    }

    let keys = f.params.sorted_keys();
    for (n, signers) in SIGNERS.iter().enumerate() {
        let height = n + 1;
        let block = &f.blocks[height];
        let json = f.call("getblock", &[json!(f.hash(height).to_string())]);
        assert_eq!(json["hash"], json!(f.hash(height).to_string()));
        assert_eq!(json["height"], json!(height));
        assert_eq!(json["confirmations"], json!(3 - height + 1));
        assert_eq!(
            json["previousblockhash"],
            json!(f.hash(height - 1).to_string())
        );
        assert_eq!(json["time"], json!(block.header.time));
        assert_eq!(
            json["merkleroot"],
            json!(block.header.merkle_root.to_string())
        );
        assert_eq!(json["nTx"], json!(block.txdata.len()));
        let txids: Vec<Value> = block
            .txdata
            .iter()
            .map(|tx| json!(tx.txid().to_string()))
            .collect();
        assert_eq!(json["tx"], Value::Array(txids));
        assert_eq!(json["size"], json!(block.size()));
        assert_eq!(json["weight"], json!(block.weight()));
        if height < 3 {
            assert_eq!(json["nextblockhash"], json!(f.hash(height + 1).to_string()));
        } else {
            assert!(
                json.get("nextblockhash").is_none(),
                "tip has no next block: {json}"
            );
        }
        let expected_signers: Vec<Value> = signers
            .iter()
            .map(|&i| json!({ "index": i, "name": MEMBER_NAMES[i], "pubkey": keys[i].to_string() }))
            .collect();
        assert_eq!(
            json["signers"],
            Value::Array(expected_signers),
            "block {height}"
        );
        let witness = json["signblock_witness_hex"]
            .as_array()
            .expect("witness items");
        assert_eq!(
            witness.len(),
            2 + signers.len(),
            "[\"\", sig.., witnessScript]"
        );
        assert_eq!(witness[0], json!(""));
        assert_eq!(
            witness.last().cloned(),
            Some(json!(hex::encode(f.params.witness_script().as_bytes())))
        );
        assert_eq!(
            json["dynamic_parameters"]["current"]["signblockscript"],
            json!(hex::encode(f.params.signblockscript().as_bytes()))
        );
    }

    let genesis = f.call("getblock", &[json!(f.hash(0).to_string()), json!(1)]);
    assert_eq!(genesis["height"], json!(0));
    assert_eq!(genesis["confirmations"], json!(4));
    assert_eq!(genesis["signers"], json!([]));
    assert!(genesis.get("previousblockhash").is_none());

    let header = f.call("getblockheader", &[json!(f.hash(2).to_string())]);
    assert_eq!(header["height"], json!(2));
    assert_eq!(header["hash"], json!(f.hash(2).to_string()));
    assert_eq!(header["nextblockhash"], json!(f.hash(3).to_string()));
    let header_hex = f.call(
        "getblockheader",
        &[json!(f.hash(2).to_string()), json!(false)],
    );
    let bytes = hex::decode(header_hex.as_str().expect("hex")).expect("hex");
    let decoded: elements::BlockHeader =
        elements::encode::deserialize(&bytes).expect("header decodes");
    assert_eq!(decoded, f.blocks[2].header);
}

#[test]
fn node_methods_help_and_uptime() {
    let f = Fixture::new();
    assert_eq!(f.call("getpeerinfo", &[]), FakeStatus.peer_info());
    let fed = f.call("getfederationinfo", &[]);
    assert_eq!(fed["config_hash"], json!("ab".repeat(32)));
    assert_eq!(fed["block_interval_ms"], json!(1000));
    assert_eq!(fed["consensus"], FakeStatus.consensus_info());
    assert!(f.call("uptime", &[]).as_u64().is_some());
    let help = f.call("help", &[]);
    let help = help.as_str().expect("help is text");
    for method in [
        "getblockchaininfo",
        "getblock ",
        "getblockheader",
        "getfederationinfo",
        "stop",
    ] {
        assert!(help.contains(method), "help lists {method}: {help}");
    }
    let one = f.call("help", &[json!("getblockhash")]);
    assert!(
        one.as_str()
            .is_some_and(|s| s.starts_with("getblockhash height")),
        "{one}"
    );
}

#[test]
fn errors_have_bitcoind_codes() {
    let f = Fixture::new();
    assert_eq!(f.call_err("nosuchmethod", &[]).0, -32601);
    assert_eq!(
        f.call_err("getblockhash", &[json!(999)]),
        (-8, "Block height out of range".to_string())
    );
    assert_eq!(f.call_err("getblockhash", &[json!(-1)]).0, -8);
    let (code, message) = f.call_err("getblockhash", &[json!("one")]);
    assert_eq!(code, -8);
    assert!(message.contains("height"), "{message}");

    let unknown = "11".repeat(32);
    assert_eq!(
        f.call_err("getblock", &[json!(unknown)]),
        (-5, "Block not found".to_string())
    );
    assert_eq!(f.call_err("getblockheader", &[json!(unknown)]).0, -5);
    for bad in ["abc", "zz".repeat(32).as_str()] {
        let (code, message) = f.call_err("getblock", &[json!(bad)]);
        assert_eq!(code, -8, "{bad}");
        assert!(message.contains("blockhash"), "{message}");
    }
    assert_eq!(
        f.call_err("getblock", &[json!(f.hash(1).to_string()), json!(7)])
            .0,
        -8
    );
    // the raw HTTP status for method-not-found is 404, as bitcoind
    let (status, body) = f.post(r#"{"method":"nosuchmethod","params":[],"id":9}"#);
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], json!(-32601));
    assert_eq!(body["id"], json!(9));
}

#[test]
fn requests_without_the_cookie_get_401() {
    let f = Fixture::new();
    let addr = f.addr().to_string();
    let body = br#"{"method":"getblockcount","params":[],"id":1}"#;
    let none = http_post(&addr, None, body, Duration::from_secs(10)).expect("post");
    assert_eq!(none.status, 401);
    assert!(none.body.is_empty());

    let cookie = std::fs::read_to_string(f.cookie_file()).expect("cookie");
    let mut wrong = cookie.trim().to_string();
    let last = wrong.pop().expect("non-empty");
    wrong.push(if last == '0' { '1' } else { '0' });
    let wrong_header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(&wrong)
    );
    let rejected =
        http_post(&addr, Some(&wrong_header), body, Duration::from_secs(10)).expect("post");
    assert_eq!(rejected.status, 401);

    let wrong_file = f.dir.path().join("wrong-cookie");
    std::fs::write(&wrong_file, &wrong).expect("write");
    let client = RpcClient::new(f.addr(), &wrong_file);
    assert!(matches!(
        client.call("getblockcount", &[]),
        Err(CliError::Auth { .. })
    ));

    let right =
        http_post(&addr, Some(&f.auth_header()), body, Duration::from_secs(10)).expect("post");
    assert_eq!(right.status, 200);
}

#[test]
fn batch_parse_error_and_body_limit() {
    let f = Fixture::new();
    let (status, body) = f.post(
        r#"[{"method":"getblockcount","params":[],"id":1},
            {"method":"getblockhash","params":[1],"id":2},
            {"method":"getblockhash","params":[999],"id":3}]"#,
    );
    assert_eq!(status, 200);
    let items = body.as_array().expect("batch reply is an array");
    assert_eq!(items.len(), 3);
    assert_eq!(items[0], json!({ "result": 3, "error": null, "id": 1 }));
    assert_eq!(items[1]["result"], json!(f.hash(1).to_string()));
    assert_eq!(items[2]["error"]["code"], json!(-8));
    assert_eq!(items[2]["id"], json!(3));

    let (status, body) = f.post("{\"method\": \"getblockcount\", ");
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], json!(-32700));

    let (status, body) = f.post(r#"{"params":[],"id":1}"#);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], json!(-32600));

    let named = f.post(
        r#"{"method":"getblock","params":{"blockhash":"%H","verbosity":0},"id":1}"#
            .replace("%H", &f.hash(1).to_string())
            .as_str(),
    );
    assert_eq!(named.0, 200);
    assert_eq!(
        named.1["result"],
        json!(hex::encode(elements::encode::serialize(&f.blocks[1])))
    );

    let huge = format!(
        r#"{{"method":"help","params":["{}"],"id":1}}"#,
        "x".repeat(rpc::MAX_REQUEST_BODY_BYTES)
    );
    let (status, _) = f.post(&huge);
    assert_eq!(status, 413);
}

#[test]
fn stop_shuts_the_server_down_and_removes_the_cookie() {
    let mut f = Fixture::new();
    let cookie_file = f.cookie_file();
    let meta = std::fs::metadata(&cookie_file).expect("cookie exists while running");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let cookie = std::fs::read_to_string(&cookie_file).expect("cookie");
    let secret = cookie.strip_prefix("__cookie__:").expect("cookie user");
    assert_eq!(secret.len(), 64);
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!f.dir.path().join(".cookie.tmp").exists());

    let addr = f.addr();
    assert!(!*f.shutdown_rx.borrow());
    assert_eq!(f.call("stop", &[]), json!("Functionary stopping"));
    assert!(*f.shutdown_rx.borrow(), "stop set the shutdown watch");

    let server = f.server.take().expect("server");
    f.runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), server.wait()).await })
        .expect("server stops within 10 s");
    assert!(!cookie_file.exists(), "cookie removed after shutdown");
    let after = RpcClient::new(addr, &cookie_file).call("getblockcount", &[]);
    assert!(
        matches!(
            after,
            Err(CliError::Cookie { .. }) | Err(CliError::Connect { .. })
        ),
        "{after:?}"
    );
    let refused = http_post(&addr.to_string(), None, b"{}", Duration::from_secs(5));
    assert!(
        matches!(refused, Err(CliError::Connect { .. })),
        "{refused:?}"
    );
}

#[test]
fn binding_a_port_in_use_names_the_address() {
    let f = Fixture::new();
    let taken = f.addr();
    let other_dir = tempfile::tempdir().expect("tempdir");
    let (shutdown, _rx) = tokio::sync::watch::channel(false);
    let store = BlockStore::open(&other_dir.path().join("blocks")).expect("open store");
    let ctx = RpcContext {
        store: Arc::new(store),
        params: Arc::clone(&f.params),
        member_names: vec![],
        federation_info: Value::Null,
        status: Arc::new(FakeStatus),
        shutdown,
        ledger: Arc::new(EmptyLedger),
    };
    let result = f.runtime.block_on(rpc::start(taken, other_dir.path(), ctx));
    match result {
        Err(e @ RpcError::Bind { .. }) => {
            assert!(e.to_string().contains(&taken.to_string()), "{e}")
        }
        Err(other) => panic!("expected a bind error, got {other}"),
        Ok(_) => panic!("binding {taken} twice succeeded"),
    }
    assert!(
        !other_dir.path().join(".cookie").exists(),
        "no cookie written when the bind fails"
    );
}

fn run_cli(datadir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_functionary-cli"))
        .arg("--datadir")
        .arg(datadir)
        .args(args)
        .output()
        .expect("run functionary-cli")
}

#[test]
fn cli_binary_end_to_end() {
    let f = Fixture::new();
    let addr = f.addr().to_string();
    let datadir = f.dir.path();

    let out = run_cli(datadir, &["--rpcconnect", &addr, "getblockcount"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3\n");

    // rpc_bind from node.toml, a string result printed raw
    std::fs::write(
        datadir.join("node.toml"),
        format!("rpc_bind = \"{addr}\"\n"),
    )
    .expect("node.toml");
    let out = run_cli(datadir, &["getblockhash", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", f.hash(2))
    );

    // an object result printed as pretty JSON
    let out = run_cli(datadir, &["getblock", &f.hash(1).to_string(), "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(parsed["height"], json!(1));

    let out = run_cli(datadir, &["getblockhash", "999"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error code: -8"), "{stderr}");
    assert!(
        stderr.contains("error message:\nBlock height out of range"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let cookie = std::fs::read_to_string(f.cookie_file()).expect("cookie");
    let secret = cookie.trim().trim_start_matches("__cookie__:");
    let out = run_cli(
        datadir,
        &["--rpccookiefile", "/nonexistent/cookie", "getblockcount"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/cookie"), "{stderr}");
    assert!(!stderr.contains(secret));

    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let free_addr = free.local_addr().expect("addr").to_string();
    drop(free);
    let out = run_cli(datadir, &["--rpcconnect", &free_addr, "getblockcount"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&free_addr), "{stderr}");
}
