//! Federation and node configuration: parsing, canonical hash, validation errors naming their key, overrides.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use clap::Parser;
use functionary::config::{ConfigError, FederationConfig, NodeArgs, NodeConfig};

/// Serialises tests that read or write process environment variables.
static ENV_LOCK: Mutex<()> = Mutex::new(());

const ENV_VARS: [&str; 7] = [
    "FUNCTIONARY_DATADIR",
    "FUNCTIONARY_RPC_BIND",
    "FUNCTIONARY_P2P_LISTEN",
    "FUNCTIONARY_LOG",
    "FUNCTIONARY_HSM_MODULE",
    "FUNCTIONARY_HSM_TOKEN_LABEL",
    "FUNCTIONARY_HSM_KEY_LABEL",
];

fn block_pubkey(i: u8) -> String {
    let secret = secp256k1::SecretKey::from_slice(&[i + 1; 32]).unwrap();
    secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &secret).to_string()
}

fn peer_id(i: u8) -> String {
    libp2p::identity::Keypair::ed25519_from_bytes([i + 1; 32])
        .unwrap()
        .public()
        .to_peer_id()
        .to_string()
}

fn member_toml(i: u8) -> String {
    format!(
        "[[members]]\nname = \"member{i}\"\nblock_pubkey = \"{}\"\npeer_id = \"{}\"\naddress = \"/ip4/127.0.0.1/tcp/{}\"\n",
        block_pubkey(i),
        peer_id(i),
        7100 + u16::from(i)
    )
}

fn federation_toml(n: u8, threshold: usize) -> String {
    let mut s = format!(
        "chain_name = \"testchain\"\nthreshold = {threshold}\nblock_interval = \"2s\"\ngenesis_time = 1700000000\n\n"
    );
    for i in 0..n {
        s.push_str(&member_toml(i));
        s.push('\n');
    }
    s
}

fn parse(s: &str) -> FederationConfig {
    FederationConfig::from_toml_str(s).unwrap_or_else(|e| panic!("valid config refused: {e}\n{s}"))
}

/// Asserts that parsing fails with an error whose Display names `key` (and contains `fragment`).
fn assert_error_names(s: &str, key: &str, fragment: &str) {
    let err = FederationConfig::from_toml_str(s).expect_err("invalid config accepted");
    let text = err.to_string();
    assert!(text.contains(key), "error `{text}` does not name `{key}`");
    assert!(
        text.contains(fragment),
        "error `{text}` does not contain `{fragment}`"
    );
    if let ConfigError::Invalid { key: k, .. } = &err {
        assert_eq!(k, key, "error key");
    }
}

#[test]
fn valid_config_round_trips() {
    let config = parse(&federation_toml(4, 3));
    assert_eq!(config.chain_name, "testchain");
    assert_eq!(config.threshold, 3);
    assert_eq!(config.block_interval, Duration::from_secs(2));
    assert_eq!(config.genesis_time, 1_700_000_000);
    assert_eq!(config.members.len(), 4);
    assert_eq!(config.members[2].name, "member2");
    assert_eq!(
        config.members[2].address.to_string(),
        "/ip4/127.0.0.1/tcp/7102"
    );
    assert_eq!(
        config
            .member_by_name("member1")
            .map(|m| m.peer_id.to_string()),
        Some(peer_id(1))
    );
    assert!(config.member_by_name("nobody").is_none());

    let rendered = config.to_toml_string();
    let reparsed = parse(&rendered);
    assert_eq!(reparsed, config);
    assert_eq!(reparsed.config_hash(), config.config_hash());
    assert_eq!(config.config_hash().len(), 64);
}

