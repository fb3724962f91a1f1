//! Loading what both the signer process and an embedded signer need: the federation's consensus view (for the
//! certificate check), the token holding this member's block key, and the journal's place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::config::{FederationConfig, MemberConfig, NodeConfig};
use crate::p2p;

/// File name of the signer journal in the signer's data dir.
pub const JOURNAL_FILE: &str = "signer.journal";

/// The signer journal of the node whose config this is: `<datadir>/signer.journal`.
pub fn journal_path(config: &NodeConfig) -> PathBuf {
    config.data_dir.join(JOURNAL_FILE)
}

/// Creates a NEW signer journal at `path` whose first record refuses every height up to `height` (an approved
/// decision at `height` for a hash no block has), atomically: a signer waiting for its journal sees either none or
/// the complete journal with this floor, never an empty one ([`hsm::SignerJournal::create_new`]). Refused with
/// [`hsm::JournalError::Exists`] if a journal is there. What `functionary-cli signer-journal-init HEIGHT` does.
pub fn create_floor_journal(path: &Path, height: u32) -> Result<(), hsm::JournalError> {
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let floor = hsm::JournalRecord::new(
        hsm::SignRequestRecord::Block {
            height,
            block_hash: [0u8; 32],
        },
        hsm::Verdict::Approved,
        "operator re-created a lost journal: nothing at or below this height is signed",
        unix_ms,
    );
    hsm::SignerJournal::create_new(path, &[floor])
}

/// Refuses to start the signer when its secrets or its journal are exposed to other users: the PIN file must not
/// be accessible by group or others (mode `& 0o077 == 0`), and neither the data dir nor the journal's directory may
/// be writable by group or others (someone else could remove or replace the journal). Errors name the file and
/// the fix.
pub fn check_signer_file_modes(config: &NodeConfig) -> anyhow::Result<()> {
    check_pin_file_mode(&config.hsm.pin_file)?;
    check_dir_not_writable_by_others(&config.data_dir, "data_dir")?;
    let journal = journal_path(config);
    if let Some(dir) = journal.parent().filter(|d| *d != config.data_dir.as_path()) {
        check_dir_not_writable_by_others(dir, "the signer journal's directory")?;
    }
    Ok(())
}

