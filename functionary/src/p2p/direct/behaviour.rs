//! A minimal libp2p behaviour that hands out raw streams of the broadcast protocol: on every established
//! connection its handler opens one outbound stream (and another on request), and accepts the peer's inbound
//! streams. The streams themselves are driven by tasks outside the swarm (see `super::io`), so a slow peer never
//! stalls the swarm.

use std::collections::VecDeque;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::ReadyUpgrade;
use libp2p::core::Endpoint;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
    ListenUpgradeError,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, NotifyHandler, Stream, StreamUpgradeError, SubstreamProtocol, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, StreamProtocol};

/// What the behaviour reports to the swarm task.
pub(crate) enum Event {
    /// A stream we opened to `peer` for our broadcasts.
    Outbound {
        peer: PeerId,
        connection: ConnectionId,
        stream: Stream,
    },
    /// A stream `peer` opened to us for its broadcasts.
    Inbound {
        peer: PeerId,
        connection: ConnectionId,
        stream: Stream,
    },
    /// Opening an outbound stream failed (`unsupported`: the peer does not speak the protocol).
    OutboundFailed {
        peer: PeerId,
        connection: ConnectionId,
        error: String,
        unsupported: bool,
    },
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Outbound {
                peer, connection, ..
            } => write!(f, "Outbound({peer}, {connection})"),
            Event::Inbound {
                peer, connection, ..
            } => write!(f, "Inbound({peer}, {connection})"),
            Event::OutboundFailed {
                peer,
                connection,
                error,
                unsupported,
            } => write!(
                f,
                "OutboundFailed({peer}, {connection}, {error}, unsupported: {unsupported})"
            ),
        }
    }
}

/// The broadcast-stream behaviour.
pub(crate) struct Behaviour {
    protocol: StreamProtocol,
    pending: VecDeque<ToSwarm<Event, HandlerIn>>,
}

impl Behaviour {
    /// A behaviour speaking `protocol`.
    pub(crate) fn new(protocol: StreamProtocol) -> Self {
        Behaviour {
            protocol,
            pending: VecDeque::new(),
        }
    }

    /// Asks the handler of `connection` to open one more outbound stream (the previous one failed).
    pub(crate) fn open_outbound(&mut self, peer: PeerId, connection: ConnectionId) {
        self.pending.push_back(ToSwarm::NotifyHandler {
            peer_id: peer,
            handler: NotifyHandler::One(connection),
            event: HandlerIn::OpenOutbound,
        });
    }

    fn handler(&self) -> Handler {
        Handler {
            protocol: self.protocol.clone(),
            want_outbound: true,
            outbound_in_flight: false,
            events: VecDeque::new(),
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler())
    }

    fn on_swarm_event(&mut self, _event: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        let event = match event {
            HandlerOut::Outbound(stream) => Event::Outbound {
                peer,
                connection,
                stream,
            },
            HandlerOut::Inbound(stream) => Event::Inbound {
                peer,
                connection,
                stream,
            },
            HandlerOut::OutboundFailed { error, unsupported } => Event::OutboundFailed {
                peer,
                connection,
                error,
                unsupported,
            },
        };
        self.pending.push_back(ToSwarm::GenerateEvent(event));
    }

    fn poll(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        match self.pending.pop_front() {
            Some(event) => Poll::Ready(event),
            None => Poll::Pending,
        }
    }
}

/// Commands from the behaviour to a connection's handler.
#[derive(Debug)]
pub(crate) enum HandlerIn {
    /// Open one more outbound stream.
    OpenOutbound,
}

/// Reports from a connection's handler to the behaviour.
pub(crate) enum HandlerOut {
    Outbound(Stream),
    Inbound(Stream),
    OutboundFailed { error: String, unsupported: bool },
}

impl std::fmt::Debug for HandlerOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandlerOut::Outbound(_) => f.write_str("Outbound"),
            HandlerOut::Inbound(_) => f.write_str("Inbound"),
            HandlerOut::OutboundFailed { error, unsupported } => {
                write!(f, "OutboundFailed({error}, unsupported: {unsupported})")
            }
        }
    }
}

/// The per-connection handler: negotiates streams and passes them up; it never reads or writes them.
pub(crate) struct Handler {
    protocol: StreamProtocol,
    want_outbound: bool,
    outbound_in_flight: bool,
    events: VecDeque<HandlerOut>,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = HandlerIn;
    type ToBehaviour = HandlerOut;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
        SubstreamProtocol::new(ReadyUpgrade::new(self.protocol.clone()), ())
    }

    fn poll(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<
        ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>,
    > {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
        }
        if self.want_outbound && !self.outbound_in_flight {
            self.want_outbound = false;
            self.outbound_in_flight = true;
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(ReadyUpgrade::new(self.protocol.clone()), ()),
            });
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        match event {
            HandlerIn::OpenOutbound => self.want_outbound = true,
        }
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<
            Self::InboundProtocol,
            Self::OutboundProtocol,
            Self::InboundOpenInfo,
            Self::OutboundOpenInfo,
        >,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: stream,
                ..
            }) => self.events.push_back(HandlerOut::Inbound(stream)),
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                ..
            }) => {
                self.outbound_in_flight = false;
                self.events.push_back(HandlerOut::Outbound(stream));
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => {
                self.outbound_in_flight = false;
                let unsupported = matches!(error, StreamUpgradeError::NegotiationFailed);
                let error = match error {
                    StreamUpgradeError::Timeout => "timed out".to_string(),
                    StreamUpgradeError::NegotiationFailed => {
                        "peer does not support the broadcast protocol".to_string()
                    }
                    StreamUpgradeError::Io(e) => e.to_string(),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                self.events
                    .push_back(HandlerOut::OutboundFailed { error, unsupported });
            }
            ConnectionEvent::ListenUpgradeError(ListenUpgradeError { error, .. }) => match error {},
            _ => {}
        }
    }
}
