//! Ceremony step 2, at the coordinator: the federation config from every member's descriptor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::descriptor::LoadedDescriptor;
use super::files::{sha256_hex, write_atomic};
use super::transcript::{append, NewEntry, TRANSCRIPT_FILE};
use super::CeremonyError;
use crate::config::{parse_duration, FederationConfig};

/// The federation-wide values the coordinator adds to the descriptors. Recorded as is in the transcript so an
/// auditor can redo the assembly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssembleParams {
    /// Chain name.
    pub chain_name: String,
    /// Signatures needed for a block and for the peg wallet's normal path (m).
    pub threshold: usize,
    /// Block interval, e.g. `"120s"`.
    pub block_interval: String,
    /// Optional round timeout, e.g. `"5s"` (default: a quarter of the interval, clamped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_timeout: Option<String>,
    /// Genesis time, Unix seconds.
    pub genesis_time: u32,
    /// Emergency backup keys (hex, compressed).
    pub emergency_keys: Vec<String>,
    /// Emergency signatures needed (k).
    pub emergency_threshold: usize,
    /// Relative timelock of the emergency path, in blocks.
    pub csv_timelock: u32,
    /// Policy-asset satoshis the genesis block creates (development and test chains; see `[initial_coins]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_coins_amount: Option<u64>,
    /// Hex scriptPubKey the initial coins are paid to (required with `initial_coins_amount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_coins_script: Option<String>,
}