#[test]
fn defaults_and_address_forms() {
    let text = federation_toml(2, 1)
        .replace("block_interval = \"2s\"\n", "")
        .replace("\"/ip4/127.0.0.1/tcp/7100\"", "\"127.0.0.1:7100\"")
        .replace("\"/ip4/127.0.0.1/tcp/7101\"", "\"[::1]:7101\"");
    let config = parse(&text);
    assert_eq!(config.block_interval, Duration::from_secs(120));
    assert_eq!(
        config.members[0].address.to_string(),
        "/ip4/127.0.0.1/tcp/7100"
    );
    assert_eq!(config.members[1].address.to_string(), "/ip6/::1/tcp/7101");
    // Written as IP:port or as a multiaddr: same config, same hash.
    let explicit = parse(
        &federation_toml(2, 1)
            .replace("block_interval = \"2s\"\n", "")
            .replace("\"/ip4/127.0.0.1/tcp/7101\"", "\"/ip6/::1/tcp/7101\""),
    );
    assert_eq!(explicit.config_hash(), config.config_hash());

    for (text, expected) in [
        ("1.5s", 1500),
        ("200ms", 200),
        ("2m", 120_000),
        ("100ms", 100),
    ] {
        let config = parse(&federation_toml(1, 1).replace("\"2s\"", &format!("\"{text}\"")));
        assert_eq!(
            config.block_interval,
            Duration::from_millis(expected),
            "{text}"
        );
        assert_eq!(
            parse(&config.to_toml_string()).block_interval,
            config.block_interval
        );
    }
}

#[test]
fn hash_ignores_formatting_comments_and_member_order() {
    let base = parse(&federation_toml(4, 3)).config_hash();

    // Reformatted: comments, blank lines, different key order and spacing, inline-table array form.
    let mut members = String::from("members = [\n");
    for i in (0..4u8).rev() {
        members.push_str(&format!(
            "  {{ address = \"127.0.0.1:{}\", peer_id = \"{}\", name = \"member{i}\", block_pubkey = \"{}\" }}, # member {i}\n",
            7100 + u16::from(i),
            peer_id(i),
            block_pubkey(i)
        ));
    }
    members.push_str("]\n");
    let reformatted = format!(
        "# federation file, reformatted\ngenesis_time=1700000000\n\n\nblock_interval = \"2000ms\"   # two seconds\nthreshold    = 3\nchain_name = 'testchain'\n{members}"
    );
    assert_eq!(parse(&reformatted).config_hash(), base);

    // Only member order changed (array of tables).
    let mut reordered = String::from(
        "chain_name = \"testchain\"\nthreshold = 3\nblock_interval = \"2s\"\ngenesis_time = 1700000000\n",
    );
    for i in [2u8, 0, 3, 1] {
        reordered.push_str(&member_toml(i));
    }
    assert_eq!(parse(&reordered).config_hash(), base);
}

#[test]
fn hash_changes_with_every_semantic_change() {
    let text = federation_toml(4, 3);
    let base = parse(&text).config_hash();
    let variants = [
        ("threshold", text.replace("threshold = 3", "threshold = 2")),
        ("interval", text.replace("\"2s\"", "\"3s\"")),
        ("genesis time", text.replace("1700000000", "1700000001")),
        ("chain name", text.replace("testchain", "otherchain")),
        ("key", text.replace(&block_pubkey(1), &block_pubkey(9))),
        ("name", text.replace("member3", "carol")),
        ("peer id", text.replace(&peer_id(2), &peer_id(9))),
        ("address", text.replace("tcp/7103", "tcp/7203")),
        (
            "address ip",
            text.replace("/ip4/127.0.0.1/tcp/7100", "/ip4/127.0.0.2/tcp/7100"),
        ),
    ];
    for (what, variant) in variants {
        assert_ne!(variant, text, "{what}: replacement did not apply");
        assert_ne!(
            parse(&variant).config_hash(),
            base,
            "{what} change did not change the hash"
        );
    }
}

