//! Construction of the libp2p swarm: TCP + noise + yamux, the allow-list, connection limits, gossipsub, the
//! block-range request-response protocol and ping.

use std::time::Duration;

use libp2p::core::upgrade::Version;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, connection_limits, gossipsub, identity::Keypair, noise, ping,
    request_response, tcp, yamux, StreamProtocol, Swarm, Transport,
};
use sha2::{Digest, Sha256};

use super::codec::BlockCodec;
use super::{P2pConfig, P2pError, BLOCKS_PROTOCOL, DUPLICATE_WINDOW, REQUEST_TIMEOUT};

/// A TCP connection must finish noise and yamux within this time, or it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections of a permanent mesh are never closed for being idle.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);
/// Concurrent yamux streams per connection (gossipsub uses one each way, block fetches a few).
const YAMUX_MAX_STREAMS: usize = 64;
/// Room for gossipsub's framing around a payload: author PeerId, sequence number, topic, signature, protobuf tags.
pub(crate) const GOSSIP_FRAMING_BYTES: usize = 1024;
/// Ping interval; a failed ping closes the connection so that it is redialed.
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// Ping timeout.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// All protocols of a member's swarm. The allow-list comes first so that it denies a stranger's connection before
/// any other behaviour sees it.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) blocks: request_response::Behaviour<BlockCodec>,
    pub(crate) ping: ping::Behaviour,
}

/// Connection limits for a federation of `members` nodes (this one included): a couple of connections per member
/// (simultaneous dials from both sides are tolerated) and a small bound on unauthenticated handshakes.
fn limits(members: u32) -> connection_limits::ConnectionLimits {
    let others = members.saturating_sub(1).max(1);
    connection_limits::ConnectionLimits::default()
        .with_max_established_per_peer(Some(3))
        .with_max_established_incoming(Some(others.saturating_mul(2)))
        .with_max_established_outgoing(Some(others.saturating_mul(2)))
        .with_max_established(Some(others.saturating_mul(4)))
        .with_max_pending_incoming(Some(others.saturating_mul(2).saturating_add(8)))
        .with_max_pending_outgoing(Some(others.saturating_mul(2)))
}

/// Gossipsub message id: SHA-256 of the author, the author's sequence number and the payload. Relayed copies of one
/// publish share the id and are delivered once; every publish, including a deliberate retransmission of an
/// unchanged payload (the consensus core re-sends its status and its block signature every slot), is a new message.
fn message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    let mut hasher = Sha256::new();
    match &message.source {
        Some(source) => hasher.update(source.to_bytes()),
        None => hasher.update([]),
    }
    hasher.update(message.sequence_number.unwrap_or(0).to_be_bytes());
    hasher.update(&message.data);
    gossipsub::MessageId::new(&hasher.finalize())
}

fn gossipsub_behaviour(
    keypair: &Keypair,
    max_message_bytes: usize,
) -> Result<gossipsub::Behaviour, P2pError> {
    let config = gossipsub::ConfigBuilder::default()
        .max_transmit_size(max_message_bytes.saturating_add(GOSSIP_FRAMING_BYTES))
        // Messages carry their author's PeerId but no per-message libp2p signature. Connections are Noise-
        // authenticated and only members may connect, so "a member sent or forwarded this" is proven by the
        // transport; which member AUTHORED a message is proven by the message itself where it matters
        // (proposals and precommits carry ed25519 signatures by the author's p2p key, block signatures are by the
        // block key, final blocks carry the m-of-n proof). Signing every gossip message and verifying every
        // relayed copy cost ~half of a member's CPU per block at n=15 (measured with perf, docs/BENCHMARKS.md).
        .validation_mode(gossipsub::ValidationMode::Permissive)
        // The event loop accepts or rejects every message (author and forwarder must be members) before it is
        // forwarded.
        .validate_messages()
        .message_id_fn(message_id)
        // Small full mesh: send every publish to all subscribed peers at once...
        .flood_publish(true)
        // ...so relays only matter when a direct link is down. A low mesh degree keeps some redundancy without
        // every member re-sending every message to 6 others (the default degree made each message arrive ~7 times
        // at every member of a 15-member federation).
        .mesh_n(2)
        .mesh_n_low(1)
        .mesh_n_high(4)
        .mesh_outbound_min(1)
        .gossip_lazy(2)
        .heartbeat_interval(Duration::from_millis(500))
        .duplicate_cache_time(DUPLICATE_WINDOW)
        .build()
        .map_err(|e| P2pError::Setup(format!("gossipsub config: {e}")))?;
    gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Author(keypair.public().to_peer_id()),
        config,
    )
    .map_err(|e| P2pError::Setup(format!("gossipsub: {e}")))
}

/// Builds the swarm for `config` (nothing is bound or dialed yet).
pub(crate) fn build_swarm(config: &P2pConfig) -> Result<Swarm<Behaviour>, P2pError> {
    let keypair = &config.keypair;
    let local_peer_id = keypair.public().to_peer_id();

    let noise = noise::Config::new(keypair).map_err(|e| P2pError::Setup(format!("noise: {e}")))?;
    let mut yamux_config = yamux::Config::default();
    yamux_config.set_max_num_streams(YAMUX_MAX_STREAMS);
    let transport = tcp::tokio::Transport::new(tcp::Config::new().nodelay(true))
        .upgrade(Version::V1Lazy)
        .authenticate(noise)
        .multiplex(yamux_config)
        .timeout(HANDSHAKE_TIMEOUT)
        .boxed();

    let mut allow = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    for (peer, _) in &config.peers {
        allow.allow_peer(*peer);
    }
    let members = u32::try_from(config.peers.len().saturating_add(1)).unwrap_or(u32::MAX);

    let behaviour = Behaviour {
        allow,
        limits: connection_limits::Behaviour::new(limits(members)),
        gossipsub: gossipsub_behaviour(keypair, config.max_message_bytes)?,
        blocks: request_response::Behaviour::with_codec(
            BlockCodec::new(config.max_message_bytes),
            [(
                StreamProtocol::new(BLOCKS_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
        ),
        ping: ping::Behaviour::new(
            ping::Config::new()
                .with_interval(PING_INTERVAL)
                .with_timeout(PING_TIMEOUT),
        ),
    };

    let swarm_config = libp2p::swarm::Config::with_tokio_executor()
        .with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT);
    Ok(Swarm::new(
        transport,
        behaviour,
        local_peer_id,
        swarm_config,
    ))
}
