//! Ceremony step 3, on every member's machine: check the assembled config before the daemon may use it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::descriptor::LoadedDescriptor;
use super::files::{read, resolve, sha256_hex, write_atomic};
use super::transcript::{append, NewEntry, TRANSCRIPT_FILE};
use super::CeremonyError;
use crate::config::{FederationConfig, NodeArgs, NodeConfig};

/// Name of the marker file in the data dir: the config hash this member verified.
pub const VERIFIED_FILE: &str = "federation.verified";

/// Inputs of [`run_verify`].
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// The member's data dir.
    pub datadir: PathBuf,
    /// The federation config to verify (default: the `federation` file named by node.toml).
    pub config: Option<PathBuf>,
    /// The config hash agreed out of band.
    pub expect_hash: String,
    /// Every member's descriptor.
    pub descriptors: Vec<PathBuf>,
    /// Transcript to append to (default `<datadir>/ceremony.transcript.jsonl`; relative to the data dir).
    pub transcript: Option<PathBuf>,
}

/// What [`run_verify`] established.
#[derive(Clone, Debug)]
pub struct VerifyOutcome {
    /// This member's name.
    pub member: String,
    /// The verified config hash.
    pub config_hash: String,
    /// The marker written.
    pub marker: PathBuf,
    /// The transcript appended to.
    pub transcript: PathBuf,
}

/// Verifies a federation config for this member: the config hashes to `expect_hash`; every config member has
/// exactly one descriptor, whose proofs verify and whose keys, PeerId and address are the config's; this
/// member's block and peg keys (read from its token) and PeerId (from its identity file) are its entry's. On
/// success writes `<datadir>/federation.verified` (the config hash) and appends a `verify` transcript line.
pub fn run_verify(opts: &VerifyOptions) -> Result<VerifyOutcome, CeremonyError> {
    let node = NodeConfig::load(&NodeArgs::for_datadir(&opts.datadir))?;
    let datadir = node.data_dir.clone();
    let config_path = opts
        .config
        .as_deref()
        .map(|p| resolve(&datadir, p))
        .unwrap_or_else(|| node.federation_file.clone());
    let config_bytes = read(&config_path)?;
    let config = FederationConfig::load(&config_path)?;
    let config_hash = config.config_hash();
    let expected = opts.expect_hash.trim().to_ascii_lowercase();
    if expected != config_hash {
        return Err(CeremonyError::HashMismatch {
            path: config_path,
            expected: opts.expect_hash.trim().to_string(),
            actual: config_hash,
        });
    }

    let descriptors = LoadedDescriptor::load_all(&opts.descriptors)?;
    check_descriptors_match(&config, &descriptors)?;
    check_own_entry(&node, &config)?;

    let marker = datadir.join(VERIFIED_FILE);
    write_atomic(&marker, format!("{config_hash}\n").as_bytes(), 0o644)?;

    let transcript = resolve(
        &datadir,
        opts.transcript
            .as_deref()
            .unwrap_or(Path::new(TRANSCRIPT_FILE)),
    );
    let mut inputs: BTreeMap<String, String> = descriptors
        .iter()
        .map(|d| {
            (
                format!("descriptor:{}", d.descriptor.body.name),
                d.file_hash.clone(),
            )
        })
        .collect();
    inputs.insert("federation_toml".into(), sha256_hex(&config_bytes));
    inputs.insert("expected_hash".into(), expected);
    let mut outputs = BTreeMap::new();
    outputs.insert("verified".to_string(), config_hash.clone());
    append(
        &transcript,
        NewEntry {
            step: "verify",
            who: node.member.clone(),
            inputs,
            outputs,
            details: json!({ "config_file": config_path.display().to_string() }),
        },
    )?;
    tracing::info!(target: "ceremony", member = %node.member, %config_hash, marker = %marker.display(),
        "federation config verified");
    Ok(VerifyOutcome {
        member: node.member,
        config_hash,
        marker,
        transcript,
    })
}

