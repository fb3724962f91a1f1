//! The peer-to-peer transport between federation members: libp2p over TCP with noise and yamux.
//!
//! This module moves bytes; it knows nothing about consensus. It offers:
//! - **broadcasts** sent directly ([`BROADCAST_PROTOCOL`]): every member dials every other member (full mesh), and
//!   each broadcast is written once to each connected member on a long-lived stream, as a length-prefixed frame of
//!   at most `max_message_bytes`. Nothing is relayed or deduplicated: each member hears each other member directly,
//!   exactly once per broadcast; a member not connected at send time misses it (the consensus protocol
//!   retransmits). The sender of a received broadcast is the PeerId authenticated by the connection (noise), not a
//!   claim inside the message. Each peer has a bounded outbound queue; when a peer is slow its oldest queued
//!   broadcasts are dropped and counted ([`P2pCounters::broadcasts_dropped`]), so one slow member never delays the
//!   others. A frame above the cap resets that stream only (counted in [`P2pCounters::rejected_messages`]);
//! - **block-range fetches** over request-response ([`BLOCKS_PROTOCOL`]) with a size-capped postcard codec,
//!   served from a [`BlockSource`];
//! - **an allow-list**: only the configured members may connect. `libp2p::allow_block_list` denies any other PeerId
//!   when its connection is established (after the noise handshake, before any protocol stream), and streams from
//!   a PeerId that is not a member are never read.
//!
//! Use: [`start`] binds the listener, dials the members and returns a [`P2pHandle`]; take the event receiver once with
//! [`P2pHandle::take_events`] (events are buffered up to [`EVENT_CHANNEL_CAPACITY`] until then; when the buffer is
//! full, new events are dropped with a warning and counted in [`P2pCounters::events_dropped`]).
//!
//! Logs use the target `"p2p"`.

mod backoff;
mod codec;
mod direct;
mod event_loop;
mod handle;
mod identity;
mod swarm;

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

pub use codec::{BlockRequest, BlockResponse};
pub use handle::{start, P2pHandle};
pub use identity::{
    dalek_signing_key, ed25519_key_of_peer, generate_identity_file, load_identity_file,
};

/// The stream protocol that carries broadcasts (one long-lived stream per connection and direction).
pub const BROADCAST_PROTOCOL: &str = "/functionary/broadcast/1";
/// The request-response protocol name for block-range fetches.
pub const BLOCKS_PROTOCOL: &str = "/functionary/blocks/1";
/// The most blocks one block-range request may ask for (larger counts are clamped).
pub const MAX_BLOCKS_PER_REQUEST: u32 = 500;
/// Capacity of the event channel handed to the daemon.
pub const EVENT_CHANNEL_CAPACITY: usize = 4096;
/// Capacity of the command channel from [`P2pHandle`] to the swarm task.
pub const COMMAND_CHANNEL_CAPACITY: usize = 1024;
/// Smallest accepted [`P2pConfig::max_message_bytes`].
pub const MIN_MESSAGE_BYTES: usize = 1024;
/// Largest accepted [`P2pConfig::max_message_bytes`].
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// First redial delay after a failed dial or a lost connection; it doubles up to [`REDIAL_MAX`].
pub const REDIAL_INITIAL: Duration = Duration::from_millis(100);
/// Longest redial delay.
pub const REDIAL_MAX: Duration = Duration::from_secs(5);
/// Most broadcasts queued for one peer; beyond it the oldest are dropped.
pub const OUTBOUND_QUEUE_FRAMES: usize = 1024;
/// Most payload bytes queued for one peer (or `max_message_bytes`, if larger); beyond it the oldest are dropped.
pub const OUTBOUND_QUEUE_BYTES: usize = 16 * 1024 * 1024;
/// Inbound broadcast streams read at once from one member (normally one per connection); more are reset.
pub const MAX_INBOUND_STREAMS_PER_PEER: usize = 4;
/// How long a block-range request may wait for its response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything [`start`] needs. `Debug` shows the PeerId, never the secret key.
#[derive(Clone)]
pub struct P2pConfig {
    /// This member's ed25519 identity.
    pub keypair: libp2p::identity::Keypair,
    /// Where to listen, e.g. `/ip4/127.0.0.1/tcp/7000` (`tcp/0` picks a free port; see
    /// [`P2pHandle::local_addrs`]).
    pub listen: Multiaddr,
    /// All OTHER federation members and the address each listens on.
    pub peers: Vec<(PeerId, Multiaddr)>,
    /// The largest broadcast payload and the largest block-range response, in bytes. Larger broadcast frames from
    /// a peer reset its stream.
    pub max_message_bytes: usize,
}

impl std::fmt::Debug for P2pConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P2pConfig")
            .field("peer_id", &self.keypair.public().to_peer_id())
            .field("listen", &self.listen)
            .field("peers", &self.peers)
            .field("max_message_bytes", &self.max_message_bytes)
            .finish()
    }
}

/// Serves block-range requests from peers (the daemon implements it over its block store).
///
/// Called on a blocking thread (`tokio::task::spawn_blocking`), at most a few at a time.
pub trait BlockSource: Send + Sync + 'static {
    /// Consensus-encoded blocks from `start_height`, at most `max_count` and about `max_bytes` in total.
    fn blocks_from(&self, start_height: u32, max_count: u32, max_bytes: usize) -> Vec<Vec<u8>>;
}