#[test]
fn validation_errors_name_their_key() {
    let ok = federation_toml(4, 3);

    assert_error_names(&ok.replace("threshold = 3\n", ""), "threshold", "missing");
    assert_error_names(
        &ok.replace("chain_name = \"testchain\"\n", ""),
        "chain_name",
        "missing",
    );
    assert_error_names(
        &ok.replace("genesis_time = 1700000000\n", ""),
        "genesis_time",
        "missing",
    );
    assert_error_names(
        &ok.replace("threshold = 3", "threshold = 0"),
        "threshold",
        "at least 1",
    );
    assert_error_names(
        &ok.replace("threshold = 3", "threshold = 5"),
        "threshold",
        "5 is larger than the number of members (4)",
    );
    assert_error_names(
        &ok.replace("\"2s\"", "\"50ms\""),
        "block_interval",
        "shorter than",
    );
    assert_error_names(&ok.replace("\"2s\"", "\"soon\""), "block_interval", "soon");

    // Malformed public key in the third member.
    let bad_key = ok.replace(&block_pubkey(2), &format!("05{}", &block_pubkey(2)[2..]));
    assert_error_names(
        &bad_key,
        "members[2].block_pubkey",
        "not a valid compressed secp256k1 public key",
    );
    let not_on_curve = ok.replace(&block_pubkey(2), &format!("02{}", "ff".repeat(32)));
    assert_error_names(
        &not_on_curve,
        "members[2].block_pubkey",
        "not a valid compressed secp256k1 public key",
    );
    let uncompressed_len = ok.replace(&block_pubkey(2), &"04".repeat(65));
    assert_error_names(&uncompressed_len, "members[2].block_pubkey", "33 bytes");
    assert_error_names(
        &ok.replace(&block_pubkey(2), "zz"),
        "members[2].block_pubkey",
        "hex",
    );

    // Duplicates.
    assert_error_names(
        &ok.replace(&block_pubkey(3), &block_pubkey(0)),
        "members[3].block_pubkey",
        "duplicate",
    );
    assert_error_names(
        &ok.replace("member3", "member1"),
        "members[3].name",
        "duplicate",
    );
    assert_error_names(
        &ok.replace(&peer_id(3), &peer_id(1)),
        "members[3].peer_id",
        "duplicate",
    );
    assert_error_names(
        &ok.replace("tcp/7103", "tcp/7101"),
        "members[3].address",
        "duplicate",
    );

    // Names, addresses, peer ids.
    assert_error_names(
        &ok.replace("member1", "bad name!"),
        "members[1].name",
        "not a valid member name",
    );
    assert_error_names(
        &ok.replace("/ip4/127.0.0.1/tcp/7101", "/ip4/127.0.0.1/tcpx/7101"),
        "members[1].address",
        "multiaddr",
    );
    assert_error_names(
        &ok.replace("/ip4/127.0.0.1/tcp/7101", "/ip4/127.0.0.1/udp/7101"),
        "members[1].address",
        "TCP",
    );
    assert_error_names(
        &ok.replace("/ip4/127.0.0.1/tcp/7101", "localhost:7101"),
        "members[1].address",
        "localhost",
    );
    assert_error_names(
        &ok.replace("/ip4/127.0.0.1/tcp/7101", "/ip4/127.0.0.1/tcp/0"),
        "members[1].address",
        "port 0",
    );
    assert_error_names(
        &ok.replace(&peer_id(0), "not-a-peer-id"),
        "members[0].peer_id",
        "not a valid PeerId",
    );
    // An RSA-style PeerId (sha2-256 multihash).
    let sha256_peer = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N";
    assert_error_names(
        &ok.replace(&peer_id(0), sha256_peer),
        "members[0].peer_id",
        "not an ed25519 PeerId",
    );
    // An identity multihash inlining a secp256k1 libp2p key (protobuf KeyType 2).
    let mut secp_key = vec![0x08, 0x02, 0x12, 33];
    secp_key.extend(hex::decode(block_pubkey(5)).unwrap());
    let mut multihash = vec![0x00, secp_key.len() as u8];
    multihash.extend(secp_key);
    let secp_peer = libp2p::PeerId::from_bytes(&multihash).unwrap().to_string();
    assert_error_names(
        &ok.replace(&peer_id(0), &secp_peer),
        "members[0].peer_id",
        "ed25519",
    );

    // Missing member fields.
    assert_error_names(
        &ok.replace(&format!("peer_id = \"{}\"\n", peer_id(1)), ""),
        "members[1].peer_id",
        "missing",
    );

    // Member count.
    let none = "chain_name = \"x\"\nthreshold = 1\ngenesis_time = 0\n";
    assert_error_names(none, "members", "at least one");
    assert_error_names(
        &federation_toml(16, 10),
        "members",
        "16 members given, at most 15",
    );
    parse(&federation_toml(15, 10));

    // Chain name.
    assert_error_names(
        &ok.replace("testchain", ""),
        "chain_name",
        "printable ASCII",
    );
    assert_error_names(
        &ok.replace("testchain", &"c".repeat(65)),
        "chain_name",
        "64",
    );
    assert_error_names(&ok.replace("testchain", "chäin"), "chain_name", "ASCII");
}