/// Refuses a PIN file that group or others may access in any way.
pub fn check_pin_file_mode(pin_file: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(pin_file)
        .with_context(|| format!("hsm.pin_file: cannot read {}", pin_file.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        bail!(
            "hsm.pin_file: {} is accessible by group or others (mode {mode:04o}); the signer refuses to start. \
             Run `chmod 600 {}` (only the signer's user may read the PIN)",
            pin_file.display(),
            pin_file.display()
        );
    }
    Ok(())
}

/// Refuses a directory that group or others may write to.
pub fn check_dir_not_writable_by_others(dir: &Path, what: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(dir).with_context(|| format!("{what}: cannot read {}", dir.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        bail!(
            "{what}: {} is writable by group or others (mode {mode:04o}): another user could remove or replace \
             the signer journal; the signer refuses to start. Run `chmod go-w {}`",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// The federation as the consensus sees it, with this member's place in it.
pub struct FederationView {
    /// Consensus view (params, p2p keys, timing).
    pub federation: Arc<blocksigner::Federation>,
    /// This member's index (position in the sorted key order).
    pub member_index: usize,
    /// Member names by member index.
    pub member_names: Vec<String>,
    /// PeerIds by member index.
    pub member_peers: Vec<libp2p::PeerId>,
    /// Member index of every federation PeerId.
    pub member_of_peer: HashMap<libp2p::PeerId, usize>,
}

/// Builds the consensus view of `federation_config` for the member `config.member`.
pub fn federation_view(
    config: &NodeConfig,
    federation_config: &FederationConfig,
) -> anyhow::Result<FederationView> {
    let me = own_member(config, federation_config)?;
    let params = federation_config
        .params()
        .with_context(|| format!("federation config {}", config.federation_file.display()))?;

    let mut member_names = vec![String::new(); params.member_count()];
    let mut member_peers = Vec::with_capacity(params.member_count());
    let mut p2p_keys = Vec::with_capacity(params.member_count());
    let mut by_index: Vec<Option<&MemberConfig>> = vec![None; params.member_count()];
    for m in &federation_config.members {
        let idx = params.member_index(&m.block_pubkey).with_context(|| {
            format!(
                "member {}: block key missing from the federation params",
                m.name
            )
        })?;
        if let Some(slot) = by_index.get_mut(idx) {
            *slot = Some(m);
        }
    }
    let mut member_of_peer = HashMap::new();
    for (idx, m) in by_index.into_iter().enumerate() {
        let m = m.with_context(|| format!("no member at index {idx}"))?;
        if let Some(name) = member_names.get_mut(idx) {
            name.clone_from(&m.name);
        }
        member_peers.push(m.peer_id);
        p2p_keys.push(
            p2p::ed25519_key_of_peer(&m.peer_id)
                .with_context(|| format!("members.{}.peer_id", m.name))?,
        );
        member_of_peer.insert(m.peer_id, idx);
    }
    let member_index = params
        .member_index(&me.block_pubkey)
        .context("own block key not in params")?;
    let interval_ms =
        u64::try_from(federation_config.block_interval.as_millis()).unwrap_or(u64::MAX);
    let federation = Arc::new(blocksigner::Federation {
        params,
        p2p_keys,
        interval_ms,
        round_timeout_ms: u64::try_from(federation_config.round_timeout().as_millis())
            .unwrap_or(u64::MAX),
    });
    Ok(FederationView {
        federation,
        member_index,
        member_names,
        member_peers,
        member_of_peer,
    })
}

/// This member's entry in the federation config.
pub fn own_member<'a>(
    config: &NodeConfig,
    federation_config: &'a FederationConfig,
) -> anyhow::Result<&'a MemberConfig> {
    federation_config
        .member_by_name(&config.member)
        .with_context(|| {
            format!(
                "member: no member named `{}` in {}",
                config.member,
                config.federation_file.display()
            )
        })
}

/// Opens the token holding the block-signing key (PIN from `hsm.pin_file`, failed logins counted beside the
/// journal) and checks that its key is `me`'s block key in the federation config.
pub fn open_block_token(
    config: &NodeConfig,
    me: &MemberConfig,
) -> anyhow::Result<hsm::Pkcs11Signer> {
    let pin = hsm::Pin::from_file(&config.hsm.pin_file)?;
    let token = hsm::TokenConfig {
        module_path: config.hsm.module.clone(),
        token_label: config.hsm.token_label.clone(),
        key_label: config.hsm.key_label.clone(),
    };
    // SoftHSM has no PIN lockout: failed logins are counted next to the journal and refused after too many.
    let attempts =
        hsm::LoginAttempts::beside_journal(&journal_path(config), &config.hsm.token_label);
    let signer = hsm::Pkcs11Signer::open_counted(&token, &pin, &attempts)?;
    let hsm_key = hsm::DigestSigner::public_key(&signer);
    if hsm_key != me.block_pubkey {
        bail!(
            "hsm: key {:?} in token {:?} is {}, but the federation config lists {} for member {}",
            config.hsm.key_label,
            config.hsm.token_label,
            hsm_key,
            me.block_pubkey,
            me.name
        );
    }
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_pin_file_readable_by_group_or_others_is_refused_naming_it_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let pin = dir.path().join("hsm.pin");
        std::fs::write(&pin, "123456").unwrap();
        chmod(&pin, 0o600);
        check_pin_file_mode(&pin).unwrap();
        chmod(&pin, 0o400);
        check_pin_file_mode(&pin).unwrap();
        for mode in [0o640, 0o604, 0o644, 0o610, 0o660] {
            chmod(&pin, mode);
            let msg = check_pin_file_mode(&pin).unwrap_err().to_string();
            assert!(
                msg.contains("hsm.pin")
                    && msg.contains("chmod 600")
                    && msg.contains(&format!("{mode:04o}")),
                "{msg}"
            );
        }
        let msg = check_pin_file_mode(&dir.path().join("missing.pin"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("missing.pin"), "{msg}");
    }

    #[test]
    fn a_directory_writable_by_group_or_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for ok in [0o700, 0o750, 0o755] {
            chmod(dir.path(), ok);
            check_dir_not_writable_by_others(dir.path(), "data_dir").unwrap();
        }
        for bad in [0o770, 0o707, 0o777, 0o1777] {
            chmod(dir.path(), bad);
            let msg = check_dir_not_writable_by_others(dir.path(), "data_dir")
                .unwrap_err()
                .to_string();
            assert!(
                msg.starts_with("data_dir: ") && msg.contains("chmod go-w"),
                "{msg}"
            );
        }
        chmod(dir.path(), 0o700);
    }
}
