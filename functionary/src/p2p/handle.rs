//! [`start`] and the [`P2pHandle`] the daemon uses to talk to the swarm task.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::event_loop::EventLoop;
use super::swarm::{build_swarm, Behaviour};
use super::{
    BlockSource, P2pConfig, P2pCounters, P2pError, P2pEvent, PeerStatus, COMMAND_CHANNEL_CAPACITY,
    EVENT_CHANNEL_CAPACITY, MAX_MESSAGE_BYTES, MIN_MESSAGE_BYTES,
};

/// How long [`start`] waits for the listener to report its bound address.
const LISTEN_REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// A request from the handle to the swarm task.
pub(crate) enum Command {
    Broadcast(Vec<u8>),
    RequestBlocks {
        peer: PeerId,
        start_height: u32,
        count: u32,
    },
    Disconnect(PeerId),
    Shutdown,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Broadcast(bytes) => write!(f, "Broadcast({} bytes)", bytes.len()),
            Command::RequestBlocks {
                peer,
                start_height,
                count,
            } => write!(
                f,
                "RequestBlocks({peer}, from {start_height}, {count} blocks)"
            ),
            Command::Disconnect(peer) => write!(f, "Disconnect({peer})"),
            Command::Shutdown => write!(f, "Shutdown"),
        }
    }
}

/// State the swarm task publishes for the handle's synchronous getters.
#[derive(Debug)]
pub(crate) struct Shared {
    /// One entry per configured peer, in config order.
    pub(crate) peers: Vec<PeerStatus>,
    pub(crate) local_addrs: Vec<Multiaddr>,
    pub(crate) counters: P2pCounters,
}

/// Locks the shared state; a poisoned lock still holds consistent counters, so it is used as is.
pub(crate) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The daemon's side of the transport. Cheap to clone; the swarm task stops when [`P2pHandle::shutdown`] is called
/// or the last clone is dropped.
#[derive(Clone)]
pub struct P2pHandle {
    inner: Arc<Inner>,
}

struct Inner {
    local_peer_id: PeerId,
    max_message_bytes: usize,
    commands: mpsc::Sender<Command>,
    shared: Arc<Mutex<Shared>>,
    events: Mutex<Option<mpsc::Receiver<P2pEvent>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for P2pHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P2pHandle")
            .field("local_peer_id", &self.inner.local_peer_id)
            .finish_non_exhaustive()
    }
}

impl P2pHandle {
    /// This node's PeerId.
    pub fn local_peer_id(&self) -> PeerId {
        self.inner.local_peer_id
    }

    /// Sends `bytes` once to every member connected now. Never blocks. Payloads larger than `max_message_bytes` are
    /// dropped with a warning; "no member connected" is logged at debug. This node does not receive its own
    /// broadcast back. Every call is delivered, identical payloads included (nothing is deduplicated).
    pub fn broadcast(&self, bytes: Vec<u8>) {
        if bytes.len() > self.inner.max_message_bytes {
            tracing::warn!(target: "p2p", len = bytes.len(), max = self.inner.max_message_bytes, "broadcast larger than max_message_bytes dropped");
            return;
        }
        self.send(Command::Broadcast(bytes));
    }

    /// Asks `peer` for `count` blocks (clamped to [`super::MAX_BLOCKS_PER_REQUEST`]) from `start_height`. The answer
    /// arrives as [`P2pEvent::Blocks`] (empty when the request failed).
    pub fn request_blocks(&self, peer: PeerId, start_height: u32, count: u32) {
        self.send(Command::RequestBlocks {
            peer,
            start_height,
            count,
        });
    }

    /// Closes every connection to `peer` (e.g. it served bad blocks) and refuses it, inbound and outbound, for
    /// [`super::REDIAL_MAX`]; then it is allowed and redialed again.
    pub fn disconnect(&self, peer: PeerId) {
        self.send(Command::Disconnect(peer));
    }

    /// The status of every configured peer, in config order.
    pub fn peers(&self) -> Vec<PeerStatus> {
        lock(&self.inner.shared).peers.clone()
    }

    /// The addresses the listener is bound to (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<Multiaddr> {
        lock(&self.inner.shared).local_addrs.clone()
    }

    /// Transport-wide counters (denied connections, rejected messages, dropped events).
    pub fn counters(&self) -> P2pCounters {
        lock(&self.inner.shared).counters
    }

    /// The event receiver; `Some` on the first call only. Events are buffered until it is taken.
    pub fn take_events(&self) -> Option<mpsc::Receiver<P2pEvent>> {
        self.inner
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Stops the swarm task and waits until it has closed the listener and dropped its connections. Later calls
    /// return at once.
    pub async fn shutdown(&self) {
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(task) = task else { return };
        // If the task already ended the channel is closed; the join below still waits for it.
        let _ = self.inner.commands.send(Command::Shutdown).await;
        if let Err(e) = task.await {
            tracing::error!(target: "p2p", error = %e, "p2p task ended abnormally");
        }
    }

    fn send(&self, command: Command) {
        match self.inner.commands.try_send(command) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(command)) => {
                lock(&self.inner.shared).counters.commands_dropped += 1;
                tracing::warn!(target: "p2p", ?command, "p2p command channel full; command dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!(target: "p2p", "p2p task stopped; command ignored");
            }
        }
    }
}