/// What the transport reports to the daemon. `Debug` shows payload sizes, not payloads.
#[derive(Clone, PartialEq, Eq)]
pub enum P2pEvent {
    /// A broadcast from another member. `from` is the PeerId authenticated by the connection the frame arrived on
    /// (the member that sent it; nothing is relayed); it is always a configured member (never this node).
    Message {
        /// The member that sent the message.
        from: PeerId,
        /// The payload as broadcast.
        bytes: Vec<u8>,
    },
    /// The answer to [`P2pHandle::request_blocks`]. When the request failed (timeout, connection lost, malformed or
    /// oversized response, peer not configured), `blocks` is empty; the failure is logged.
    Blocks {
        /// The member that was asked.
        from: PeerId,
        /// The `start_height` of the request.
        start_height: u32,
        /// Consensus-encoded blocks from `start_height` on, at most the requested count.
        blocks: Vec<Vec<u8>>,
    },
    /// The first connection to a member was established.
    PeerConnected(PeerId),
    /// The last connection to a member was closed (it will be redialed).
    PeerDisconnected(PeerId),
}

impl std::fmt::Debug for P2pEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            P2pEvent::Message { from, bytes } => f
                .debug_struct("Message")
                .field("from", from)
                .field("len", &bytes.len())
                .field("head", &hex::encode(bytes.get(..16).unwrap_or(bytes)))
                .finish(),
            P2pEvent::Blocks {
                from,
                start_height,
                blocks,
            } => f
                .debug_struct("Blocks")
                .field("from", from)
                .field("start_height", start_height)
                .field("count", &blocks.len())
                .field("bytes", &blocks.iter().map(Vec::len).sum::<usize>())
                .finish(),
            P2pEvent::PeerConnected(peer) => f.debug_tuple("PeerConnected").field(peer).finish(),
            P2pEvent::PeerDisconnected(peer) => {
                f.debug_tuple("PeerDisconnected").field(peer).finish()
            }
        }
    }
}

/// The state of one configured member, as seen by this node. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The member's PeerId.
    pub peer_id: PeerId,
    /// The configured address we dial.
    pub addr: Multiaddr,
    /// At least one connection is established.
    pub connected: bool,
    /// Our broadcast stream to the peer is open (it accepted [`BROADCAST_PROTOCOL`]; our broadcasts reach it).
    pub subscribed: bool,
    /// When the current connection was established.
    pub connected_since_ms: Option<u64>,
    /// When we last received a broadcast from it, a block request from it or a block response from it.
    pub last_message_ms: Option<u64>,
    /// Broadcasts from it, block requests from it and block responses from it that we received.
    pub messages_in: u64,
    /// Broadcasts we queued for it while it was connected, block requests we sent it and responses we served it.
    pub messages_out: u64,
}

/// Transport-wide counters (for logs, RPC and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct P2pCounters {
    /// Connections refused because the remote PeerId is not a configured member.
    pub denied_connections: u64,
    /// Broadcast streams reset because a frame was larger than `max_message_bytes` or cut short.
    pub rejected_messages: u64,
    /// Broadcast copies dropped from a slow member's full outbound queue (oldest first).
    pub broadcasts_dropped: u64,
    /// Events dropped because the daemon's event channel was full.
    pub events_dropped: u64,
    /// Handle commands dropped because the command channel was full.
    pub commands_dropped: u64,
}

/// Errors of the p2p transport and of the identity key files.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// The listen address could not be bound (e.g. the port is in use).
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The configured listen address.
        addr: Multiaddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The listener did not report its bound address in time.
    #[error("listener on {addr} did not report a bound address within {timeout_ms} ms")]
    ListenTimeout {
        /// The configured listen address.
        addr: Multiaddr,
        /// How long we waited.
        timeout_ms: u64,
    },
    /// The p2p configuration is inconsistent.
    #[error("invalid p2p config: {0}")]
    Config(String),
    /// The libp2p transport or a protocol could not be set up.
    #[error("p2p setup failed: {0}")]
    Setup(String),
    /// Generating an identity file would overwrite an existing file.
    #[error("identity file {} already exists; refusing to overwrite it", path.display())]
    IdentityExists {
        /// The identity file path.
        path: std::path::PathBuf,
    },
    /// Reading or writing an identity file failed.
    #[error("identity file {}: {source}", path.display())]
    IdentityIo {
        /// The identity file path.
        path: std::path::PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// An identity file does not hold a hex-encoded 32-byte ed25519 secret key.
    #[error("identity file {}: {reason}", path.display())]
    IdentityFormat {
        /// The identity file path.
        path: std::path::PathBuf,
        /// What is wrong with the content (never the content itself).
        reason: String,
    },
    /// A PeerId does not embed an ed25519 public key.
    #[error("peer id {peer} does not embed an ed25519 public key: {reason}")]
    NotEd25519Peer {
        /// The offending PeerId.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// A keypair is not an ed25519 keypair.
    #[error("the p2p keypair is not an ed25519 keypair")]
    NotEd25519Keypair,
}

/// Current Unix time in milliseconds (0 if the clock is before 1970).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_debug_shows_sizes_not_payloads() {
        let from = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let shown = format!(
            "{:?}",
            P2pEvent::Message {
                from,
                bytes: vec![0xAB; 100_000]
            }
        );
        assert!(
            shown.contains("len: 100000") && shown.len() < 200,
            "{shown}"
        );
        let shown = format!(
            "{:?}",
            P2pEvent::Blocks {
                from,
                start_height: 5,
                blocks: vec![vec![1; 10]; 3]
            }
        );
        assert!(
            shown.contains("count: 3") && shown.contains("bytes: 30"),
            "{shown}"
        );
    }
}
