//! The example configs and the systemd unit shipped in deploy/ stay true: the examples load with the real config
//! code, and the unit starts the daemon the way the README describes.

use std::path::PathBuf;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

#[test]
fn example_federation_config_loads_and_makes_valid_params() {
    let config =
        functionary::config::FederationConfig::load(&deploy_dir().join("examples/federation.toml"))
            .expect("deploy/examples/federation.toml must load");
    assert_eq!(config.members.len(), 4);
    let params = config.params().expect("example params are valid");
    assert_eq!(params.threshold(), 3);
    assert_eq!(config.config_hash().len(), 64);
}

#[test]
fn example_node_config_loads() {
    let datadir = tempfile::tempdir().unwrap();
    std::fs::copy(
        deploy_dir().join("examples/node.toml"),
        datadir.path().join("node.toml"),
    )
    .unwrap();
    let node = functionary::config::NodeConfig::load(&functionary::config::NodeArgs::for_datadir(
        datadir.path(),
    ))
    .expect("deploy/examples/node.toml must load");
    assert_eq!(node.member, "alice");
    assert_eq!(node.hsm.token_label, "alice");
    assert!(node.hsm.pin_file.starts_with(node.data_dir.as_path()));
}

#[test]
fn systemd_unit_runs_the_daemon_with_least_privilege() {
    let unit = std::fs::read_to_string(deploy_dir().join("systemd/functionaryd.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/functionaryd --datadir /var/lib/functionary"));
    for hardening in [
        "User=functionary",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(hardening), "unit lacks {hardening:?}");
    }
    assert!(
        !unit.to_lowercase().contains("pin="),
        "a PIN must never be in the unit"
    );
}
