//! Direct-send broadcasts over the authenticated member connections (protocol [`crate::p2p::BROADCAST_PROTOCOL`]).
//!
//! Every connection carries one long-lived outbound stream per direction. A broadcast is pushed once into each
//! connected peer's bounded [`OutboundQueue`]; that peer's writer task writes it as a length-prefixed frame. There is
//! no relaying and no deduplication: every member hears every other member directly, exactly once per broadcast, and
//! a member that is not connected when a broadcast is sent misses it (the consensus protocol retransmits). The
//! sender of a received frame is the PeerId authenticated by the connection's noise handshake.
//!
//! - `behaviour`: the libp2p behaviour and connection handler that negotiate the streams and hand them out;
//! - `queue`: the per-peer bounded queue (drops the oldest frames when a peer is slow);
//! - `io`: the writer and reader tasks and the frame reader.

pub(crate) mod behaviour;
pub(crate) mod io;
pub(crate) mod queue;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use libp2p::swarm::{ConnectionId, Stream};
use tokio::task::JoinHandle;

use queue::OutboundQueue;

/// The writer task currently draining a peer's queue.
pub(crate) struct ActiveWriter {
    /// Unique per writer, so stale stop reports are ignored.
    pub(crate) id: u64,
    /// The connection its stream belongs to.
    pub(crate) connection: ConnectionId,
    pub(crate) task: JoinHandle<()>,
}

/// The broadcast state of one configured peer, owned by the swarm task.
pub(crate) struct PeerLink {
    /// Broadcasts waiting for the peer's writer.
    pub(crate) queue: Arc<OutboundQueue>,
    /// Established connections to the peer, oldest first.
    pub(crate) connections: Vec<ConnectionId>,
    /// The writer of our broadcasts to the peer, if a stream is open.
    pub(crate) writer: Option<ActiveWriter>,
    /// Outbound streams opened on other connections, kept in case the active one fails.
    pub(crate) spare: Vec<(ConnectionId, Stream)>,
    /// Reader tasks of the peer's inbound streams (counted by `readers`).
    pub(crate) reader_tasks: Vec<JoinHandle<()>>,
    /// Inbound streams being read right now.
    pub(crate) readers: Arc<AtomicUsize>,
    /// Broadcast copies dropped because the queue was full (for rate-limited logging).
    pub(crate) dropped_total: u64,
}

impl PeerLink {
    /// A link with an empty queue bounded by `max_frames` frames and `max_bytes` payload bytes.
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> Self {
        PeerLink {
            queue: Arc::new(OutboundQueue::new(max_frames, max_bytes)),
            connections: Vec::new(),
            writer: None,
            spare: Vec::new(),
            reader_tasks: Vec::new(),
            readers: Arc::new(AtomicUsize::new(0)),
            dropped_total: 0,
        }
    }

    /// Stops every task of the link (the node is shutting down).
    pub(crate) fn abort_all(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.task.abort();
        }
        for task in self.reader_tasks.drain(..) {
            task.abort();
        }
        self.spare.clear();
        self.queue.clear();
    }
}