#[test]
fn unknown_and_mistyped_keys_are_errors_naming_the_key() {
    let ok = federation_toml(2, 1);
    for (text, key) in [
        (
            ok.replace("threshold = 1", "threshold = 1\nthreshhold = 2"),
            "threshhold",
        ),
        (
            ok.replacen("name = \"member0\"", "name = \"member0\"\nport = 9", 1),
            "port",
        ),
        (
            ok.replace("threshold = 1", "threshold = \"one\""),
            "threshold",
        ),
    ] {
        let err = FederationConfig::from_toml_str(&text).expect_err("accepted");
        assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
        assert!(
            err.to_string().contains(key),
            "`{err}` does not name `{key}`"
        );
    }
}

#[test]
fn load_names_missing_file_and_reads_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("federation.toml");
    let err = FederationConfig::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    std::fs::write(&path, federation_toml(3, 2)).unwrap();
    assert_eq!(FederationConfig::load(&path).unwrap().threshold, 2);

    std::fs::write(&path, "threshold = [").unwrap();
    let err = FederationConfig::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }));
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// node.toml

#[derive(Parser)]
struct TestCli {
    #[command(flatten)]
    node: NodeArgs,
}

fn cli(args: &[&str]) -> NodeArgs {
    let mut argv = vec!["functionaryd"];
    argv.extend_from_slice(args);
    TestCli::try_parse_from(argv).unwrap().node
}

fn clear_env() {
    for var in ENV_VARS {
        std::env::remove_var(var);
    }
}

fn write_node_toml(dir: &Path, text: &str) {
    std::fs::write(dir.join("node.toml"), text).unwrap();
}

const MINIMAL_NODE: &str = "member = \"member0\"\n[hsm]\ntoken_label = \"fed-member0\"\n";

#[test]
fn node_defaults_and_relative_paths_resolve_against_datadir() {
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    clear_env();
    let dir = tempfile::tempdir().unwrap();
    write_node_toml(dir.path(), MINIMAL_NODE);
    let datadir = dir.path().to_str().unwrap();
    let config = NodeConfig::load(&cli(&["--datadir", datadir])).unwrap();
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(config.data_dir, canonical);
    assert!(config.data_dir.is_absolute());
    assert_eq!(config.member, "member0");
    assert_eq!(config.federation_file, canonical.join("federation.toml"));
    assert_eq!(config.p2p_key_file, canonical.join("p2p.key"));
    assert_eq!(config.hsm.pin_file, canonical.join("hsm.pin"));
    assert_eq!(
        config.hsm.module,
        PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
    );
    assert_eq!(config.hsm.key_label, "block-signing");
    assert_eq!(config.hsm.token_label, "fed-member0");
    assert_eq!(config.rpc_bind.to_string(), "127.0.0.1:7041");
    assert_eq!(config.p2p_listen, None);
    assert_eq!(config.log, "info");

    write_node_toml(
        dir.path(),
        "member = \"member0\"\nfederation = \"conf/fed.toml\"\np2p_key_file = \"/etc/functionary/p2p.key\"\n\
         rpc_bind = \"0.0.0.0:9000\"\np2p_listen = \"0.0.0.0:7101\"\nlog = \"debug\"\n\
         [hsm]\nmodule = \"/opt/hsm.so\"\ntoken_label = \"t\"\nkey_label = \"k\"\npin_file = \"secrets/pin\"\n",
    );
    // A data dir given with a `..` component is canonicalised.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let indirect = sub.join("..");
    let config = NodeConfig::load(&cli(&["--datadir", indirect.to_str().unwrap()])).unwrap();
    assert_eq!(config.data_dir, canonical);
    assert_eq!(config.federation_file, canonical.join("conf/fed.toml"));
    assert_eq!(
        config.p2p_key_file,
        PathBuf::from("/etc/functionary/p2p.key")
    );
    assert_eq!(config.hsm.pin_file, canonical.join("secrets/pin"));
    assert_eq!(config.hsm.module, PathBuf::from("/opt/hsm.so"));
    assert_eq!(config.rpc_bind.to_string(), "0.0.0.0:9000");
    assert_eq!(
        config.p2p_listen.as_ref().map(|a| a.to_string()).as_deref(),
        Some("/ip4/0.0.0.0/tcp/7101")
    );
    assert_eq!(config.log, "debug");

    // to_toml_string round-trips through load.
    let other = tempfile::tempdir().unwrap();
    write_node_toml(other.path(), &config.to_toml_string());
    let reloaded = NodeConfig::load(&cli(&["--datadir", other.path().to_str().unwrap()])).unwrap();
    assert_eq!(
        reloaded.data_dir,
        std::fs::canonicalize(other.path()).unwrap()
    );
    assert_eq!(
        NodeConfig {
            data_dir: config.data_dir.clone(),
            ..reloaded
        },
        config
    );

    // --conf relative to the data dir.
    std::fs::write(
        dir.path().join("alt.toml"),
        MINIMAL_NODE.replace("member0", "member7"),
    )
    .unwrap();
    let config = NodeConfig::load(&cli(&["--datadir", datadir, "--conf", "alt.toml"])).unwrap();
    assert_eq!(config.member, "member7");
}

