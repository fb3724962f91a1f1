//! Loading and cross-checking a member's configuration, identity, HSM key and storage.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context};

use super::signer_thread::{BlockSigner, SocketSigner};
use crate::config::{FederationConfig, MemberConfig, NodeConfig, SignerMode};
use crate::p2p;
use crate::signer_service::{load, JournalState, SignerClient};
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
    /// The block signer: a connection to the `functionary-signer` process whose key was checked (socket mode),
    /// or the guard over the HSM key with its journal replayed (embedded mode).
    pub guard: BlockSigner,
    /// Block storage, genesis checked.
    pub store: Arc<BlockStore>,
    /// Our durable consensus state at the height being decided (votes, lock, decision), if any.
    pub consensus_record: Option<blocksigner::ConsensusRecord>,
}

/// Loads the federation config, the p2p identity, the block signer and the block store, and checks that they
/// belong together. Nothing is started.
///
/// In `socket` mode the daemon never reads the PIN file nor loads the PKCS#11 module: it waits (at most
/// `signer.connect_timeout`) for the signer process, and refuses to start unless it holds this member's block key.
pub fn load_node(config: &NodeConfig) -> anyhow::Result<LoadedNode> {
    let federation_config = config.load_federation()?;
    crate::ceremony::require_verified(&config.data_dir, &federation_config)?;
    let me = load::own_member(config, &federation_config)?;
    let load::FederationView {
        federation,
        member_index,
        member_names,
        member_peers,
        member_of_peer,
    } = load::federation_view(config, &federation_config)?;

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

    let signer = match config.signer.mode {
        SignerMode::Embedded => {
            tracing::warn!(target: "daemon", "signer.mode = \"embedded\": the daemon holds the HSM PIN and session \
                itself, so a compromised daemon can bypass the signing policy; use \"socket\" (functionary-signer) \
                in production");
            PendingSigner::Embedded(load::open_block_token(config, me)?)
        }
        SignerMode::Socket => PendingSigner::Socket(connect_signer(config, me)?),
    };

    let params = &federation.params;
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
    let (tip_height, _) = store.tip()?;
    let guard = match signer {
        PendingSigner::Embedded(token) => {
            let journal = load::journal_path(config);
            refuse_missing_journal(
                tip_height,
                !journal.exists(),
                &journal.display().to_string(),
                config,
            )?;
            let verifier = Box::new(super::certificate::ConsensusCertificateVerifier::new(
                federation.clone(),
            ));
            let guard = hsm::BlockSigningGuard::open(&journal, token, verifier)
                .with_context(|| format!("signer journal {}", journal.display()))?;
            BlockSigner::Embedded(Box::new(guard))
        }
        PendingSigner::Socket((mut client, mut hello)) => {
            let what = format!("of the signer at {}", config.signer.socket.display());
            refuse_missing_journal(
                tip_height,
                hello.journal == JournalState::Missing,
                &what,
                config,
            )?;
            if hello.journal == JournalState::Missing {
                hello.journal = client
                    .create_journal()
                    .context("asking the signer to create its journal")?;
            }
            BlockSigner::Socket(SocketSigner::new(client, &hello, me.block_pubkey))
        }
    };

    if let Some(last) = guard.last_signed() {
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

/// The signer before the block store is open (the journal check needs the store's tip).
enum PendingSigner {
    Embedded(hsm::Pkcs11Signer),
    Socket((SignerClient, crate::signer_service::SignerHello)),
}

/// Waits for the signer process, says hello and checks that it holds this member's block key.
fn connect_signer(
    config: &NodeConfig,
    me: &MemberConfig,
) -> anyhow::Result<(SignerClient, crate::signer_service::SignerHello)> {
    let socket = &config.signer.socket;
    let mut client = SignerClient::connect_waiting(socket, config.signer.connect_timeout)
        .with_context(|| {
            format!(
                "signer.socket: no functionary-signer answered at {} within {:?} (start functionary-signer for \
                 this member first)",
                socket.display(),
                config.signer.connect_timeout
            )
        })?;
    let hello = client.hello().context("signer.socket: hello")?;
    if hello.public_key != me.block_pubkey {
        bail!(
            "signer.socket: the signer at {} holds block key {}, but the federation config lists {} for member {}; \
             refusing to start",
            socket.display(),
            hello.public_key,
            me.block_pubkey,
            me.name
        );
    }
    tracing::info!(target: "daemon", socket = %socket.display(), public_key = %hello.public_key,
        journal = ?hello.journal, "signer connected");
    Ok((client, hello))
}

/// A member with a chain but no journal may already have signed at heights it would sign again: it must not
/// start from a blank journal silently.
fn refuse_missing_journal(
    tip_height: u32,
    missing: bool,
    journal: &str,
    config: &NodeConfig,
) -> anyhow::Result<()> {
    if tip_height > 0 && missing {
        bail!(
            "signer journal {journal} is missing, but this member's block store already holds {tip_height} blocks: \
             it may have signed blocks it would sign again. Restore the journal from a backup; if it is lost for \
             good, create a new one that refuses every height up to one the federation has certainly passed: \
             `functionary-cli --datadir {} signer-journal-init HEIGHT` (HEIGHT at least the federation's current \
             height; run it with the signer's data dir)",
            config.data_dir.display()
        );
    }
    Ok(())
}
