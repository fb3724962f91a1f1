//! Block ranges: sending requests and tracking their answers, serving peers' requests from the
//! [`crate::p2p::BlockSource`].

use std::sync::Arc;

use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::PeerId;
use tokio::time::Instant;

use super::EventLoop;
use crate::p2p::codec::{BlockRequest, BlockResponse};
use crate::p2p::{P2pEvent, MAX_BLOCKS_PER_REQUEST, REQUEST_TIMEOUT};

/// Block-range requests served at the same time (each runs `BlockSource::blocks_from` on a blocking thread);
/// requests beyond this get an empty answer.
pub(super) const MAX_CONCURRENT_SERVES: usize = 4;
/// Block-range requests that may wait for a connection at once; more are answered empty at once.
const MAX_DEFERRED_REQUESTS: usize = 1024;

/// A block-range request we sent and still wait for.
pub(super) struct PendingRequest {
    peer: PeerId,
    start_height: u32,
    count: u32,
}

/// A block-range request waiting for a connection to its peer.
pub(super) struct DeferredRequest {
    peer: PeerId,
    start_height: u32,
    count: u32,
    deadline: Instant,
}

/// A response computed on a blocking thread, to be sent by the swarm task.
pub(super) struct ServedResponse {
    peer: PeerId,
    channel: ResponseChannel<BlockResponse>,
    response: BlockResponse,
}

impl EventLoop {
    /// Sends a block-range request (clamped to [`MAX_BLOCKS_PER_REQUEST`]); failures answer with no blocks. A
    /// request to a member we are not connected to waits (up to [`REQUEST_TIMEOUT`]) for the redial loop to connect:
    /// libp2p would otherwise fail it on the first failed dial attempt.
    pub(super) fn request_blocks(&mut self, peer: PeerId, start_height: u32, count: u32) {
        let count = count.min(MAX_BLOCKS_PER_REQUEST);
        if !self.members.contains_key(&peer) {
            tracing::warn!(target: "p2p", %peer, "block request to a peer that is not a federation member");
            self.emit(P2pEvent::Blocks {
                from: peer,
                start_height,
                blocks: Vec::new(),
            });
            return;
        }
        if count == 0 {
            self.emit(P2pEvent::Blocks {
                from: peer,
                start_height,
                blocks: Vec::new(),
            });
            return;
        }
        if self.swarm.is_connected(&peer) {
            self.send_block_request(peer, start_height, count);
        } else if self.deferred_requests.len() < MAX_DEFERRED_REQUESTS {
            tracing::debug!(target: "p2p", %peer, start_height, count, "block request waits for a connection");
            self.deferred_requests.push(DeferredRequest {
                peer,
                start_height,
                count,
                deadline: Instant::now() + REQUEST_TIMEOUT,
            });
        } else {
            tracing::warn!(target: "p2p", %peer, start_height, "too many block requests waiting for connections; answering empty");
            self.emit(P2pEvent::Blocks {
                from: peer,
                start_height,
                blocks: Vec::new(),
            });
        }
    }

    fn send_block_request(&mut self, peer: PeerId, start_height: u32, count: u32) {
        let request = BlockRequest {
            start_height,
            count,
        };
        let request_id = self
            .swarm
            .behaviour_mut()
            .blocks
            .send_request(&peer, request);
        self.pending_requests.insert(
            request_id,
            PendingRequest {
                peer,
                start_height,
                count,
            },
        );
        self.with_status(&peer, |s| s.messages_out += 1);
        tracing::debug!(target: "p2p", %peer, start_height, count, "block range requested");
    }

