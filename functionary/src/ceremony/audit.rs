//! Re-checking a ceremony from its transcript(s), the descriptors and the final config, from scratch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use super::assemble::{assemble_config, AssembleParams};
use super::descriptor::LoadedDescriptor;
use super::files::{read, sha256_hex};
use super::transcript::{read as read_transcript, TranscriptEntry};
use super::verify::check_descriptors_match;
use super::CeremonyError;
use crate::config::FederationConfig;

/// Inputs of [`run_audit`].
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// Transcript files (one per machine, or one shared file).
    pub transcripts: Vec<PathBuf>,
    /// The federation config the ceremony produced.
    pub config: PathBuf,
    /// Every member's descriptor.
    pub descriptors: Vec<PathBuf>,
}

/// What the audit checked.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AuditReport {
    /// The config's canonical hash.
    pub config_hash: String,
    /// Transcript lines read.
    pub entries: usize,
    /// Members of the config (each with a checked descriptor, a `member` step and a `verify` step).
    pub members: Vec<String>,
    /// Lines about earlier attempts (a descriptor re-made, a config re-assembled) that the final state replaced.
    pub superseded: usize,
}

/// Re-checks the ceremony: every descriptor's proofs and distinctness; every transcript file's form and hash
/// chain; that each member's `member` step produced exactly its given descriptor file; that an `assemble` step
/// took exactly these descriptor files, produced exactly this config file, and that redoing the assembly from
/// the descriptors and its recorded parameters gives the same config hash; and that every member ran `verify`
/// on this config hash.
pub fn run_audit(opts: &AuditOptions) -> Result<AuditReport, CeremonyError> {
    if opts.transcripts.is_empty() {
        return Err(CeremonyError::invalid(
            "--transcript",
            "no transcript given",
        ));
    }
    let descriptors = LoadedDescriptor::load_all(&opts.descriptors)?;
    let config_bytes = read(&opts.config)?;
    let config_file_hash = sha256_hex(&config_bytes);
    let config = FederationConfig::load(&opts.config)?;
    let config_hash = config.config_hash();
    check_descriptors_match(&config, &descriptors)?;
    let by_name: HashMap<&str, &LoadedDescriptor> = descriptors
        .iter()
        .map(|d| (d.descriptor.body.name.as_str(), d))
        .collect();
    let descriptor_inputs: BTreeMap<String, String> = descriptors
        .iter()
        .map(|d| {
            (
                format!("descriptor:{}", d.descriptor.body.name),
                d.file_hash.clone(),
            )
        })
        .collect();

    let mut entries = 0usize;
    let mut superseded = 0usize;
    let mut made_descriptor = BTreeSet::new();
    let mut verified_by = BTreeSet::new();
    let mut assembled = false;
    for path in &opts.transcripts {
        for (line, entry) in read_transcript(path)? {
            entries += 1;
            let at = format!("{} line {line}", path.display());
            match entry.step.as_str() {
                "member" => {
                    let produced = output(&entry, "descriptor", &at)?;
                    match by_name.get(entry.who.as_str()) {
                        Some(d) if d.file_hash == produced => {
                            made_descriptor.insert(entry.who.clone());
                        }
                        _ => superseded += 1,
                    }
                }
                "assemble" => {
                    if output(&entry, "config_hash", &at)? != config_hash {
                        superseded += 1;
                        continue;
                    }
                    check_assemble(&entry, &at, &descriptors, &descriptor_inputs)?;
                    if output(&entry, "federation_toml", &at)? != config_file_hash {
                        return Err(CeremonyError::Audit(format!(
                            "{at}: the assembled federation.toml hashed to {}, but {} hashes to {config_file_hash} \
                             (the file was changed after assembly)",
                            output(&entry, "federation_toml", &at)?,
                            opts.config.display()
                        )));
                    }
                    assembled = true;
                }
                "verify" => {
                    if output(&entry, "verified", &at)? != config_hash {
                        superseded += 1;
                        continue;
                    }
                    if config.member_by_name(&entry.who).is_none() {
                        return Err(CeremonyError::Audit(format!(
                            "{at}: `{}` verified the config but is not one of its members",
                            entry.who
                        )));
                    }
                    verified_by.insert(entry.who.clone());
                }
                other => {
                    return Err(CeremonyError::Audit(format!(
                        "{at}: unknown step `{other}`"
                    )))
                }
            }
        }
    }

    if !assembled {
        return Err(CeremonyError::Audit(format!(
            "no assemble step produced config {config_hash}"
        )));
    }
    let members: Vec<String> = config.members.iter().map(|m| m.name.clone()).collect();
    let missing = |done: &BTreeSet<String>| {
        members
            .iter()
            .filter(|m| !done.contains(*m))
            .cloned()
            .collect::<Vec<_>>()
    };
    let no_member_step = missing(&made_descriptor);
    if !no_member_step.is_empty() {
        return Err(CeremonyError::Audit(format!(
            "no member step produced the given descriptor of: {} (descriptor changed after the step, or step not in \
             the transcripts)",
            no_member_step.join(", ")
        )));
    }
    let not_verified = missing(&verified_by);
    if !not_verified.is_empty() {
        return Err(CeremonyError::Audit(format!(
            "config {config_hash} was not verified by: {}",
            not_verified.join(", ")
        )));
    }
    Ok(AuditReport {
        config_hash,
        entries,
        members,
        superseded,
    })
}

fn output(entry: &TranscriptEntry, name: &str, at: &str) -> Result<String, CeremonyError> {
    entry.outputs.get(name).cloned().ok_or_else(|| {
        CeremonyError::Audit(format!("{at}: {} step has no output `{name}`", entry.step))
    })
}

/// The assemble step took exactly these descriptors, and redoing it gives the same config hash.
fn check_assemble(
    entry: &TranscriptEntry,
    at: &str,
    descriptors: &[LoadedDescriptor],
    descriptor_inputs: &BTreeMap<String, String>,
) -> Result<(), CeremonyError> {
    if &entry.inputs != descriptor_inputs {
        return Err(CeremonyError::Audit(format!(
            "{at}: the assemble step took descriptors {:?}, but the given descriptor files hash to {:?}",
            entry.inputs, descriptor_inputs
        )));
    }
    let params: AssembleParams = serde_json::from_value(entry.details.clone())
        .map_err(|e| CeremonyError::Audit(format!("{at}: assembly parameters unreadable: {e}")))?;
    // The config's member order is the assembly's descriptor order; the hash does not depend on it.
    let redone = assemble_config(descriptors, &params)?;
    let recorded = output(entry, "config_hash", at)?;
    if redone.config_hash() != recorded {
        return Err(CeremonyError::Audit(format!(
            "{at}: redoing the assembly from the descriptors and the recorded parameters gives config {}, \
             not the recorded {recorded}",
            redone.config_hash()
        )));
    }
    Ok(())
}
