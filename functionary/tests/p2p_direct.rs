//! Direct-send broadcasts over real TCP sockets on 127.0.0.1: exactly-once delivery on a full mesh, hostile frames,
//! a stalled member, reconnects, and strangers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use functionary::p2p::{
    self, BlockSource, P2pConfig, P2pEvent, P2pHandle, BROADCAST_PROTOCOL, OUTBOUND_QUEUE_FRAMES,
};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc::Receiver;

const MAX_MESSAGE_BYTES: usize = 64 * 1024;
const DEADLINE: Duration = Duration::from_secs(20);

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

struct NoBlocks;

impl BlockSource for NoBlocks {
    fn blocks_from(&self, _: u32, _: u32, _: usize) -> Vec<Vec<u8>> {
        Vec::new()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Clone)]
struct Member {
    keypair: Keypair,
    peer_id: PeerId,
    addr: Multiaddr,
}

fn member() -> Member {
    let keypair = Keypair::generate_ed25519();
    Member {
        peer_id: keypair.public().to_peer_id(),
        keypair,
        addr: format!("/ip4/127.0.0.1/tcp/{}", free_port())
            .parse()
            .unwrap(),
    }
}

fn config(me: &Member, peers: &[&Member]) -> P2pConfig {
    P2pConfig {
        keypair: me.keypair.clone(),
        listen: me.addr.clone(),
        peers: peers.iter().map(|m| (m.peer_id, m.addr.clone())).collect(),
        max_message_bytes: MAX_MESSAGE_BYTES,
    }
}

struct Node {
    handle: P2pHandle,
    events: Receiver<P2pEvent>,
}

async fn start(me: &Member, peers: &[&Member]) -> Node {
    let handle = p2p::start(config(me, peers), Arc::new(NoBlocks))
        .await
        .expect("start p2p node");
    let events = handle.take_events().expect("events taken once");
    Node { handle, events }
}

fn others(members: &[Member], i: usize) -> Vec<&Member> {
    members
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, m)| m)
        .collect()
}

