//! The federation config's ceremony-era fields: `[peg_wallet]`, `[[members]] peg_pubkey` and `round_timeout`;
//! old configs without them still load and hash exactly as before.

use std::time::Duration;

use functionary::config::{FederationConfig, MAX_DEFAULT_ROUND_TIMEOUT, MIN_DEFAULT_ROUND_TIMEOUT};
use sha2::{Digest, Sha256};

fn key(i: u8) -> secp256k1::PublicKey {
    let secret = secp256k1::SecretKey::from_slice(&[i; 32]).unwrap();
    secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &secret)
}

fn peer_id(i: u8) -> libp2p::PeerId {
    libp2p::identity::Keypair::ed25519_from_bytes([i; 32])
        .unwrap()
        .public()
        .to_peer_id()
}

/// A config in the format written before the peg wallet and round timeout existed.
fn old_format(n: u8) -> String {
    let mut s =
        "chain_name = \"old\"\nthreshold = 2\nblock_interval = \"2s\"\ngenesis_time = 1700000000\n"
            .to_string();
    for i in 1..=n {
        s.push_str(&format!(
            "\n[[members]]\nname = \"m{i}\"\nblock_pubkey = \"{}\"\npeer_id = \"{}\"\naddress = \"/ip4/127.0.0.1/tcp/{}\"\n",
            key(i),
            peer_id(i),
            7100 + u16::from(i)
        ));
    }
    s
}

/// The same members with peg keys and a `[peg_wallet]` section.
fn with_peg(n: u8) -> String {
    let mut s =
        "chain_name = \"old\"\nthreshold = 2\nblock_interval = \"2s\"\ngenesis_time = 1700000000\n"
            .to_string();
    s.push_str(&format!(
        "\n[peg_wallet]\nemergency_keys = [\"{}\", \"{}\"]\nemergency_threshold = 1\ncsv_timelock = 4032\n",
        key(101),
        key(102)
    ));
    for i in 1..=n {
        s.push_str(&format!(
            "\n[[members]]\nname = \"m{i}\"\nblock_pubkey = \"{}\"\npeg_pubkey = \"{}\"\npeer_id = \"{}\"\naddress = \"/ip4/127.0.0.1/tcp/{}\"\n",
            key(i),
            key(50 + i),
            peer_id(i),
            7100 + u16::from(i)
        ));
    }
    s
}

/// The v1 canonical hash, written out independently of the crate: an old config must still hash to it.
fn v1_hash(config: &FederationConfig) -> String {
    fn lp(h: &mut Sha256, b: &[u8]) {
        h.update((b.len() as u32).to_le_bytes());
        h.update(b);
    }
    let mut h = Sha256::new();
    lp(&mut h, b"functionary/federation-config/v1");
    lp(&mut h, config.chain_name.as_bytes());
    h.update((config.threshold as u64).to_le_bytes());
    h.update(config.block_interval.as_secs().to_le_bytes());
    h.update(config.block_interval.subsec_nanos().to_le_bytes());
    h.update(config.genesis_time.to_le_bytes());
    let mut members: Vec<_> = config.members.iter().collect();
    members.sort_by_key(|m| m.block_pubkey.serialize());
    h.update((members.len() as u32).to_le_bytes());
    for m in members {
        h.update(m.block_pubkey.serialize());
        lp(&mut h, m.name.as_bytes());
        lp(&mut h, &m.peer_id.to_bytes());
        lp(&mut h, &m.address.to_vec());
    }
    hex::encode(h.finalize())
}

fn parse(text: &str) -> FederationConfig {
    FederationConfig::from_toml_str(text).unwrap_or_else(|e| panic!("refused: {e}\n{text}"))
}

fn refused(text: &str, key: &str) -> String {
    let err = FederationConfig::from_toml_str(text)
        .expect_err("must be refused")
        .to_string();
    assert!(err.contains(key), "error does not name {key}: {err}");
    err
}

#[test]
fn old_format_loads_and_its_hash_is_unchanged() {
    let config = parse(&old_format(3));
    assert!(config.peg_wallet.is_none());
    assert!(config.members.iter().all(|m| m.peg_pubkey.is_none()));
    assert_eq!(config.round_timeout_override, None);
    assert_eq!(config.round_timeout(), Duration::from_millis(500));
    assert_eq!(config.config_hash(), v1_hash(&config));
    // The shipped example (old format) too.
    let example = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/examples/federation.toml"),
    )
    .unwrap();
    let example = parse(&example);
    example.params().unwrap();
    if example.peg_wallet.is_none() {
        assert_eq!(example.config_hash(), v1_hash(&example));
    }
}

