//! Broadcasts: fanning a payload out to every connected member's queue, and managing the broadcast streams (one
//! writer per peer, one reader per inbound stream) as connections come and go.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use libp2p::swarm::{ConnectionId, Stream};
use libp2p::PeerId;

use super::EventLoop;
use crate::p2p::direct::behaviour::Event as DirectEvent;
use crate::p2p::direct::io::{run_reader, run_writer, LinkNotice};
use crate::p2p::direct::ActiveWriter;
use crate::p2p::handle::lock;
use crate::p2p::MAX_INBOUND_STREAMS_PER_PEER;

/// Pause before opening a new outbound stream after the previous one failed (bounds the retry rate against a
/// peer that keeps resetting our streams).
const REOPEN_DELAY: Duration = Duration::from_millis(100);

impl EventLoop {
    /// Queues `bytes` once for every connected member. Never blocks: a peer whose queue is full loses its oldest
    /// queued frames. Members not connected now miss the broadcast.
    pub(super) fn broadcast(&mut self, bytes: Vec<u8>) {
        let len = bytes.len();
        let frame: Arc<[u8]> = bytes.into();
        let mut sent_to = 0usize;
        let mut dropped_now = 0u64;
        for slot in &mut self.slots {
            if slot.link.connections.is_empty() {
                continue;
            }
            sent_to += 1;
            let dropped =
                u64::try_from(slot.link.queue.push(Arc::clone(&frame))).unwrap_or(u64::MAX);
            if dropped > 0 {
                let before = slot.link.dropped_total;
                slot.link.dropped_total = before.saturating_add(dropped);
                dropped_now = dropped_now.saturating_add(dropped);
                // Warn at the first drop and whenever the total crosses a power of two (no log flood).
                if before == 0 || before.ilog2() != slot.link.dropped_total.ilog2() {
                    tracing::warn!(target: "p2p", peer = %slot.peer_id, dropped_total = slot.link.dropped_total,
                        queued = slot.link.queue.len(), "member is slow to take our broadcasts; oldest queued broadcasts dropped");
                }
            }
        }
        let mut shared = lock(&self.shared);
        shared.counters.broadcasts_dropped = shared
            .counters
            .broadcasts_dropped
            .saturating_add(dropped_now);
        for (status, slot) in shared.peers.iter_mut().zip(&self.slots) {
            if !slot.link.connections.is_empty() {
                status.messages_out += 1;
            }
        }
        drop(shared);
        if sent_to == 0 {
            tracing::debug!(target: "p2p", len, "broadcast not sent: no member connected");
        } else {
            tracing::trace!(target: "p2p", len, peers = sent_to, "broadcast queued");
        }
    }

    /// A connection to a member was established: broadcasts to it are queued from now on (its handler opens the
    /// outbound stream by itself).
    pub(super) fn link_connection_established(&mut self, peer: &PeerId, connection: ConnectionId) {
        if let Some(slot) = self.members.get(peer).and_then(|&i| self.slots.get_mut(i)) {
            slot.link.connections.push(connection);
        }
    }

    /// A connection closed: drop its streams; when it carried our writer, move to another connection; when it
    /// was the last one, forget the queued broadcasts.
    pub(super) fn link_connection_closed(&mut self, peer: &PeerId, connection: ConnectionId) {
        let Some(index) = self.members.get(peer).copied() else {
            return;
        };
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let link = &mut slot.link;
        link.connections.retain(|c| *c != connection);
        link.spare.retain(|(c, _)| *c != connection);
        if link
            .writer
            .as_ref()
            .is_some_and(|w| w.connection == connection)
        {
            if let Some(writer) = link.writer.take() {
                writer.task.abort();
            }
        }
        if link.connections.is_empty() {
            link.queue.clear();
            if let Some(writer) = link.writer.take() {
                writer.task.abort();
            }
            link.spare.clear();
        }
        if link.writer.is_none() {
            self.replace_writer(*peer, index);
        }
    }

    /// Handles the broadcast behaviour's events.
    pub(super) fn on_direct(&mut self, event: DirectEvent) {
        match event {
            DirectEvent::Outbound {
                peer,
                connection,
                stream,
            } => self.on_outbound_stream(peer, connection, stream),
            DirectEvent::Inbound {
                peer,
                connection,
                stream,
            } => self.on_inbound_stream(peer, connection, stream),
            DirectEvent::OutboundFailed {
                peer,
                connection,
                error,
                unsupported,
            } => {
                if unsupported {
                    tracing::warn!(target: "p2p", %peer, %connection, %error, "cannot open a broadcast stream; not retrying on this connection");
                    return;
                }
                tracing::debug!(target: "p2p", %peer, %connection, %error, "opening a broadcast stream failed; retrying");
                self.reopen_later(peer, connection);
            }
        }
    }

