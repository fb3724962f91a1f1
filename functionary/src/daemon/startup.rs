//! Loading and cross-checking a member's configuration, identity, HSM key and storage.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::config::{FederationConfig, NodeConfig};
use crate::p2p;
use crate::storage::BlockStore;

/// Everything a member needs, loaded and checked, with nothing listening yet.
pub struct LoadedNode {
    /// The federation config as loaded.
    pub federation_config: FederationConfig,
    /// Consensus view of the federation.
    pub federation: Arc<blocksigner::Federation>,
    /// This member's index (position in the sorted key order).
    pub member_index: usize,
    /// Member names by member index.
    pub member_names: Vec<String>,
    /// PeerIds by member index.
    pub member_peers: Vec<libp2p::PeerId>,
    /// Member index of every federation PeerId.
    pub member_of_peer: HashMap<libp2p::PeerId, usize>,
    /// This member's libp2p identity.
    pub keypair: libp2p::identity::Keypair,
    /// The signer guard over the HSM key, journal replayed.
    pub guard: hsm::BlockSigningGuard<hsm::Pkcs11Signer>,
    /// Block storage, genesis checked.
    pub store: Arc<BlockStore>,
    /// Our durable consensus state at the height being decided (votes, lock, decision), if any.
    pub consensus_record: Option<blocksigner::ConsensusRecord>,
}

/// Loads the federation config, the p2p identity, the HSM key and the block store, and checks that they belong
/// together. Nothing is started.
pub fn load_node(config: &NodeConfig) -> anyhow::Result<LoadedNode> {
    let federation_config = config.load_federation()?;
    crate::ceremony::require_verified(&config.data_dir, &federation_config)?;
    let me = federation_config
        .member_by_name(&config.member)
        .context("member checked by load_federation")?;

    let params = federation_config
        .params()
        .with_context(|| format!("federation config {}", config.federation_file.display()))?;

    let mut member_names = vec![String::new(); params.member_count()];
    let mut member_peers = Vec::with_capacity(params.member_count());
    let mut p2p_keys = Vec::with_capacity(params.member_count());
    let mut by_index: Vec<Option<&crate::config::MemberConfig>> = vec![None; params.member_count()];
    for m in &federation_config.members {
        let idx = params.member_index(&m.block_pubkey).with_context(|| {
            format!(
                "member {}: block key missing from the federation params",
                m.name
            )
        })?;
        by_index[idx] = Some(m);
    }
    let mut member_of_peer = HashMap::new();
    for (idx, m) in by_index.into_iter().enumerate() {
        let m = m.with_context(|| format!("no member at index {idx}"))?;
        member_names[idx] = m.name.clone();
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

    let keypair = p2p::load_identity_file(&config.p2p_key_file)
        .with_context(|| format!("p2p_key_file: {}", config.p2p_key_file.display()))?;
    let own_peer = keypair.public().to_peer_id();
    if own_peer != me.peer_id {
        bail!(
            "p2p_key_file: {} holds the identity {own_peer}, but the federation config lists {} for member {}",
            config.p2p_key_file.display(),
            me.peer_id,
            me.name
        );
    }

    let interval_ms =
        u64::try_from(federation_config.block_interval.as_millis()).unwrap_or(u64::MAX);
    let federation = Arc::new(blocksigner::Federation {
        params,
        p2p_keys,
        interval_ms,
        round_timeout_ms: u64::try_from(federation_config.round_timeout().as_millis())
            .unwrap_or(u64::MAX),
    });
    let params = &federation.params;

    let pin = hsm::Pin::from_file(&config.hsm.pin_file)?;
    let token = hsm::TokenConfig {
        module_path: config.hsm.module.clone(),
        token_label: config.hsm.token_label.clone(),
        key_label: config.hsm.key_label.clone(),
    };
    let journal = config.data_dir.join("signer.journal");
    // SoftHSM has no PIN lockout: failed logins are counted next to the journal and refused after too many.
    let attempts = hsm::LoginAttempts::beside_journal(&journal, &config.hsm.token_label);
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
    let store_path = config.data_dir.join("blocks");
    let store = BlockStore::open(&store_path)
        .with_context(|| format!("block store {}", store_path.display()))?;
    let genesis = params.genesis_block();
    store.init_genesis(&genesis).with_context(|| {
        format!(
            "block store {} (genesis {} of this federation config)",
            store_path.display(),
            genesis.block_hash()
        )
    })?;
    // A member with a chain but no journal may already have signed at heights it would sign again: it must not
    // start from a blank journal silently.
    let (tip_height, _) = store.tip()?;
    if tip_height > 0 && !journal.exists() {
        bail!(
            "signer journal {} is missing, but this member's block store already holds {tip_height} blocks: it may \
             have signed blocks it would sign again. Restore the journal from a backup; if it is lost for good, \
             create a new one that refuses every height up to one the federation has certainly passed: \
             `functionary-cli --datadir {} signer-journal-init HEIGHT` (HEIGHT at least the federation's current \
             height)",
            journal.display(),
            config.data_dir.display()
        );
    }
    let verifier = Box::new(super::certificate::ConsensusCertificateVerifier::new(
        federation.clone(),
    ));
    let guard = hsm::BlockSigningGuard::open(&journal, signer, verifier)
        .with_context(|| format!("signer journal {}", journal.display()))?;

    if let Some(last) = guard.last_signed() {
        let (tip_height, _) = store.tip()?;
        tracing::info!(target: "daemon", last_signed_height = last.height, tip_height,
            last_signed_hash = %elements::BlockHash::from_byte_array(last.block_hash), "signer journal replayed");
    }

    let consensus_record = match store.consensus_record()? {
        None => None,
        Some(bytes) => Some(blocksigner::ConsensusRecord::decode(&bytes).with_context(|| {
            format!(
                "block store {}: the consensus record (this member's votes and lock) is damaged; the member \
                 refuses to vote rather than risk contradicting itself. Restore the data directory from a backup, \
                 or, if this member is certainly not needed to decide the current height, stop it and ask for \
                 help: never delete the record while the federation is running",
                store_path.display()
            )
        })?),
    };
    Ok(LoadedNode {
        federation_config,
        federation,
        member_index,
        member_names,
        member_peers,
        member_of_peer,
        keypair,
        guard,
        store: Arc::new(store),
        consensus_record,
    })
}