#[test]
fn peg_wallet_loads_round_trips_and_changes_the_hash() {
    let config = parse(&with_peg(3));
    let peg = config.peg_wallet.as_ref().unwrap();
    assert_eq!(peg.emergency_keys, vec![key(101), key(102)]);
    assert_eq!(peg.emergency_threshold, 1);
    assert_eq!(peg.csv_timelock, 4032);
    assert_eq!(config.members[0].peg_pubkey, Some(key(51)));
    assert_eq!(parse(&config.to_toml_string()), config);

    let base = config.config_hash();
    assert_ne!(base, parse(&old_format(3)).config_hash());
    // Emergency keys are a set: their order does not matter; everything else does.
    let swapped = with_peg(3).replace(
        &format!("[\"{}\", \"{}\"]", key(101), key(102)),
        &format!("[\"{}\", \"{}\"]", key(102), key(101)),
    );
    assert_eq!(parse(&swapped).config_hash(), base);
    for (what, variant) in [
        (
            "timelock",
            with_peg(3).replace("csv_timelock = 4032", "csv_timelock = 4033"),
        ),
        (
            "emergency threshold",
            with_peg(3).replace("emergency_threshold = 1", "emergency_threshold = 2"),
        ),
        (
            "emergency key",
            with_peg(3).replace(&key(102).to_string(), &key(103).to_string()),
        ),
        (
            "peg key",
            with_peg(3).replace(&key(52).to_string(), &key(60).to_string()),
        ),
    ] {
        assert_ne!(
            parse(&variant).config_hash(),
            base,
            "{what} change did not change the hash"
        );
    }
}

#[test]
fn peg_wallet_errors_name_the_key() {
    let text = with_peg(3);
    // A member without its peg key.
    let line = format!("peg_pubkey = \"{}\"\n", key(52));
    refused(&text.replace(&line, ""), "members[1].peg_pubkey");
    // Peg keys without the section.
    let no_section = text.replace(
        &format!(
            "\n[peg_wallet]\nemergency_keys = [\"{}\", \"{}\"]\nemergency_threshold = 1\ncsv_timelock = 4032\n",
            key(101),
            key(102)
        ),
        "",
    );
    refused(&no_section, "members[0].peg_pubkey");
    // A peg key reused as another member's block key, or twice.
    refused(
        &text.replace(&key(52).to_string(), &key(1).to_string()),
        "peg_pubkey",
    );
    refused(
        &text.replace(&key(53).to_string(), &key(52).to_string()),
        "members[2].peg_pubkey",
    );
    refused(
        &text.replace(&key(52).to_string(), "02zz"),
        "members[1].peg_pubkey",
    );
    // Emergency keys.
    refused(
        &text.replace(&key(102).to_string(), &key(101).to_string()),
        "peg_wallet.emergency_keys[1]",
    );
    refused(
        &text.replace(&key(102).to_string(), &key(2).to_string()),
        "peg_wallet.emergency_keys[1]",
    );
    refused(
        &text.replace(&key(102).to_string(), "03abcd"),
        "peg_wallet.emergency_keys[1]",
    );
    refused(
        &text.replace(&format!("[\"{}\", \"{}\"]", key(101), key(102)), "[]"),
        "peg_wallet.emergency_keys",
    );
    refused(
        &text.replace("emergency_threshold = 1", "emergency_threshold = 3"),
        "peg_wallet.emergency_threshold",
    );
    refused(
        &text.replace("emergency_threshold = 1", "emergency_threshold = 0"),
        "peg_wallet.emergency_threshold",
    );
    refused(
        &text.replace("emergency_threshold = 1\n", ""),
        "peg_wallet.emergency_threshold",
    );
    refused(
        &text.replace("csv_timelock = 4032", "csv_timelock = 0"),
        "peg_wallet.csv_timelock",
    );
    refused(
        &text.replace("csv_timelock = 4032", "csv_timelock = 65536"),
        "peg_wallet.csv_timelock",
    );
    refused(
        &text.replace("csv_timelock = 4032", "csv_timelock = 4032\nsurprise = 1"),
        "surprise",
    );
}

#[test]
fn round_timeout_default_explicit_and_limits() {
    let at = |interval: &str| {
        parse(&old_format(3).replace(
            "block_interval = \"2s\"",
            &format!("block_interval = \"{interval}\""),
        ))
        .round_timeout()
    };
    assert_eq!(at("2s"), Duration::from_millis(500));
    assert_eq!(at("100ms"), Duration::from_millis(25));
    assert_eq!(at("120s"), MAX_DEFAULT_ROUND_TIMEOUT);
    assert!(MIN_DEFAULT_ROUND_TIMEOUT <= at("100ms"));

    let explicit = |value: &str| {
        old_format(3).replace(
            "genesis_time",
            &format!("round_timeout = \"{value}\"\ngenesis_time"),
        )
    };
    let base = parse(&old_format(3));
    let custom = parse(&explicit("300ms"));
    assert_eq!(custom.round_timeout(), Duration::from_millis(300));
    assert_ne!(custom.config_hash(), base.config_hash());
    assert_eq!(parse(&custom.to_toml_string()), custom);
    // Writing the default explicitly is the same config.
    let same = parse(&explicit("500ms"));
    assert_eq!(same, base);
    assert_eq!(same.config_hash(), base.config_hash());

    refused(&explicit("2s"), "round_timeout");
    refused(&explicit("3s"), "round_timeout");
    refused(&explicit("0s"), "round_timeout");
    refused(&explicit("soon"), "round_timeout");
}