#[test]
fn node_precedence_flags_over_env_over_file_over_defaults() {
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    clear_env();
    let dir = tempfile::tempdir().unwrap();
    write_node_toml(
        dir.path(),
        "member = \"member0\"\nrpc_bind = \"127.0.0.1:1111\"\nlog = \"warn\"\n\
         [hsm]\ntoken_label = \"file-token\"\nkey_label = \"file-key\"\n",
    );
    let datadir = dir.path().to_str().unwrap();

    // File over defaults.
    let config = NodeConfig::load(&cli(&["--datadir", datadir])).unwrap();
    assert_eq!(config.rpc_bind.to_string(), "127.0.0.1:1111");
    assert_eq!(config.log, "warn");
    assert_eq!(config.hsm.token_label, "file-token");
    assert_eq!(config.hsm.key_label, "file-key");

    // Env over file (and the data dir itself from env).
    std::env::set_var("FUNCTIONARY_DATADIR", datadir);
    std::env::set_var("FUNCTIONARY_RPC_BIND", "127.0.0.1:2222");
    std::env::set_var("FUNCTIONARY_LOG", "error");
    std::env::set_var("FUNCTIONARY_HSM_TOKEN_LABEL", "env-token");
    std::env::set_var("FUNCTIONARY_HSM_KEY_LABEL", "env-key");
    std::env::set_var("FUNCTIONARY_HSM_MODULE", "/env/module.so");
    std::env::set_var("FUNCTIONARY_P2P_LISTEN", "/ip4/0.0.0.0/tcp/2222");
    let config = NodeConfig::load(&cli(&[])).unwrap();
    assert_eq!(config.data_dir, std::fs::canonicalize(dir.path()).unwrap());
    assert_eq!(config.rpc_bind.to_string(), "127.0.0.1:2222");
    assert_eq!(config.log, "error");
    assert_eq!(config.hsm.token_label, "env-token");
    assert_eq!(config.hsm.key_label, "env-key");
    assert_eq!(config.hsm.module, PathBuf::from("/env/module.so"));
    assert_eq!(
        config.p2p_listen.map(|a| a.to_string()).as_deref(),
        Some("/ip4/0.0.0.0/tcp/2222")
    );

    // Flags over env.
    let config = NodeConfig::load(&cli(&[
        "--rpc-bind",
        "127.0.0.1:3333",
        "--log",
        "trace",
        "--hsm-token-label",
        "flag-token",
        "--hsm-key-label",
        "flag-key",
        "--hsm-module",
        "/flag/module.so",
        "--p2p-listen",
        "127.0.0.1:3333",
    ]))
    .unwrap();
    assert_eq!(config.rpc_bind.to_string(), "127.0.0.1:3333");
    assert_eq!(config.log, "trace");
    assert_eq!(config.hsm.token_label, "flag-token");
    assert_eq!(config.hsm.key_label, "flag-key");
    assert_eq!(config.hsm.module, PathBuf::from("/flag/module.so"));
    assert_eq!(
        config.p2p_listen.map(|a| a.to_string()).as_deref(),
        Some("/ip4/127.0.0.1/tcp/3333")
    );

    // A bad override names the key and where it came from.
    std::env::set_var("FUNCTIONARY_RPC_BIND", "nonsense");
    let err = NodeConfig::load(&cli(&[])).unwrap_err();
    assert!(err.to_string().starts_with("rpc_bind:"), "{err}");
    assert!(err.to_string().contains("FUNCTIONARY_RPC_BIND"), "{err}");
    clear_env();
}