fn validate(config: &P2pConfig) -> Result<(), P2pError> {
    let local = config.keypair.public().to_peer_id();
    if !(MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&config.max_message_bytes) {
        return Err(P2pError::Config(format!(
            "max_message_bytes {} is outside {MIN_MESSAGE_BYTES}..={MAX_MESSAGE_BYTES}",
            config.max_message_bytes
        )));
    }
    let mut seen = HashSet::new();
    for (peer, addr) in &config.peers {
        if *peer == local {
            return Err(P2pError::Config(format!(
                "peers lists this node's own PeerId {peer} (at {addr})"
            )));
        }
        if !seen.insert(*peer) {
            return Err(P2pError::Config(format!("peers lists PeerId {peer} twice")));
        }
    }
    Ok(())
}

/// The IP socket address of a `/ip4|ip6/../tcp/..` multiaddr.
fn socket_addr_of(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut iter = addr.iter();
    let ip = match iter.next()? {
        Protocol::Ip4(ip) => std::net::IpAddr::V4(ip),
        Protocol::Ip6(ip) => std::net::IpAddr::V6(ip),
        _ => return None,
    };
    match iter.next()? {
        Protocol::Tcp(port) => Some(SocketAddr::new(ip, port)),
        _ => None,
    }
}

/// libp2p's TCP listener sets SO_REUSEPORT, so on Linux a second libp2p node could share a port silently. Binding a
/// plain socket first turns "port in use" into an error.
fn probe_port_free(addr: &Multiaddr) -> Result<(), P2pError> {
    match socket_addr_of(addr) {
        Some(socket_addr) if socket_addr.port() != 0 => std::net::TcpListener::bind(socket_addr)
            .map(drop)
            .map_err(|source| P2pError::Listen {
                addr: addr.clone(),
                source,
            }),
        _ => Ok(()),
    }
}

/// Waits for the listener's first bound address (it is reported right after binding).
async fn first_listen_addr(
    swarm: &mut Swarm<Behaviour>,
    listen: &Multiaddr,
) -> Result<Multiaddr, P2pError> {
    let wait = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                SwarmEvent::ListenerClosed { reason, .. } => {
                    let source = reason
                        .err()
                        .unwrap_or_else(|| std::io::Error::other("listener closed"));
                    return Err(P2pError::Listen {
                        addr: listen.clone(),
                        source,
                    });
                }
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(P2pError::Listen {
                        addr: listen.clone(),
                        source: error,
                    });
                }
                other => {
                    tracing::trace!(target: "p2p", event = ?other, "swarm event before the listener was up")
                }
            }
        }
    };
    tokio::time::timeout(LISTEN_REPORT_TIMEOUT, wait)
        .await
        .unwrap_or_else(|_| {
            Err(P2pError::ListenTimeout {
                addr: listen.clone(),
                timeout_ms: u64::try_from(LISTEN_REPORT_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
            })
        })
}

/// Binds the listener (so "port in use" is an `Err(P2pError::Listen)` naming the address), then runs the swarm on
/// a tokio task that dials every configured peer and keeps redialing them. Must be called inside a tokio runtime.
pub async fn start(config: P2pConfig, blocks: Arc<dyn BlockSource>) -> Result<P2pHandle, P2pError> {
    validate(&config)?;
    let local_peer_id = config.keypair.public().to_peer_id();
    let mut swarm = build_swarm(&config)?;

    probe_port_free(&config.listen)?;
    swarm
        .listen_on(config.listen.clone())
        .map_err(|e| P2pError::Listen {
            addr: config.listen.clone(),
            source: match e {
                libp2p::TransportError::Other(io) => io,
                libp2p::TransportError::MultiaddrNotSupported(a) => std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("unsupported listen address {a}"),
                ),
            },
        })?;
    let bound = first_listen_addr(&mut swarm, &config.listen).await?;
    tracing::info!(target: "p2p", peer_id = %local_peer_id, address = %bound, peers = config.peers.len(), "p2p listening");

    let shared = Arc::new(Mutex::new(Shared {
        peers: config
            .peers
            .iter()
            .map(|(peer_id, addr)| PeerStatus {
                peer_id: *peer_id,
                addr: addr.clone(),
                connected: false,
                subscribed: false,
                connected_since_ms: None,
                last_message_ms: None,
                messages_in: 0,
                messages_out: 0,
            })
            .collect(),
        local_addrs: vec![bound],
        counters: P2pCounters::default(),
    }));
    let (event_tx, event_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let (command_tx, command_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);

    let event_loop = EventLoop::new(
        swarm,
        &config,
        blocks,
        Arc::clone(&shared),
        event_tx,
        command_rx,
    )?;
    let task = tokio::spawn(event_loop.run());

    Ok(P2pHandle {
        inner: Arc::new(Inner {
            local_peer_id,
            max_message_bytes: config.max_message_bytes,
            commands: command_tx,
            shared,
            events: Mutex::new(Some(event_rx)),
            task: Mutex::new(Some(task)),
        }),
    })
}
