//! The swarm task: executes handle commands, keeps the full mesh dialed, fans broadcasts out to the members'
//! queues and manages the broadcast streams, serves and tracks block-range requests, and reports [`P2pEvent`]s.
//! Received broadcasts do not pass through this task: the stream reader tasks deliver them to the daemon.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use libp2p::request_response::OutboundRequestId;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, ListenError, SwarmEvent};
use libp2p::{allow_block_list, ping, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use super::backoff::Backoff;
use super::direct::io::{EventSink, LinkNotice};
use super::direct::PeerLink;
use super::handle::{lock, Command, Shared};
use super::swarm::{Behaviour, BehaviourEvent};
use super::{
    unix_ms, BlockSource, P2pConfig, P2pError, P2pEvent, OUTBOUND_QUEUE_BYTES,
    OUTBOUND_QUEUE_FRAMES, REDIAL_INITIAL, REDIAL_MAX,
};

mod blocks;
mod broadcast;

use blocks::{DeferredRequest, PendingRequest, ServedResponse, MAX_CONCURRENT_SERVES};

/// A configured member and its redial schedule.
struct PeerSlot {
    peer_id: PeerId,
    addr: Multiaddr,
    backoff: Backoff,
    /// When to dial next; `None` while connected or while a dial is in flight.
    next_dial: Option<Instant>,
    /// Removed from the allow-list by [`Command::Disconnect`] until `next_dial`.
    quarantined: bool,
    /// "Unreachable" was logged for the current outage.
    outage_logged: bool,
    /// Our broadcast stream to the member and its queue, and the readers of its streams.
    link: PeerLink,
}

/// The state of the swarm task.
pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    local_peer_id: PeerId,
    /// PeerId → index into `slots` and `Shared::peers`.
    members: HashMap<PeerId, usize>,
    slots: Vec<PeerSlot>,
    max_message_bytes: usize,
    blocks: Arc<dyn BlockSource>,
    serve_permits: Arc<Semaphore>,
    served_tx: mpsc::Sender<ServedResponse>,
    served_rx: mpsc::Receiver<ServedResponse>,
    pending_requests: HashMap<OutboundRequestId, PendingRequest>,
    deferred_requests: Vec<DeferredRequest>,
    shared: Arc<Mutex<Shared>>,
    sink: EventSink,
    commands: mpsc::Receiver<Command>,
    notices_tx: mpsc::Sender<LinkNotice>,
    notices_rx: mpsc::Receiver<LinkNotice>,
    next_writer_id: u64,
}

impl EventLoop {
    /// Takes a swarm whose listener is up and registers the members' addresses.
    pub(crate) fn new(
        mut swarm: Swarm<Behaviour>,
        config: &P2pConfig,
        blocks: Arc<dyn BlockSource>,
        shared: Arc<Mutex<Shared>>,
        events: mpsc::Sender<P2pEvent>,
        commands: mpsc::Receiver<Command>,
    ) -> Result<Self, P2pError> {
        let now = Instant::now();
        let mut members = HashMap::new();
        let mut slots = Vec::with_capacity(config.peers.len());
        for (index, (peer_id, addr)) in config.peers.iter().enumerate() {
            swarm.add_peer_address(*peer_id, addr.clone());
            members.insert(*peer_id, index);
            slots.push(PeerSlot {
                peer_id: *peer_id,
                addr: addr.clone(),
                backoff: Backoff::new(REDIAL_INITIAL, REDIAL_MAX),
                next_dial: Some(now),
                quarantined: false,
                outage_logged: false,
                link: PeerLink::new(
                    OUTBOUND_QUEUE_FRAMES,
                    OUTBOUND_QUEUE_BYTES.max(config.max_message_bytes),
                ),
            });
        }
        let (served_tx, served_rx) = mpsc::channel(MAX_CONCURRENT_SERVES * 2);
        // Writers report only when they stop, reopen timers fire at most once per stream failure.
        let (notices_tx, notices_rx) = mpsc::channel(config.peers.len().saturating_mul(4).max(16));
        Ok(EventLoop {
            local_peer_id: *swarm.local_peer_id(),
            swarm,
            members,
            slots,
            max_message_bytes: config.max_message_bytes,
            blocks,
            serve_permits: Arc::new(Semaphore::new(MAX_CONCURRENT_SERVES)),
            served_tx,
            served_rx,
            pending_requests: HashMap::new(),
            deferred_requests: Vec::new(),
            sink: EventSink {
                events,
                shared: Arc::clone(&shared),
            },
            shared,
            commands,
            notices_tx,
            notices_rx,
            next_writer_id: 0,
        })
    }