/// Builds and validates the federation config: members in the order of `descriptors`, each with its block and
/// peg key, PeerId and address; the peg wallet from `params`. The descriptors must already be loaded (proofs
/// checked) and distinct ([`LoadedDescriptor::load_all`]). Every value goes through the same validation as
/// `federation.toml` at load time, and the consensus parameters are checked too (threshold rules).
pub fn assemble_config(
    descriptors: &[LoadedDescriptor],
    params: &AssembleParams,
) -> Result<FederationConfig, CeremonyError> {
    if descriptors.is_empty() {
        return Err(CeremonyError::invalid(
            "--descriptor",
            "no member descriptors given",
        ));
    }
    super::descriptor::check_distinct(descriptors)?;
    if params.threshold == 0 || params.threshold > descriptors.len() {
        return Err(CeremonyError::invalid(
            "--threshold",
            format!(
                "{} must be between 1 and the number of members ({})",
                params.threshold,
                descriptors.len()
            ),
        ));
    }
    parse_duration(&params.block_interval).map_err(|e| CeremonyError::invalid("--interval", e))?;

    let mut table = toml::Table::new();
    table.insert("chain_name".into(), params.chain_name.clone().into());
    table.insert(
        "threshold".into(),
        toml::Value::Integer(to_i64(params.threshold)),
    );
    table.insert(
        "block_interval".into(),
        params.block_interval.clone().into(),
    );
    if let Some(timeout) = &params.round_timeout {
        table.insert("round_timeout".into(), timeout.clone().into());
    }
    table.insert(
        "genesis_time".into(),
        toml::Value::Integer(i64::from(params.genesis_time)),
    );
    let mut peg = toml::Table::new();
    peg.insert(
        "emergency_keys".into(),
        toml::Value::Array(
            params
                .emergency_keys
                .iter()
                .map(|k| toml::Value::String(k.clone()))
                .collect(),
        ),
    );
    peg.insert(
        "emergency_threshold".into(),
        toml::Value::Integer(to_i64(params.emergency_threshold)),
    );
    peg.insert(
        "csv_timelock".into(),
        toml::Value::Integer(i64::from(params.csv_timelock)),
    );
    table.insert("peg_wallet".into(), toml::Value::Table(peg));
    match (params.initial_coins_amount, &params.initial_coins_script) {
        (None, None) => {}
        (Some(amount), Some(script)) => {
            let mut coins = toml::Table::new();
            coins.insert(
                "amount".into(),
                toml::Value::Integer(i64::try_from(amount).unwrap_or(i64::MAX)),
            );
            coins.insert("script_pubkey".into(), script.clone().into());
            table.insert("initial_coins".into(), toml::Value::Table(coins));
        }
        _ => {
            return Err(CeremonyError::invalid(
                "--initial-coins-amount",
                "--initial-coins-amount and --initial-coins-script go together",
            ))
        }
    }
    let members = descriptors
        .iter()
        .map(|d| {
            let b = &d.descriptor.body;
            let mut t = toml::Table::new();
            t.insert("name".into(), b.name.clone().into());
            t.insert("block_pubkey".into(), b.block_pubkey.to_string().into());
            t.insert("peg_pubkey".into(), b.peg_pubkey.to_string().into());
            t.insert("peer_id".into(), b.peer_id.to_string().into());
            t.insert("address".into(), b.address.to_string().into());
            toml::Value::Table(t)
        })
        .collect();
    table.insert("members".into(), toml::Value::Array(members));

    let config = FederationConfig::from_toml_str(&table.to_string())?;
    config
        .params()
        .map_err(|e| CeremonyError::invalid("--threshold", e.to_string()))?;
    Ok(config)
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Inputs of [`run_assemble`].
#[derive(Clone, Debug)]
pub struct AssembleOptions {
    /// The member descriptor files.
    pub descriptors: Vec<PathBuf>,
    /// Federation-wide values.
    pub params: AssembleParams,
    /// Where to write `federation.toml`.
    pub out: PathBuf,
    /// Transcript to append to (default: `ceremony.transcript.jsonl` next to `out`).
    pub transcript: Option<PathBuf>,
    /// Who assembles (recorded in the transcript).
    pub who: String,
}

/// What [`run_assemble`] produced.
#[derive(Clone, Debug)]
pub struct AssembleOutcome {
    /// The config written.
    pub config: FederationConfig,
    /// Its canonical hash: every member compares it out of band.
    pub config_hash: String,
    /// The file written.
    pub out: PathBuf,
    /// SHA-256 of the file's bytes.
    pub file_hash: String,
    /// The transcript appended to.
    pub transcript: PathBuf,
}

/// Checks every descriptor (proofs, duplicates), assembles and validates the config, writes it to `opts.out`
/// and appends an `assemble` line to the transcript.
pub fn run_assemble(opts: &AssembleOptions) -> Result<AssembleOutcome, CeremonyError> {
    let descriptors = LoadedDescriptor::load_all(&opts.descriptors)?;
    let config = assemble_config(&descriptors, &opts.params)?;
    let config_hash = config.config_hash();
    let text = format!(
        "# Federation config assembled by `functionary-cli ceremony assemble` from {} member descriptors.\n\
         # Config hash (compare out of band, then run `ceremony verify --expect-hash`): {config_hash}\n\n{}",
        descriptors.len(),
        config.to_toml_string()
    );
    write_atomic(&opts.out, text.as_bytes(), 0o644)?;
    let file_hash = sha256_hex(text.as_bytes());

    let transcript = opts.transcript.clone().unwrap_or_else(|| {
        opts.out
            .parent()
            .unwrap_or(Path::new("."))
            .join(TRANSCRIPT_FILE)
    });
    let inputs: BTreeMap<String, String> = descriptors
        .iter()
        .map(|d| {
            (
                format!("descriptor:{}", d.descriptor.body.name),
                d.file_hash.clone(),
            )
        })
        .collect();
    let mut outputs = BTreeMap::new();
    outputs.insert("federation_toml".to_string(), file_hash.clone());
    outputs.insert("config_hash".to_string(), config_hash.clone());
    let details = serde_json::to_value(&opts.params).map_err(|e| {
        CeremonyError::invalid("transcript", format!("cannot encode parameters: {e}"))
    })?;
    append(
        &transcript,
        NewEntry {
            step: "assemble",
            who: opts.who.clone(),
            inputs,
            outputs,
            details,
        },
    )?;
    tracing::info!(target: "ceremony", out = %opts.out.display(), %config_hash, members = descriptors.len(),
        "federation config assembled");
    Ok(AssembleOutcome {
        config,
        config_hash,
        out: opts.out.clone(),
        file_hash,
        transcript,
    })
}

/// Fresh random secp256k1 public keys whose secret halves are dropped at once: an emergency path nobody can
/// use. For devnets and tests only; a real federation's emergency keys come from their holders.
pub fn throwaway_emergency_keys(count: usize) -> Vec<secp256k1::PublicKey> {
    (0..count)
        .map(|_| secp256k1::generate_keypair(&mut rand::thread_rng()).1)
        .collect()
}