#[test]
fn node_errors_name_path_or_key() {
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    clear_env();
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().to_str().unwrap();

    // Missing node.toml names its path.
    let err = NodeConfig::load(&cli(&["--datadir", datadir])).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
    let expected = std::fs::canonicalize(dir.path()).unwrap().join("node.toml");
    assert!(
        err.to_string().contains(&expected.display().to_string()),
        "{err}"
    );

    // Missing data dir names its path.
    let missing = dir.path().join("does-not-exist");
    let err = NodeConfig::load(&cli(&["--datadir", missing.to_str().unwrap()])).unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    // --datadir is required (no env).
    assert!(TestCli::try_parse_from(["functionaryd"]).is_err());

    for (text, key) in [
        ("[hsm]\ntoken_label = \"t\"\n", "member"),
        ("member = \"m\"\n", "hsm.token_label"),
        (
            "member = \"m\"\n[hsm]\ntoken_label = \"\"\n",
            "hsm.token_label",
        ),
        (
            "member = \"bad name\"\n[hsm]\ntoken_label = \"t\"\n",
            "member",
        ),
        (
            "member = \"m\"\nrpc_bind = \"localhost\"\n[hsm]\ntoken_label = \"t\"\n",
            "rpc_bind",
        ),
        (
            "member = \"m\"\np2p_listen = \"/dns/x/tcp/1\"\n[hsm]\ntoken_label = \"t\"\n",
            "p2p_listen",
        ),
        (
            "member = \"m\"\nlog = \"info,[[[\"\n[hsm]\ntoken_label = \"t\"\n",
            "log",
        ),
    ] {
        write_node_toml(dir.path(), text);
        let err = NodeConfig::load(&cli(&["--datadir", datadir])).unwrap_err();
        match &err {
            ConfigError::Invalid { key: k, .. } => assert_eq!(k, key, "{err}"),
            other => panic!("expected Invalid for {key}, got {other:?}"),
        }
        assert!(err.to_string().starts_with(&format!("{key}:")), "{err}");
    }

    // Unknown keys (including a PIN: PINs only come from files).
    for (text, key) in [
        (format!("{MINIMAL_NODE}pin = \"1234\"\n"), "pin"),
        (format!("rpc_port = 1\n{MINIMAL_NODE}"), "rpc_port"),
    ] {
        write_node_toml(dir.path(), &text);
        let err = NodeConfig::load(&cli(&["--datadir", datadir])).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
        assert!(err.to_string().contains(key), "{err}");
        assert!(err.to_string().contains("node.toml"), "{err}");
    }
}

#[test]
fn node_load_federation_checks_member() {
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    clear_env();
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().to_str().unwrap();
    std::fs::write(dir.path().join("federation.toml"), federation_toml(3, 2)).unwrap();
    write_node_toml(dir.path(), MINIMAL_NODE);
    let config = NodeConfig::load(&cli(&["--datadir", datadir])).unwrap();
    assert_eq!(config.load_federation().unwrap().members.len(), 3);

    write_node_toml(dir.path(), &MINIMAL_NODE.replace("member0", "stranger"));
    let config = NodeConfig::load(&cli(&["--datadir", datadir])).unwrap();
    let err = config.load_federation().unwrap_err();
    assert!(err.to_string().starts_with("member:"), "{err}");
    assert!(err.to_string().contains("stranger"), "{err}");
}

