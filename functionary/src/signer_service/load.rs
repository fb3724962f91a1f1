//! Loading what both the signer process and an embedded signer need: the federation's consensus view (for the
//! certificate check), the token holding this member's block key, and the journal's place.

use std::collections::HashMap;
use std::path::PathBuf;
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