    /// Sends the requests that waited for a connection to `peer`.
    pub(super) fn send_deferred_requests(&mut self, peer: &PeerId) {
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred_requests)
            .into_iter()
            .partition(|r| r.peer == *peer);
        self.deferred_requests = waiting;
        for r in ready {
            self.send_block_request(r.peer, r.start_height, r.count);
        }
    }

    /// The earliest deadline of a request waiting for a connection.
    pub(super) fn next_deferred_deadline(&self) -> Option<Instant> {
        self.deferred_requests.iter().map(|r| r.deadline).min()
    }

    /// Answers, with no blocks, the requests that waited too long for a connection.
    pub(super) fn expire_deferred_requests(&mut self) {
        let now = Instant::now();
        let (expired, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred_requests)
            .into_iter()
            .partition(|r| r.deadline <= now);
        self.deferred_requests = waiting;
        for r in expired {
            tracing::warn!(target: "p2p", peer = %r.peer, start_height = r.start_height, "block request failed: peer not connected in time");
            self.emit(P2pEvent::Blocks {
                from: r.peer,
                start_height: r.start_height,
                blocks: Vec::new(),
            });
        }
    }

    /// Handles the request-response protocol's events.
    pub(super) fn on_blocks(
        &mut self,
        event: request_response::Event<BlockRequest, BlockResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.serve(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => self.on_response(peer, request_id, response),
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(pending) = self.pending_requests.remove(&request_id) {
                    tracing::warn!(target: "p2p", %peer, start_height = pending.start_height, %error, "block request failed");
                    self.emit(P2pEvent::Blocks {
                        from: pending.peer,
                        start_height: pending.start_height,
                        blocks: Vec::new(),
                    });
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(target: "p2p", %peer, %error, "serving a block request failed");
            }
            request_response::Event::ResponseSent { peer, .. } => {
                self.with_status(&peer, |s| s.messages_out += 1);
            }
        }
    }

    fn on_response(
        &mut self,
        peer: PeerId,
        request_id: OutboundRequestId,
        response: BlockResponse,
    ) {
        let Some(pending) = self.pending_requests.remove(&request_id) else {
            tracing::debug!(target: "p2p", %peer, "response to an unknown request dropped");
            return;
        };
        self.note_inbound(&peer);
        let got = response.blocks.len();
        let blocks = if got > usize::try_from(pending.count).unwrap_or(usize::MAX) {
            tracing::warn!(target: "p2p", %peer, asked = pending.count, got, "peer sent more blocks than asked; response dropped");
            Vec::new()
        } else {
            response.blocks
        };
        tracing::debug!(target: "p2p", %peer, start_height = pending.start_height, blocks = blocks.len(), "block range received");
        self.emit(P2pEvent::Blocks {
            from: pending.peer,
            start_height: pending.start_height,
            blocks,
        });
    }

    /// Answers a block request from a blocking thread; at most [`MAX_CONCURRENT_SERVES`] at once.
    fn serve(
        &mut self,
        peer: PeerId,
        request: BlockRequest,
        channel: ResponseChannel<BlockResponse>,
    ) {
        if !self.members.contains_key(&peer) {
            tracing::warn!(target: "p2p", %peer, "block request from a non-member dropped");
            return;
        }
        self.note_inbound(&peer);
        let count = request.count.min(MAX_BLOCKS_PER_REQUEST);
        let permit = match Arc::clone(&self.serve_permits).try_acquire_owned() {
            Ok(permit) if count > 0 => permit,
            _ => {
                if count > 0 {
                    tracing::debug!(target: "p2p", %peer, "too many block requests in flight; answering empty");
                }
                self.respond(channel, BlockResponse::default());
                return;
            }
        };
        let source = Arc::clone(&self.blocks);
        let served_tx = self.served_tx.clone();
        let max_bytes = self.max_message_bytes;
        let start_height = request.start_height;
        tokio::task::spawn_blocking(move || {
            let overhead = usize::try_from(count)
                .unwrap_or(usize::MAX)
                .saturating_add(1)
                .saturating_mul(5);
            let mut blocks =
                source.blocks_from(start_height, count, max_bytes.saturating_sub(overhead));
            blocks.truncate(usize::try_from(count).unwrap_or(usize::MAX));
            let (response, dropped) = BlockResponse::fitting(blocks, max_bytes);
            if dropped > 0 {
                tracing::debug!(target: "p2p", %peer, start_height, dropped, "blocks beyond max_message_bytes left out");
            }
            if served_tx
                .blocking_send(ServedResponse {
                    peer,
                    channel,
                    response,
                })
                .is_err()
            {
                tracing::debug!(target: "p2p", %peer, "p2p task stopped before a block response was sent");
            }
            drop(permit);
        });
    }

    /// Sends a response computed on a blocking thread.
    pub(super) fn on_served(&mut self, served: ServedResponse) {
        tracing::debug!(target: "p2p", peer = %served.peer, blocks = served.response.blocks.len(), "serving block range");
        self.respond(served.channel, served.response);
    }

    fn respond(&mut self, channel: ResponseChannel<BlockResponse>, response: BlockResponse) {
        if self
            .swarm
            .behaviour_mut()
            .blocks
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!(target: "p2p", "requester went away before the block response was sent");
        }
    }
}