#[test]
fn hsm_section_debug_has_no_secret_fields() {
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    clear_env();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm.pin"), "123456").unwrap();
    write_node_toml(dir.path(), MINIMAL_NODE);
    let config = NodeConfig::load(&cli(&["--datadir", dir.path().to_str().unwrap()])).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("123456"));
    assert!(debug.contains("hsm.pin"));
}

#[test]
fn node_signer_section_defaults_values_round_trip_and_errors_name_the_key() {
    use functionary::config::SignerMode;
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    clear_env();
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().to_str().unwrap();
    let canonical = std::fs::canonicalize(dir.path()).unwrap();

    // Defaults: the secure mode, the socket in the data dir, only the signer's own uid, 30 s to connect.
    write_node_toml(dir.path(), MINIMAL_NODE);
    let config = NodeConfig::load(&cli(&["--datadir", datadir])).unwrap();
    assert_eq!(config.signer.mode, SignerMode::Socket);
    assert_eq!(config.signer.socket, canonical.join("signer.sock"));
    assert_eq!(config.signer.allowed_uid, None);
    assert_eq!(config.signer.connect_timeout, Duration::from_secs(30));

    // Values: relative socket against the data dir, absolute as written.
    write_node_toml(
        dir.path(),
        &format!(
            "{MINIMAL_NODE}[signer]\nmode = \"embedded\"\nsocket = \"run/s.sock\"\nallowed_uid = 1001\n\
             connect_timeout = \"5s\"\n"
        ),
    );
    let config = NodeConfig::load(&cli(&["--datadir", datadir])).unwrap();
    assert_eq!(config.signer.mode, SignerMode::Embedded);
    assert_eq!(config.signer.socket, canonical.join("run/s.sock"));
    assert_eq!(config.signer.allowed_uid, Some(1001));
    assert_eq!(config.signer.connect_timeout, Duration::from_secs(5));
    let other = tempfile::tempdir().unwrap();
    write_node_toml(other.path(), &config.to_toml_string());
    let reloaded = NodeConfig::load(&cli(&["--datadir", other.path().to_str().unwrap()])).unwrap();
    assert_eq!(reloaded.signer, config.signer);

    write_node_toml(
        dir.path(),
        &format!("{MINIMAL_NODE}[signer]\nsocket = \"/run/functionary-signer/signer.sock\"\n"),
    );
    let config = NodeConfig::load(&cli(&["--datadir", datadir])).unwrap();
    assert_eq!(
        config.signer.socket,
        PathBuf::from("/run/functionary-signer/signer.sock")
    );

    let long = format!("/{}", "x".repeat(120));
    for (section, key) in [
        ("mode = \"remote\"", "signer.mode"),
        ("socket = \"\"", "signer.socket"),
        (&*format!("socket = \"{long}\""), "signer.socket"),
        ("allowed_uid = -1", "signer.allowed_uid"),
        ("allowed_uid = 4294967296", "signer.allowed_uid"),
        ("connect_timeout = \"soon\"", "signer.connect_timeout"),
        ("connect_timeout = \"0s\"", "signer.connect_timeout"),
    ] {
        write_node_toml(dir.path(), &format!("{MINIMAL_NODE}[signer]\n{section}\n"));
        let err = NodeConfig::load(&cli(&["--datadir", datadir])).unwrap_err();
        match &err {
            ConfigError::Invalid { key: k, .. } => assert_eq!(k, key, "{err}"),
            other => panic!("expected Invalid for {key} ({section}), got {other:?}"),
        }
        assert!(err.to_string().starts_with(&format!("{key}:")), "{err}");
    }
    // Unknown keys in [signer] are parse errors naming the key (a PIN never belongs here either).
    write_node_toml(
        dir.path(),
        &format!("{MINIMAL_NODE}[signer]\npin = \"1234\"\n"),
    );
    let err = NodeConfig::load(&cli(&["--datadir", datadir])).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
    assert!(err.to_string().contains("pin"), "{err}");
}
