//! Gossip: publishing broadcasts and judging every received message (author and forwarder must be members).

use libp2p::gossipsub::{self, MessageAcceptance, PublishError};
use libp2p::PeerId;

use super::EventLoop;
use crate::p2p::handle::lock;
use crate::p2p::P2pEvent;

/// What to do with a gossip message.
enum Verdict {
    Accept(PeerId),
    Ignore(&'static str),
    Reject(&'static str),
}

impl EventLoop {
    /// Publishes a broadcast; "nobody subscribed yet" and duplicates are logged at debug.
    pub(super) fn broadcast(&mut self, bytes: Vec<u8>) {
        let len = bytes.len();
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), bytes)
        {
            Ok(message_id) => {
                tracing::trace!(target: "p2p", %message_id, len, "published");
                let mut shared = lock(&self.shared);
                for status in shared.peers.iter_mut().filter(|s| s.connected) {
                    status.messages_out += 1;
                }
            }
            Err(PublishError::NoPeersSubscribedToTopic) => {
                tracing::debug!(target: "p2p", len, "broadcast not sent: no member subscribed yet");
            }
            Err(PublishError::Duplicate) => {
                tracing::debug!(target: "p2p", len, "broadcast not sent: identical payload already published");
            }
            Err(error) => tracing::warn!(target: "p2p", len, ?error, "broadcast failed"),
        }
    }

    /// Decides whether a message may be delivered and forwarded.
    fn judge(&self, propagation_source: &PeerId, message: &gossipsub::Message) -> Verdict {
        let Some(author) = message.source else {
            return Verdict::Reject("message has no author");
        };
        if author == self.local_peer_id {
            return Verdict::Ignore("our own message came back");
        }
        if !self.members.contains_key(&author) {
            return Verdict::Reject("author is not a federation member");
        }
        if !self.members.contains_key(propagation_source) {
            return Verdict::Reject("forwarded by a peer that is not a federation member");
        }
        if message.topic != self.topic_hash {
            return Verdict::Reject("unexpected topic");
        }
        if message.data.len() > self.max_message_bytes {
            return Verdict::Reject("payload larger than max_message_bytes");
        }
        Verdict::Accept(author)
    }

    /// Accepts or rejects each received message (gossipsub forwards only accepted ones) and reports the accepted.
    pub(super) fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let verdict = self.judge(&propagation_source, &message);
                let acceptance = match verdict {
                    Verdict::Accept(_) => MessageAcceptance::Accept,
                    Verdict::Ignore(_) => MessageAcceptance::Ignore,
                    Verdict::Reject(_) => MessageAcceptance::Reject,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
                match verdict {
                    Verdict::Accept(from) => {
                        self.note_inbound(&from);
                        self.emit(P2pEvent::Message {
                            from,
                            bytes: message.data,
                        });
                    }
                    Verdict::Ignore(reason) => {
                        tracing::debug!(target: "p2p", %propagation_source, reason, "gossip message ignored");
                    }
                    Verdict::Reject(reason) => {
                        lock(&self.shared).counters.rejected_messages += 1;
                        tracing::warn!(target: "p2p", author = ?message.source, %propagation_source, reason, "gossip message rejected");
                    }
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic, .. } => {
                if topic == self.topic_hash {
                    tracing::debug!(target: "p2p", peer = %peer_id, "peer subscribed");
                    if let Some(slot) = self
                        .members
                        .get(&peer_id)
                        .and_then(|&i| self.slots.get_mut(i))
                    {
                        slot.backoff.reset();
                        slot.outage_logged = false;
                    }
                    self.with_status(&peer_id, |s| s.subscribed = true);
                }
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                if topic == self.topic_hash {
                    tracing::debug!(target: "p2p", peer = %peer_id, "peer unsubscribed");
                    self.with_status(&peer_id, |s| s.subscribed = false);
                }
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::warn!(target: "p2p", peer = %peer_id, "peer does not speak gossipsub");
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                tracing::warn!(target: "p2p", peer = %peer_id, ?failed_messages, "peer is slow to take our messages");
            }
            #[allow(unreachable_patterns)]
            other => tracing::trace!(target: "p2p", event = ?other, "gossipsub event"),
        }
    }
}