    /// Runs until a shutdown command arrives or every handle is dropped; then drops the swarm (listener and
    /// connections).
    pub(crate) async fn run(mut self) {
        self.dial_due_peers();
        loop {
            let next_wake = self
                .slots
                .iter()
                .filter_map(|s| s.next_dial)
                .chain(self.next_deferred_deadline())
                .min();
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(served) = self.served_rx.recv() => self.on_served(served),
                Some(notice) = self.notices_rx.recv() => self.on_link_notice(notice),
                () = sleep_until(next_wake) => {
                    self.dial_due_peers();
                    self.expire_deferred_requests();
                }
            }
        }
        for slot in &mut self.slots {
            slot.link.abort_all();
        }
        let mut shared = lock(&self.shared);
        for status in &mut shared.peers {
            status.connected = false;
            status.subscribed = false;
            status.connected_since_ms = None;
        }
        shared.local_addrs.clear();
        drop(shared);
        tracing::info!(target: "p2p", peer_id = %self.local_peer_id, "p2p stopped");
    }

    fn emit(&self, event: P2pEvent) {
        self.sink.emit(event);
    }

    fn with_status(&self, peer: &PeerId, update: impl FnOnce(&mut super::PeerStatus)) {
        if let Some(&index) = self.members.get(peer) {
            if let Some(status) = lock(&self.shared).peers.get_mut(index) {
                update(status);
            }
        }
    }

    fn note_inbound(&self, peer: &PeerId) {
        let now = unix_ms();
        self.with_status(peer, |s| {
            s.messages_in += 1;
            s.last_message_ms = Some(now);
        });
    }

    // ---- dialing -------------------------------------------------------------------------------------------------

    fn dial_due_peers(&mut self) {
        let now = Instant::now();
        for index in 0..self.slots.len() {
            let Some(slot) = self.slots.get_mut(index) else {
                continue;
            };
            if slot.next_dial.is_none_or(|at| at > now) {
                continue;
            }
            slot.next_dial = None;
            let peer = slot.peer_id;
            if slot.quarantined {
                slot.quarantined = false;
                self.swarm.behaviour_mut().allow.allow_peer(peer);
                tracing::info!(target: "p2p", %peer, "quarantine over; peer allowed again");
            }
            if self.swarm.is_connected(&peer) {
                continue;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![slot.addr.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .allocate_new_port()
                .build();
            match self.swarm.dial(opts) {
                Ok(()) => tracing::trace!(target: "p2p", %peer, "dialing"),
                // Another dial is in flight; its outcome reschedules us.
                Err(DialError::DialPeerConditionFalse(_)) => {}
                Err(error) => {
                    tracing::debug!(target: "p2p", %peer, %error, "dial not started");
                    self.schedule_redial(&peer);
                }
            }
        }
    }

    /// Schedules the next dial of `peer` after its backoff delay, unless one is already scheduled.
    fn schedule_redial(&mut self, peer: &PeerId) {
        if self.swarm.is_connected(peer) {
            return;
        }
        let Some(slot) = self.members.get(peer).and_then(|&i| self.slots.get_mut(i)) else {
            return;
        };
        if slot.next_dial.is_none() {
            let delay = slot.backoff.next_delay();
            slot.next_dial = Some(Instant::now() + delay);
            tracing::trace!(target: "p2p", %peer, delay_ms = delay.as_millis(), "redial scheduled");
            if delay >= REDIAL_MAX && !slot.outage_logged && !slot.quarantined {
                slot.outage_logged = true;
                tracing::warn!(target: "p2p", %peer, addr = %slot.addr, retry_ms = delay.as_millis(), "member unreachable; still redialing");
            }
        }
    }

    // ---- commands ------------------------------------------------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Broadcast(bytes) => self.broadcast(bytes),
            Command::RequestBlocks {
                peer,
                start_height,
                count,
            } => self.request_blocks(peer, start_height, count),
            Command::Disconnect(peer) => self.quarantine(peer),
            Command::Shutdown => {}
        }
    }

    /// Closes every connection to `peer` and refuses it (both ways) for [`REDIAL_MAX`]; then it is redialed.
    fn quarantine(&mut self, peer: PeerId) {
        let Some(slot) = self.members.get(&peer).and_then(|&i| self.slots.get_mut(i)) else {
            tracing::warn!(target: "p2p", %peer, "disconnect requested for a peer that is not a federation member");
            return;
        };
        slot.quarantined = true;
        slot.backoff.saturate();
        slot.next_dial = Some(Instant::now() + REDIAL_MAX);
        // Closes the peer's connections and denies new ones until the quarantine ends.
        self.swarm.behaviour_mut().allow.disallow_peer(peer);
        tracing::info!(target: "p2p", %peer, quarantine_ms = REDIAL_MAX.as_millis(), "disconnecting peer on request");
    }

    // ---- swarm events --------------------------------------------------------------------------------------------

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Direct(event)) => self.on_direct(event),
            SwarmEvent::Behaviour(BehaviourEvent::Blocks(event)) => self.on_blocks(event),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => self.on_ping(event),
            SwarmEvent::Behaviour(BehaviourEvent::Allow(never)) => match never {},
            SwarmEvent::Behaviour(BehaviourEvent::Limits(never)) => match never {},
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                let Some(slot) = self
                    .members
                    .get(&peer_id)
                    .and_then(|&i| self.slots.get_mut(i))
                else {
                    // Unreachable while the allow-list is in place; close it anyway.
                    tracing::warn!(target: "p2p", peer = %peer_id, "connection from a non-member slipped through; closing");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                };
                // The backoff is reset only once the peer accepts our broadcast stream; a peer that denies the
                // connection right after the handshake keeps backing off.
                slot.next_dial = None;
                if num_established.get() == 1 {
                    let now = unix_ms();
                    self.with_status(&peer_id, |s| {
                        s.connected = true;
                        s.connected_since_ms = Some(now);
                    });
                    tracing::info!(target: "p2p", peer = %peer_id, remote = %endpoint.get_remote_address(), "peer connected");
                    self.emit(P2pEvent::PeerConnected(peer_id));
                }
                self.link_connection_established(&peer_id, connection_id);
                self.send_deferred_requests(&peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                self.link_connection_closed(&peer_id, connection_id);
                if num_established == 0 && self.members.contains_key(&peer_id) {
                    self.with_status(&peer_id, |s| {
                        s.connected = false;
                        s.subscribed = false;
                        s.connected_since_ms = None;
                    });
                    let cause = cause
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "closed locally".into());
                    tracing::info!(target: "p2p", peer = %peer_id, %cause, "peer disconnected");
                    self.emit(P2pEvent::PeerDisconnected(peer_id));
                    self.schedule_redial(&peer_id);
                }
            }
            SwarmEvent::IncomingConnectionError {
                peer_id,
                send_back_addr,
                error,
                ..
            } => match error {
                ListenError::Denied { cause }
                    if cause
                        .downcast_ref::<allow_block_list::NotAllowed>()
                        .is_some() =>
                {
                    if let Some(peer) = peer_id.filter(|p| self.members.contains_key(p)) {
                        tracing::debug!(target: "p2p", %peer, "refused a connection from a quarantined member");
                        return;
                    }
                    lock(&self.shared).counters.denied_connections += 1;
                    tracing::warn!(target: "p2p", peer = ?peer_id, remote = %send_back_addr, "denied connection from a peer that is not a federation member");
                }
                ListenError::Denied { cause } => {
                    tracing::warn!(target: "p2p", peer = ?peer_id, remote = %send_back_addr, %cause, "incoming connection refused");
                }
                error => {
                    tracing::debug!(target: "p2p", peer = ?peer_id, remote = %send_back_addr, %error, "incoming connection failed");
                }
            },
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                if self.members.contains_key(&peer) {
                    tracing::debug!(target: "p2p", %peer, %error, "dial failed");
                    self.schedule_redial(&peer);
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let mut shared = lock(&self.shared);
                if !shared.local_addrs.contains(&address) {
                    tracing::info!(target: "p2p", %address, "listening");
                    shared.local_addrs.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                lock(&self.shared).local_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                tracing::error!(target: "p2p", ?addresses, ?reason, "p2p listener closed");
                lock(&self.shared)
                    .local_addrs
                    .retain(|a| !addresses.contains(a));
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::error!(target: "p2p", %error, "p2p listener error");
            }
            other => tracing::trace!(target: "p2p", event = ?other, "swarm event"),
        }
    }

    /// A connection whose pings time out or fail is closed, so that it is redialed.
    fn on_ping(&mut self, event: ping::Event) {
        match event.result {
            Ok(rtt) => {
                tracing::trace!(target: "p2p", peer = %event.peer, rtt_us = rtt.as_micros(), "ping")
            }
            Err(ping::Failure::Unsupported) => {
                tracing::debug!(target: "p2p", peer = %event.peer, "peer does not support ping")
            }
            Err(error) => {
                tracing::info!(target: "p2p", peer = %event.peer, %error, "ping failed; closing the connection");
                self.swarm.close_connection(event.connection);
            }
        }
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
