//! Admin commands of `functionary-cli` that act on this member's own files and token rather than on a running
//! daemon: the key-ceremony steps and the config hash. Each prints JSON. PINs are read from files only.
//!
//! | command | what it does |
//! |---|---|
//! | `hsm-init SO_PIN_FILE` | initialises the token named in node.toml (refused if a token with that label exists) with the user PIN from `[hsm] pin_file` |
//! | `hsm-keygen` | generates the block-signing key inside the token (refused if the label exists); prints its public key |
//! | `hsm-pubkey` | prints the public key of the existing block-signing key |
//! | `p2p-keygen` | creates this member's libp2p identity file (refused if it exists); prints its PeerId |
//! | `p2p-peerid` | prints the PeerId of the existing identity file |
//! | `signer-journal-init HEIGHT` | re-creates a LOST signer journal whose first record refuses every height up to HEIGHT (refused if a journal exists) |
//! | `config-hash [FEDERATION_TOML]` | prints the federation config's canonical hash and the genesis hash it implies |
//! | `ceremony member\|assemble\|verify\|audit ...` | the key ceremony ([`crate::ceremony`]); `ceremony help [STEP]` lists the flags |

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::json;

use crate::config::{FederationConfig, NodeArgs, NodeConfig};

/// Names of the admin commands handled here rather than sent over RPC.
pub const COMMANDS: &[&str] = &[
    "ceremony",
    "config-hash",
    "hsm-init",
    "hsm-keygen",
    "hsm-pubkey",
    "p2p-keygen",
    "p2p-peerid",
    "signer-journal-init",
];

/// Runs one admin command and returns its JSON result.
pub fn run(
    datadir: Option<&Path>,
    command: &str,
    args: &[String],
) -> anyhow::Result<serde_json::Value> {
    match command {
        "ceremony" => crate::ceremony::cli::run(datadir, args),
        "config-hash" => config_hash(datadir, args),
        "hsm-init" => {
            let node = node_config(datadir)?;
            let so_pin_file = args
                .first()
                .map(PathBuf::from)
                .context("usage: hsm-init SO_PIN_FILE")?;
            let so_pin_file = resolve(&node.data_dir, &so_pin_file);
            let so_pin = hsm::Pin::from_file(&so_pin_file)?;
            let user_pin = hsm::Pin::from_file(&node.hsm.pin_file)?;
            hsm::init_token(&node.hsm.module, &node.hsm.token_label, &so_pin, &user_pin)?;
            Ok(json!({ "token_label": node.hsm.token_label, "module": node.hsm.module }))
        }
        "hsm-keygen" => {
            let node = node_config(datadir)?;
            let pin = hsm::Pin::from_file(&node.hsm.pin_file)?;
            let key = hsm::generate_key(&token_config(&node), &pin)?;
            Ok(
                json!({ "pubkey": key.to_string(), "token_label": node.hsm.token_label, "key_label": node.hsm.key_label }),
            )
        }
        "hsm-pubkey" => {
            let node = node_config(datadir)?;
            let pin = hsm::Pin::from_file(&node.hsm.pin_file)?;
            let key = hsm::read_public_key(&token_config(&node), &pin)?;
            Ok(
                json!({ "pubkey": key.to_string(), "token_label": node.hsm.token_label, "key_label": node.hsm.key_label }),
            )
        }
        "p2p-keygen" => {
            let node = node_config(datadir)?;
            let keypair = crate::p2p::generate_identity_file(&node.p2p_key_file)?;
            Ok(
                json!({ "peer_id": keypair.public().to_peer_id().to_string(), "file": node.p2p_key_file }),
            )
        }
        "p2p-peerid" => {
            let node = node_config(datadir)?;
            let keypair = crate::p2p::load_identity_file(&node.p2p_key_file)?;
            Ok(
                json!({ "peer_id": keypair.public().to_peer_id().to_string(), "file": node.p2p_key_file }),
            )
        }
        "signer-journal-init" => {
            let node = node_config(datadir)?;
            let height: u32 = args
                .first()
                .context("usage: signer-journal-init HEIGHT")?
                .parse()
                .context("signer-journal-init: HEIGHT must be a block height")?;
            let path = crate::signer_service::load::journal_path(&node);
            // Built complete (header and floor record) under a temporary name and linked into place: a running
            // signer waiting for its journal never sees it empty (it would adopt it without the floor).
            crate::signer_service::load::create_floor_journal(&path, height)?;
            Ok(json!({ "journal": path, "refuses_up_to_height": height }))
        }
        other => bail!(
            "unknown admin command {other:?} (admin commands: {})",
            COMMANDS.join(", ")
        ),
    }
}

fn node_config(datadir: Option<&Path>) -> anyhow::Result<NodeConfig> {
    let datadir = datadir
        .context("this command needs --datadir (the member's data dir holding node.toml)")?;
    Ok(NodeConfig::load(&NodeArgs::for_datadir(datadir))?)
}

fn token_config(node: &NodeConfig) -> hsm::TokenConfig {
    hsm::TokenConfig {
        module_path: node.hsm.module.clone(),
        token_label: node.hsm.token_label.clone(),
        key_label: node.hsm.key_label.clone(),
    }
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn config_hash(datadir: Option<&Path>, args: &[String]) -> anyhow::Result<serde_json::Value> {
    let path = match args.first() {
        Some(p) => PathBuf::from(p),
        None => node_config(datadir)?.federation_file,
    };
    let config = FederationConfig::load(&path)?;
    let params = config
        .params()
        .with_context(|| format!("federation config {}", path.display()))?;
    Ok(json!({
        "file": path,
        "config_hash": config.config_hash(),
        "genesis_hash": params.genesis_hash().to_string(),
        "chain": config.chain_name,
        "threshold": config.threshold,
        "members": config.members.len(),
    }))
}