/// True when `node` is connected to every peer in `peers` and has its broadcast stream open to each.
fn linked(node: &P2pHandle, peers: &[&Member]) -> bool {
    let status = node.peers();
    peers.iter().all(|m| {
        status
            .iter()
            .any(|s| s.peer_id == m.peer_id && s.connected && s.subscribed)
    })
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < DEADLINE,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Collects `Message` events until `window` passes with no message at all.
async fn messages_until_quiet(
    events: &mut Receiver<P2pEvent>,
    window: Duration,
) -> Vec<(PeerId, Vec<u8>)> {
    let mut out = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(window, events.recv()).await {
        if let P2pEvent::Message { from, bytes } = event {
            out.push((from, bytes));
        }
    }
    out
}

/// Collects `count` messages (skipping other events), failing after [`DEADLINE`].
async fn collect_messages(events: &mut Receiver<P2pEvent>, count: usize) -> Vec<(PeerId, Vec<u8>)> {
    let until = tokio::time::Instant::now() + DEADLINE;
    let mut out = Vec::new();
    while out.len() < count {
        match tokio::time::timeout_at(until, events.recv()).await {
            Ok(Some(P2pEvent::Message { from, bytes })) => out.push((from, bytes)),
            Ok(Some(_)) => {}
            Ok(None) => panic!("event channel closed"),
            Err(_) => panic!("only {} of {count} messages within {DEADLINE:?}", out.len()),
        }
    }
    out
}

async fn next_message(events: &mut Receiver<P2pEvent>) -> (PeerId, Vec<u8>) {
    collect_messages(events, 1).await.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_node_mesh_delivers_every_broadcast_exactly_once_in_order() {
    init_logs();
    let members: Vec<Member> = (0..4).map(|_| member()).collect();
    let mut nodes = Vec::new();
    for i in 0..members.len() {
        nodes.push(start(&members[i], &others(&members, i)).await);
    }
    wait_until("all four nodes are linked", || {
        nodes
            .iter()
            .enumerate()
            .all(|(i, n)| linked(&n.handle, &others(&members, i)))
    })
    .await;

    // Every node broadcasts 50 messages, interleaved; one payload is repeated on purpose (no deduplication).
    const PER_NODE: usize = 50;
    for k in 0..PER_NODE {
        for (i, node) in nodes.iter().enumerate() {
            let payload = if k == PER_NODE - 1 {
                format!("from {i} #{}", k - 1)
            } else {
                format!("from {i} #{k}")
            };
            node.handle.broadcast(payload.into_bytes());
        }
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        let got = collect_messages(&mut node.events, PER_NODE * 3).await;
        let extra = messages_until_quiet(&mut node.events, Duration::from_millis(500)).await;
        assert!(extra.is_empty(), "node {i} got extra messages: {extra:?}");
        let mut by_sender: HashMap<PeerId, Vec<String>> = HashMap::new();
        for (from, bytes) in got {
            by_sender
                .entry(from)
                .or_default()
                .push(String::from_utf8(bytes).unwrap());
        }
        assert_eq!(by_sender.len(), 3, "node {i} hears the three others");
        for (j, m) in members.iter().enumerate().filter(|(j, _)| *j != i) {
            let mut expected: Vec<String> = (0..PER_NODE - 1)
                .map(|k| format!("from {j} #{k}"))
                .collect();
            expected.push(format!("from {j} #{}", PER_NODE - 2));
            assert_eq!(
                by_sender.get(&m.peer_id),
                Some(&expected),
                "node {i}: node {j}'s broadcasts exactly once each, in order, sender = authenticated PeerId"
            );
        }
        assert!(
            !by_sender.contains_key(&members[i].peer_id),
            "no echo of our own broadcasts"
        );
    }
    // The largest payload goes through, one byte more is refused by the handle.
    nodes[0].handle.broadcast(vec![0xA5; MAX_MESSAGE_BYTES]);
    assert_eq!(
        next_message(&mut nodes[1].events).await,
        (members[0].peer_id, vec![0xA5; MAX_MESSAGE_BYTES])
    );
    nodes[0].handle.broadcast(vec![0x5A; MAX_MESSAGE_BYTES + 1]);
    assert!(
        messages_until_quiet(&mut nodes[1].events, Duration::from_millis(500))
            .await
            .is_empty()
    );
    let status = nodes[1].handle.peers();
    let from0 = status
        .iter()
        .find(|s| s.peer_id == members[0].peer_id)
        .unwrap();
    assert_eq!(from0.messages_in, PER_NODE as u64 + 1, "{from0:?}");
    assert!(from0.messages_out >= PER_NODE as u64);
    for node in &nodes {
        assert_eq!(node.handle.counters().rejected_messages, 0);
        assert_eq!(node.handle.counters().broadcasts_dropped, 0);
        node.handle.shutdown().await;
    }
}

/// A member that speaks the broadcast protocol with a raw request-response client, so it can write any bytes.
mod hostile {
    use super::*;
    use futures::{AsyncRead, AsyncWrite, AsyncWriteExt};
    use libp2p::core::upgrade::Version;
    use libp2p::swarm::SwarmEvent;
    use libp2p::{noise, request_response, tcp, yamux, StreamProtocol, Swarm, Transport};

    /// Writes the request bytes verbatim on the stream, then waits for the stream to end.
    #[derive(Clone, Default)]
    pub struct RawCodec;

    impl request_response::Codec for RawCodec {
        type Protocol = StreamProtocol;
        type Request = Vec<u8>;
        type Response = ();

        async fn read_request<T: AsyncRead + Unpin + Send>(
            &mut self,
            _: &StreamProtocol,
            _: &mut T,
        ) -> std::io::Result<Vec<u8>> {
            Err(std::io::Error::other("the hostile peer serves nothing"))
        }
        async fn read_response<T: AsyncRead + Unpin + Send>(
            &mut self,
            _: &StreamProtocol,
            io: &mut T,
        ) -> std::io::Result<()> {
            use futures::AsyncReadExt;
            let mut buf = Vec::new();
            io.read_to_end(&mut buf).await.map(drop)
        }
        async fn write_request<T: AsyncWrite + Unpin + Send>(
            &mut self,
            _: &StreamProtocol,
            io: &mut T,
            req: Vec<u8>,
        ) -> std::io::Result<()> {
            io.write_all(&req).await?;
            io.flush().await
        }
        async fn write_response<T: AsyncWrite + Unpin + Send>(
            &mut self,
            _: &StreamProtocol,
            _: &mut T,
            _: (),
        ) -> std::io::Result<()> {
            Ok(())
        }
    }

    pub type Hostile = Swarm<request_response::Behaviour<RawCodec>>;

    pub fn swarm(keypair: &Keypair) -> Hostile {
        let transport = tcp::tokio::Transport::new(tcp::Config::new().nodelay(true))
            .upgrade(Version::V1Lazy)
            .authenticate(noise::Config::new(keypair).unwrap())
            .multiplex(yamux::Config::default())
            .boxed();
        let behaviour = request_response::Behaviour::with_codec(
            RawCodec,
            [(
                StreamProtocol::new(BROADCAST_PROTOCOL),
                request_response::ProtocolSupport::Outbound,
            )],
            request_response::Config::default().with_request_timeout(Duration::from_secs(60)),
        );
        Swarm::new(
            transport,
            behaviour,
            keypair.public().to_peer_id(),
            libp2p::swarm::Config::with_tokio_executor()
                .with_idle_connection_timeout(Duration::from_secs(3600)),
        )
    }

    /// Opens a broadcast stream to `peer`, writes `bytes` and waits until the stream is over (reset or closed).
    pub async fn send_raw(swarm: &mut Hostile, peer: PeerId, bytes: Vec<u8>) -> String {
        use futures::StreamExt;
        let id = swarm.behaviour_mut().send_request(&peer, bytes);
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let event = tokio::time::timeout_at(until, swarm.select_next_some())
                .await
                .expect("the hostile stream ends in time");
            match event {
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                }) if request_id == id => return format!("failed: {error}"),
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, .. },
                    ..
                }) if request_id == id => return "stream ended by the node".into(),
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_truncated_frames_reset_the_stream_and_the_node_keeps_working() {
    init_logs();
    let (a, b, h) = (member(), member(), member());
    // H is a configured member of A (so its connection is allowed), but it writes raw bytes.
    let mut node_a = start(&a, &[&b, &h]).await;
    let mut node_b = start(&b, &[&a]).await;
    wait_until("A and B are linked", || {
        linked(&node_a.handle, &[&b]) && linked(&node_b.handle, &[&a])
    })
    .await;

    let mut hostile = hostile::swarm(&h.keypair);
    hostile.add_peer_address(a.peer_id, a.addr.clone());

    // A valid frame, then a frame header announcing 4 GiB: the valid one is delivered with H as sender, then the
    // stream is reset before anything is allocated.
    let mut bytes = vec![0, 0, 0, 5];
    bytes.extend_from_slice(b"valid");
    bytes.extend_from_slice(&u32::MAX.to_be_bytes());
    bytes.extend_from_slice(&[0xEE; 1000]);
    let outcome = hostile::send_raw(&mut hostile, a.peer_id, bytes).await;
    println!("hostile stream 1: {outcome}");
    assert_eq!(
        next_message(&mut node_a.events).await,
        (h.peer_id, b"valid".to_vec())
    );
    wait_until("A counted the oversized frame", || {
        node_a.handle.counters().rejected_messages >= 1
    })
    .await;

    // One byte above the cap: refused too.
    let mut bytes = u32::try_from(MAX_MESSAGE_BYTES + 1)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    bytes.extend(vec![0u8; MAX_MESSAGE_BYTES + 1]);
    let outcome = hostile::send_raw(&mut hostile, a.peer_id, bytes).await;
    println!("hostile stream 2: {outcome}");
    wait_until("A counted the second oversized frame", || {
        node_a.handle.counters().rejected_messages >= 2
    })
    .await;

    // A frame cut short (the stream closes in the middle): nothing delivered, counted.
    let outcome = hostile::send_raw(&mut hostile, a.peer_id, vec![0, 0, 0, 100, 1, 2, 3]).await;
    println!("hostile stream 3: {outcome}");
    wait_until("A counted the truncated frame", || {
        node_a.handle.counters().rejected_messages >= 3
    })
    .await;

    // A is unharmed: broadcasts still flow both ways with B, and nothing else from H was delivered.
    node_b.handle.broadcast(b"still here".to_vec());
    node_a.handle.broadcast(b"me too".to_vec());
    assert_eq!(
        next_message(&mut node_a.events).await,
        (b.peer_id, b"still here".to_vec())
    );
    assert_eq!(
        next_message(&mut node_b.events).await,
        (a.peer_id, b"me too".to_vec())
    );
    assert!(
        messages_until_quiet(&mut node_a.events, Duration::from_millis(300))
            .await
            .is_empty()
    );
    assert_eq!(node_a.handle.counters().rejected_messages, 3);
    node_a.handle.shutdown().await;
    node_b.handle.shutdown().await;
}

