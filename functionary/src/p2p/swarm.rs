//! Construction of the libp2p swarm: TCP + noise + yamux, the allow-list, connection limits, the direct-send
//! broadcast streams, the block-range request-response protocol and ping.

use std::time::Duration;

use libp2p::core::upgrade::Version;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, connection_limits, noise, ping, request_response, tcp, yamux, StreamProtocol,
    Swarm, Transport,
};

use super::codec::BlockCodec;
use super::direct;
use super::{P2pConfig, P2pError, BLOCKS_PROTOCOL, BROADCAST_PROTOCOL, REQUEST_TIMEOUT};

/// A TCP connection must finish noise and yamux within this time, or it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections of a permanent mesh are never closed for being idle.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);
/// Concurrent yamux streams per connection (broadcasts use one each way, block fetches a few).
const YAMUX_MAX_STREAMS: usize = 64;
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
    pub(crate) direct: direct::behaviour::Behaviour,
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
        direct: direct::behaviour::Behaviour::new(StreamProtocol::new(BROADCAST_PROTOCOL)),
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