/// Every config member has exactly one descriptor (by name) that says what the config says, and no descriptor
/// is left over. The config must have a peg wallet: a ceremony always assembles one.
pub(crate) fn check_descriptors_match(
    config: &FederationConfig,
    descriptors: &[LoadedDescriptor],
) -> Result<(), CeremonyError> {
    if config.peg_wallet.is_none() {
        return Err(CeremonyError::invalid(
            "config",
            "has no [peg_wallet] section; it was not assembled by `ceremony assemble`",
        ));
    }
    let by_name: HashMap<&str, &LoadedDescriptor> = descriptors
        .iter()
        .map(|d| (d.descriptor.body.name.as_str(), d))
        .collect();
    for member in &config.members {
        let d =
            by_name
                .get(member.name.as_str())
                .ok_or_else(|| CeremonyError::DescriptorMismatch {
                    member: member.name.clone(),
                    message:
                        "no descriptor given for this member (pass every member's --descriptor)"
                            .into(),
                })?;
        d.descriptor.body.check_matches(member).map_err(|message| {
            CeremonyError::DescriptorMismatch {
                member: member.name.clone(),
                message: format!(
                    "the config disagrees with descriptor {}: {message}",
                    d.path.display()
                ),
            }
        })?;
    }
    if let Some(extra) = descriptors
        .iter()
        .find(|d| config.member_by_name(&d.descriptor.body.name).is_none())
    {
        return Err(CeremonyError::DescriptorMismatch {
            member: extra.descriptor.body.name.clone(),
            message: format!(
                "descriptor {} is for a member that is not in the config",
                extra.path.display()
            ),
        });
    }
    Ok(())
}

/// This member's entry holds the keys in its token and the PeerId of its identity file.
fn check_own_entry(node: &NodeConfig, config: &FederationConfig) -> Result<(), CeremonyError> {
    let not_in = |message: String| CeremonyError::NotInConfig {
        member: node.member.clone(),
        message,
    };
    let entry = config.member_by_name(&node.member).ok_or_else(|| {
        not_in("this member (node.toml `member`) is not in the config".to_string())
    })?;
    let pin = hsm::Pin::from_file(&node.hsm.pin_file)?;
    for (label, field, listed) in [
        (
            &node.hsm.key_label,
            "block_pubkey",
            Some(entry.block_pubkey),
        ),
        (&node.hsm.peg_key_label, "peg_pubkey", entry.peg_pubkey),
    ] {
        let cfg = hsm::TokenConfig {
            module_path: node.hsm.module.clone(),
            token_label: node.hsm.token_label.clone(),
            key_label: label.clone(),
        };
        let own = hsm::read_public_key(&cfg, &pin)?;
        if listed != Some(own) {
            return Err(not_in(format!(
                "key {label:?} in token {:?} is {own}, but the config lists {field} {}",
                node.hsm.token_label,
                listed
                    .map(|k| k.to_string())
                    .unwrap_or_else(|| "(none)".into())
            )));
        }
    }
    let own_peer = crate::p2p::load_identity_file(&node.p2p_key_file)?
        .public()
        .to_peer_id();
    if own_peer != entry.peer_id {
        return Err(not_in(format!(
            "the identity in {} is {own_peer}, but the config lists peer_id {}",
            node.p2p_key_file.display(),
            entry.peer_id
        )));
    }
    Ok(())
}

/// Refuses unless `<datadir>/federation.verified` holds the hash of `config`: the daemon calls this before it
/// uses a federation config, so a member only ever runs a config it verified with `ceremony verify`.
pub fn require_verified(datadir: &Path, config: &FederationConfig) -> Result<(), CeremonyError> {
    let marker = datadir.join(VERIFIED_FILE);
    let config_hash = config.config_hash();
    let verified = match std::fs::read_to_string(&marker) {
        Ok(text) => text.trim().to_ascii_lowercase(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CeremonyError::NotVerified {
                datadir: datadir.to_path_buf(),
                marker,
                config_hash,
            })
        }
        Err(source) => {
            return Err(CeremonyError::Io {
                path: marker,
                source,
            })
        }
    };
    if verified != config_hash {
        return Err(CeremonyError::VerifiedMismatch {
            datadir: datadir.to_path_buf(),
            marker,
            verified,
            config_hash,
        });
    }
    Ok(())
}