/// A node on its own thread and current-thread runtime, which the test can freeze (like SIGSTOP): while frozen it
/// reads nothing from its sockets.
struct FreezableNode {
    handle: P2pHandle,
    freeze: std::sync::mpsc::Sender<()>,
    thaw: std::sync::mpsc::Sender<()>,
    received: std::thread::JoinHandle<Vec<(PeerId, Vec<u8>)>>,
}

fn start_freezable(me: Member, peers: Vec<Member>, stop_marker: Vec<u8>) -> FreezableNode {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (freeze_tx, freeze_rx) = std::sync::mpsc::channel::<()>();
    let (thaw_tx, thaw_rx) = std::sync::mpsc::channel::<()>();
    let received = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let peer_refs: Vec<&Member> = peers.iter().collect();
            let mut node = start(&me, &peer_refs).await;
            handle_tx.send(node.handle.clone()).unwrap();
            // Run normally until asked to freeze.
            while freeze_rx.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // Frozen: this blocks the runtime's only thread, so no task of this node runs.
            thaw_rx.recv().unwrap();
            let mut got = Vec::new();
            loop {
                let (from, bytes) = next_message(&mut node.events).await;
                let done = bytes == stop_marker;
                got.push((from, bytes));
                if done {
                    break;
                }
            }
            node.handle.shutdown().await;
            got
        })
    });
    FreezableNode {
        handle: handle_rx.recv().unwrap(),
        freeze: freeze_tx,
        thaw: thaw_tx,
        received,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_member_does_not_hold_up_broadcasts_to_the_others() {
    init_logs();
    let (a, b, c, s) = (member(), member(), member(), member());
    let node_a = start(&a, &[&b, &c, &s]).await;
    let mut node_b = start(&b, &[&a]).await;
    let mut node_c = start(&c, &[&a]).await;
    const COUNT: usize = 4000;
    let last = format!("{:06}", COUNT - 1).into_bytes();
    let stalled = start_freezable(s.clone(), vec![a.clone()], last.clone());
    wait_until("A is linked to B, C and S", || {
        linked(&node_a.handle, &[&b, &c, &s])
            && linked(&node_b.handle, &[&a])
            && linked(&node_c.handle, &[&a])
            && linked(&stalled.handle, &[&a])
    })
    .await;

    stalled.freeze.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Far more than S's stream window, socket buffers and its queue of OUTBOUND_QUEUE_FRAMES can hold.
    let started = Instant::now();
    for k in 0..COUNT {
        let mut payload = format!("{k:06}").into_bytes();
        if k + 1 < COUNT {
            payload.resize(200, b'.');
        }
        node_a.handle.broadcast(payload);
        if k % 250 == 249 {
            // Pace the sender a little so the command channel (capacity 1024) never overflows.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let at_b = collect_messages(&mut node_b.events, COUNT).await;
    let at_c = collect_messages(&mut node_c.events, COUNT).await;
    let took = started.elapsed();
    println!("B and C got {COUNT} broadcasts each in {took:?} while S was frozen");
    for got in [&at_b, &at_c] {
        assert!(got.iter().all(|(from, _)| *from == a.peer_id));
        assert_eq!(got.last().unwrap().1, last);
        let ids: Vec<usize> = got
            .iter()
            .map(|(_, p)| std::str::from_utf8(&p[..6]).unwrap().parse().unwrap())
            .collect();
        assert_eq!(ids, (0..COUNT).collect::<Vec<_>>(), "all, once, in order");
    }
    let counters = node_a.handle.counters();
    println!("A's counters while S is frozen: {counters:?}");
    assert!(
        counters.broadcasts_dropped > 0,
        "S's queue overflowed and dropped its oldest frames: {counters:?}"
    );
    assert_eq!(node_a.handle.counters().commands_dropped, 0);

    // S wakes up: it receives what was written to its stream before it froze plus the newest queued broadcasts
    // (the oldest queued ones were dropped), in order, without duplicates, ending with the last broadcast.
    stalled.thaw.send(()).unwrap();
    let at_s = tokio::task::spawn_blocking(move || stalled.received.join().unwrap())
        .await
        .unwrap();
    let ids: Vec<usize> = at_s
        .iter()
        .map(|(_, p)| std::str::from_utf8(&p[..6]).unwrap().parse().unwrap())
        .collect();
    println!("S got {} of {COUNT} broadcasts after thawing", ids.len());
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates"
    );
    assert_eq!(ids.last(), Some(&(COUNT - 1)));
    assert!(ids.len() < COUNT, "some broadcasts to S were dropped");
    assert!(
        ids.len() >= OUTBOUND_QUEUE_FRAMES,
        "the queue's worth of the newest arrived"
    );
    assert_eq!(
        u64::try_from(COUNT - ids.len()).unwrap(),
        counters.broadcasts_dropped,
        "every broadcast S missed is counted as dropped"
    );
    node_a.handle.shutdown().await;
    node_b.handle.shutdown().await;
    node_c.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnected_member_gets_later_broadcasts_but_not_those_sent_while_it_was_away() {
    init_logs();
    let (a, b, c) = (member(), member(), member());
    let mut node_a = start(&a, &[&b, &c]).await;
    let mut node_b = start(&b, &[&a, &c]).await;
    let node_c = start(&c, &[&a, &b]).await;
    wait_until("the three are linked", || {
        linked(&node_a.handle, &[&b, &c])
            && linked(&node_b.handle, &[&a, &c])
            && linked(&node_c.handle, &[&a, &b])
    })
    .await;

    node_c.handle.shutdown().await;
    drop(node_c);
    wait_until("A and B see C gone", || {
        !node_a
            .handle
            .peers()
            .iter()
            .any(|s| s.peer_id == c.peer_id && s.connected)
            && !node_b
                .handle
                .peers()
                .iter()
                .any(|s| s.peer_id == c.peer_id && s.connected)
    })
    .await;
    node_a.handle.broadcast(b"while C was away".to_vec());
    assert_eq!(
        next_message(&mut node_b.events).await,
        (a.peer_id, b"while C was away".to_vec())
    );

    let mut node_c = start(&c, &[&a, &b]).await;
    wait_until("C is linked again", || {
        linked(&node_a.handle, &[&c])
            && linked(&node_b.handle, &[&c])
            && linked(&node_c.handle, &[&a, &b])
    })
    .await;
    node_a.handle.broadcast(b"after C came back".to_vec());
    node_b.handle.broadcast(b"hello again from B".to_vec());
    let mut got = collect_messages(&mut node_c.events, 2).await;
    got.sort();
    let mut expected = vec![
        (a.peer_id, b"after C came back".to_vec()),
        (b.peer_id, b"hello again from B".to_vec()),
    ];
    expected.sort();
    assert_eq!(
        got, expected,
        "C missed the broadcast sent while it was away"
    );
    assert!(
        messages_until_quiet(&mut node_c.events, Duration::from_millis(300))
            .await
            .is_empty()
    );
    assert_eq!(
        next_message(&mut node_a.events).await,
        (b.peer_id, b"hello again from B".to_vec())
    );
    node_c.handle.broadcast(b"C is back".to_vec());
    assert_eq!(
        next_message(&mut node_a.events).await,
        (c.peer_id, b"C is back".to_vec())
    );
    for n in [&node_a.handle, &node_b.handle, &node_c.handle] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_is_refused_and_nothing_it_sends_reaches_a_even_through_a_member() {
    init_logs();
    // A knows only B. B knows A and U. U knows both and dials both.
    let (a, b, u) = (member(), member(), member());
    let mut node_a = start(&a, &[&b]).await;
    let mut node_b = start(&b, &[&a, &u]).await;
    let node_u = start(&u, &[&a, &b]).await;
    wait_until("A-B and B-U are linked", || {
        linked(&node_a.handle, &[&b])
            && linked(&node_b.handle, &[&a, &u])
            && linked(&node_u.handle, &[&b])
    })
    .await;
    wait_until("A denied U", || {
        node_a.handle.counters().denied_connections >= 1
    })
    .await;
    assert!(
        !linked(&node_u.handle, &[&a]),
        "U never gets a connection to A"
    );

    for k in 0..5 {
        node_u.handle.broadcast(format!("from U {k}").into_bytes());
    }
    node_b.handle.broadcast(b"from B".to_vec());
    let at_b = collect_messages(&mut node_b.events, 5).await;
    assert!(
        at_b.iter().all(|(from, _)| *from == u.peer_id),
        "B (which allows U) hears U"
    );
    let at_a = messages_until_quiet(&mut node_a.events, Duration::from_secs(1)).await;
    assert_eq!(
        at_a,
        vec![(b.peer_id, b"from B".to_vec())],
        "A hears B only: U is refused and B relays nothing"
    );
    assert!(node_a.handle.peers().iter().all(|s| s.peer_id != u.peer_id));
    for n in [&node_a.handle, &node_b.handle, &node_u.handle] {
        n.shutdown().await;
    }
}