    fn on_outbound_stream(&mut self, peer: PeerId, connection: ConnectionId, stream: Stream) {
        let Some(index) = self.members.get(&peer).copied() else {
            return;
        };
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        if !slot.link.connections.contains(&connection) {
            tracing::debug!(target: "p2p", %peer, %connection, "broadcast stream of a closed connection dropped");
            return;
        }
        if slot.link.writer.is_some() {
            slot.link.spare.push((connection, stream));
            return;
        }
        // The peer accepted our stream: the link works, so the redial schedule starts over.
        slot.backoff.reset();
        slot.outage_logged = false;
        self.start_writer(peer, index, connection, stream);
    }

    fn start_writer(
        &mut self,
        peer: PeerId,
        index: usize,
        connection: ConnectionId,
        stream: Stream,
    ) {
        let id = self.next_writer_id;
        self.next_writer_id = self.next_writer_id.wrapping_add(1);
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let queue = Arc::clone(&slot.link.queue);
        let task = tokio::spawn(run_writer(peer, id, stream, queue, self.notices_tx.clone()));
        slot.link.writer = Some(ActiveWriter {
            id,
            connection,
            task,
        });
        self.with_status(&peer, |s| s.subscribed = true);
        tracing::debug!(target: "p2p", %peer, %connection, "broadcast stream open");
    }

    /// Uses a spare outbound stream, or asks a live connection for a new one, or marks the peer unreachable for
    /// broadcasts.
    fn replace_writer(&mut self, peer: PeerId, index: usize) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        if let Some((connection, stream)) = slot.link.spare.pop() {
            self.start_writer(peer, index, connection, stream);
            return;
        }
        let newest = slot.link.connections.last().copied();
        self.with_status(&peer, |s| s.subscribed = false);
        if let Some(connection) = newest {
            self.reopen_later(peer, connection);
        }
    }

    fn reopen_later(&self, peer: PeerId, connection: ConnectionId) {
        let notices = self.notices_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REOPEN_DELAY).await;
            let _ = notices.send(LinkNotice::Reopen { peer, connection }).await;
        });
    }

    /// Handles a report from a stream task.
    pub(super) fn on_link_notice(&mut self, notice: LinkNotice) {
        match notice {
            LinkNotice::WriterStopped(stopped) => {
                let Some(index) = self.members.get(&stopped.peer).copied() else {
                    return;
                };
                let Some(slot) = self.slots.get_mut(index) else {
                    return;
                };
                if slot
                    .link
                    .writer
                    .as_ref()
                    .is_none_or(|w| w.id != stopped.writer_id)
                {
                    return;
                }
                slot.link.writer = None;
                tracing::debug!(target: "p2p", peer = %stopped.peer, error = %stopped.error, "broadcast stream failed");
                self.replace_writer(stopped.peer, index);
            }
            LinkNotice::Reopen { peer, connection } => {
                let Some(slot) = self.members.get(&peer).and_then(|&i| self.slots.get(i)) else {
                    return;
                };
                if slot.link.writer.is_none() && slot.link.connections.contains(&connection) {
                    self.swarm
                        .behaviour_mut()
                        .direct
                        .open_outbound(peer, connection);
                }
            }
        }
    }

    fn on_inbound_stream(&mut self, peer: PeerId, connection: ConnectionId, stream: Stream) {
        let Some(index) = self.members.get(&peer).copied() else {
            // The allow-list makes this unreachable; never read a stranger's stream.
            tracing::warn!(target: "p2p", %peer, "broadcast stream from a non-member dropped");
            return;
        };
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let link = &mut slot.link;
        link.reader_tasks.retain(|t| !t.is_finished());
        if link.readers.load(Ordering::Relaxed) >= MAX_INBOUND_STREAMS_PER_PEER {
            tracing::warn!(target: "p2p", %peer, %connection, max = MAX_INBOUND_STREAMS_PER_PEER,
                "too many inbound broadcast streams from one member; resetting the new one");
            return;
        }
        link.readers.fetch_add(1, Ordering::Relaxed);
        let task = tokio::spawn(run_reader(
            peer,
            connection,
            index,
            stream,
            self.max_message_bytes,
            self.sink.clone(),
            Arc::clone(&link.readers),
        ));
        link.reader_tasks.push(task);
        tracing::debug!(target: "p2p", %peer, %connection, "inbound broadcast stream accepted");
    }
}
