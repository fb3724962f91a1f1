//! `functionary-cli ceremony <step>`: the command-line face of the ceremony. Relative paths given on the command
//! line are taken relative to the current directory. Each step prints JSON. `functionary-cli ceremony help
//! [STEP]` prints the flags.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;

use super::{
    run_assemble, run_audit, run_member, run_verify, AssembleOptions, AssembleParams, AuditOptions,
    MemberOptions, VerifyOptions,
};

/// `functionary-cli ceremony ...`
#[derive(Debug, Parser)]
#[command(
    name = "functionary-cli ceremony",
    bin_name = "functionary-cli ceremony",
    no_binary_name = true,
    about = "Key ceremony: member → assemble → verify (each member) → audit"
)]
pub struct CeremonyArgs {
    /// The step to run.
    #[command(subcommand)]
    pub step: Step,
}

/// The ceremony steps.
#[derive(Debug, Subcommand)]
pub enum Step {
    /// On a member's machine: initialise its token if absent, generate its block-signing and peg-wallet keys
    /// if absent, create its p2p identity if absent, write its signed descriptor.
    Member {
        /// The member's data dir (holds node.toml); default: the global --datadir.
        #[arg(long)]
        datadir: Option<PathBuf>,
        /// The TCP address the other members dial, e.g. /ip4/10.0.0.1/tcp/7101.
        #[arg(long)]
        address: String,
        /// File holding the SO PIN, needed only when the token does not exist yet.
        #[arg(long, value_name = "FILE")]
        so_pin_file: Option<PathBuf>,
        /// Where to write the descriptor (default DATADIR/member-descriptor.json).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Transcript to append to (default DATADIR/ceremony.transcript.jsonl).
        #[arg(long, value_name = "FILE")]
        transcript: Option<PathBuf>,
    },
    /// At the coordinator: check every descriptor and write the federation config; prints its hash.
    Assemble {
        /// A member descriptor (repeat for every member).
        #[arg(long = "descriptor", value_name = "FILE", required = true, num_args = 1..)]
        descriptors: Vec<PathBuf>,
        /// Signatures needed for a block and for the peg wallet (m).
        #[arg(long)]
        threshold: usize,
        /// Block interval, e.g. 120s.
        #[arg(long)]
        interval: String,
        /// Optional round timeout, e.g. 5s (default: interval / 4 clamped to [20ms, 10s]).
        #[arg(long)]
        round_timeout: Option<String>,
        /// An emergency backup key, hex compressed (repeat, or give several).
        #[arg(long = "emergency-key", value_name = "HEX", required = true, num_args = 1..)]
        emergency_keys: Vec<String>,
        /// Emergency signatures needed (k).
        #[arg(long)]
        emergency_threshold: usize,
        /// Relative timelock of the emergency path, in blocks.
        #[arg(long, value_name = "BLOCKS")]
        emergency_timelock: u32,
        /// Genesis time, Unix seconds.
        #[arg(long, value_name = "UNIX_SECONDS")]
        genesis_time: u32,
        /// Development/test chains only: policy-asset satoshis the genesis block pays to --initial-coins-script.
        #[arg(long, value_name = "SAT", requires = "initial_coins_script")]
        initial_coins_amount: Option<u64>,
        /// The hex scriptPubKey the initial coins are paid to.
        #[arg(long, value_name = "HEX", requires = "initial_coins_amount")]
        initial_coins_script: Option<String>,
        /// Chain name.
        #[arg(long)]
        chain_name: String,
        /// Where to write federation.toml.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Transcript to append to (default: ceremony.transcript.jsonl next to --out).
        #[arg(long, value_name = "FILE")]
        transcript: Option<PathBuf>,
        /// Who assembles (recorded in the transcript).
        #[arg(long, default_value = "coordinator")]
        who: String,
    },
    /// On a member's machine: verify the config (own keys in it, every proof valid, hash as agreed) and allow the
    /// daemon to run it.
    Verify {
        /// The member's data dir; default: the global --datadir.
        #[arg(long)]
        datadir: Option<PathBuf>,
        /// The federation config (default: the `federation` file of node.toml).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The config hash agreed out of band.
        #[arg(long, value_name = "HASH")]
        expect_hash: String,
        /// Every member's descriptor.
        #[arg(long = "descriptor", value_name = "FILE", required = true, num_args = 1..)]
        descriptors: Vec<PathBuf>,
        /// Transcript to append to (default DATADIR/ceremony.transcript.jsonl).
        #[arg(long, value_name = "FILE")]
        transcript: Option<PathBuf>,
    },
    /// Anyone: re-check the whole ceremony from the transcripts, the descriptors and the config.
    Audit {
        /// A transcript file (repeat for each machine's file).
        #[arg(long = "transcript", value_name = "FILE", required = true, num_args = 1..)]
        transcripts: Vec<PathBuf>,
        /// The federation config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Every member's descriptor.
        #[arg(long = "descriptor", value_name = "FILE", required = true, num_args = 1..)]
        descriptors: Vec<PathBuf>,
    },
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

fn absolute_opt(path: Option<PathBuf>) -> anyhow::Result<Option<PathBuf>> {
    path.map(|p| absolute(&p)).transpose()
}

fn absolute_all(paths: Vec<PathBuf>) -> anyhow::Result<Vec<PathBuf>> {
    paths.iter().map(|p| absolute(p)).collect()
}

fn datadir_of(own: Option<PathBuf>, global: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = own
        .or_else(|| global.map(Path::to_path_buf))
        .context("this step needs --datadir (the member's data dir holding node.toml)")?;
    absolute(&dir)
}

/// Parses `args` (everything after `ceremony`) and runs the step. `global_datadir` is `functionary-cli
/// --datadir`.
pub fn run(global_datadir: Option<&Path>, args: &[String]) -> anyhow::Result<serde_json::Value> {
    let parsed = match CeremonyArgs::try_parse_from(args) {
        Ok(parsed) => parsed,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            return Ok(serde_json::Value::String(e.render().to_string()));
        }
        Err(e) => {
            let rendered = e.render().to_string();
            let message = rendered.strip_prefix("error: ").unwrap_or(&rendered);
            anyhow::bail!("{}", message.trim_end());
        }
    };
    match parsed.step {
        Step::Member {
            datadir,
            address,
            so_pin_file,
            out,
            transcript,
        } => {
            let outcome = run_member(&MemberOptions {
                datadir: datadir_of(datadir, global_datadir)?,
                address,
                so_pin_file: absolute_opt(so_pin_file)?,
                out: absolute_opt(out)?,
                transcript: absolute_opt(transcript)?,
            })?;
            let body = &outcome.descriptor.body;
            Ok(json!({
                "member": body.name,
                "block_pubkey": body.block_pubkey.to_string(),
                "peg_pubkey": body.peg_pubkey.to_string(),
                "peer_id": body.peer_id.to_string(),
                "address": body.address.to_string(),
                "descriptor": outcome.descriptor_file,
                "descriptor_sha256": outcome.descriptor_hash,
                "token_created": outcome.token_created,
                "block_key_created": outcome.block_key_created,
                "peg_key_created": outcome.peg_key_created,
                "p2p_identity_created": outcome.p2p_identity_created,
                "transcript": outcome.transcript,
            }))
        }
        Step::Assemble {
            descriptors,
            threshold,
            interval,
            round_timeout,
            emergency_keys,
            emergency_threshold,
            emergency_timelock,
            genesis_time,
            initial_coins_amount,
            initial_coins_script,
            chain_name,
            out,
            transcript,
            who,
        } => {
            let outcome = run_assemble(&AssembleOptions {
                descriptors: absolute_all(descriptors)?,
                params: AssembleParams {
                    chain_name,
                    threshold,
                    block_interval: interval,
                    round_timeout,
                    genesis_time,
                    emergency_keys,
                    emergency_threshold,
                    csv_timelock: emergency_timelock,
                    initial_coins_amount,
                    initial_coins_script,
                },
                out: absolute(&out)?,
                transcript: absolute_opt(transcript)?,
                who,
            })?;
            let genesis_hash = outcome
                .config
                .params()
                .map(|p| p.genesis_hash().to_string())
                .unwrap_or_default();
            Ok(json!({
                "config_hash": outcome.config_hash,
                "genesis_hash": genesis_hash,
                "file": outcome.out,
                "file_sha256": outcome.file_hash,
                "members": outcome.config.members.len(),
                "threshold": outcome.config.threshold,
                "transcript": outcome.transcript,
            }))
        }
        Step::Verify {
            datadir,
            config,
            expect_hash,
            descriptors,
            transcript,
        } => {
            let outcome = run_verify(&VerifyOptions {
                datadir: datadir_of(datadir, global_datadir)?,
                config: absolute_opt(config)?,
                expect_hash,
                descriptors: absolute_all(descriptors)?,
                transcript: absolute_opt(transcript)?,
            })?;
            Ok(json!({
                "member": outcome.member,
                "config_hash": outcome.config_hash,
                "verified_file": outcome.marker,
                "transcript": outcome.transcript,
            }))
        }
        Step::Audit {
            transcripts,
            config,
            descriptors,
        } => {
            let report = run_audit(&AuditOptions {
                transcripts: absolute_all(transcripts)?,
                config: absolute(&config)?,
                descriptors: absolute_all(descriptors)?,
            })?;
            Ok(serde_json::to_value(report)?)
        }
    }
}
