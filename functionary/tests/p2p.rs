//! The p2p transport over real TCP sockets on 127.0.0.1: mesh broadcast, block fetches, the allow-list, reconnects,
//! port conflicts and identity files.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use functionary::p2p::{
    self, BlockSource, P2pConfig, P2pError, P2pEvent, P2pHandle, MAX_BLOCKS_PER_REQUEST, REDIAL_MAX,
};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc::Receiver;

const MAX_MESSAGE_BYTES: usize = 256 * 1024;
const DEADLINE: Duration = Duration::from_secs(20);

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Serves blocks from memory: block `h` is `blocks[h]`.
struct MemSource(Vec<Vec<u8>>);

impl BlockSource for MemSource {
    fn blocks_from(&self, start_height: u32, max_count: u32, _max_bytes: usize) -> Vec<Vec<u8>> {
        self.0
            .iter()
            .skip(start_height as usize)
            .take(max_count as usize)
            .cloned()
            .collect()
    }
}

fn no_blocks() -> Arc<dyn BlockSource> {
    Arc::new(MemSource(Vec::new()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn addr(port: u16) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
}

/// A member's identity and fixed address.
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
        addr: addr(free_port()),
    }
}

struct Node {
    handle: P2pHandle,
    events: Receiver<P2pEvent>,
}

async fn start(me: &Member, peers: &[&Member], blocks: Arc<dyn BlockSource>) -> Node {
    let config = P2pConfig {
        keypair: me.keypair.clone(),
        listen: me.addr.clone(),
        peers: peers.iter().map(|m| (m.peer_id, m.addr.clone())).collect(),
        max_message_bytes: MAX_MESSAGE_BYTES,
    };
    let handle = p2p::start(config, blocks).await.expect("start p2p node");
    let events = handle.take_events().expect("events taken once");
    assert!(
        handle.take_events().is_none(),
        "the receiver is handed out once"
    );
    Node { handle, events }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < DEADLINE,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// True when `node` is connected to, and has an open broadcast stream to, every peer in `peers`.
fn meshed(node: &P2pHandle, peers: &[&Member]) -> bool {
    let status = node.peers();
    peers.iter().all(|m| {
        status
            .iter()
            .any(|s| s.peer_id == m.peer_id && s.connected && s.subscribed)
    })
}

/// Collects `Message` events for `window`.
async fn messages_for(events: &mut Receiver<P2pEvent>, window: Duration) -> Vec<(PeerId, Vec<u8>)> {
    let until = tokio::time::Instant::now() + window;
    let mut out = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout_at(until, events.recv()).await {
        if let P2pEvent::Message { from, bytes } = event {
            out.push((from, bytes));
        }
    }
    out
}

/// Waits for the next `Message` event (skipping others).
async fn next_message(events: &mut Receiver<P2pEvent>) -> (PeerId, Vec<u8>) {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(until, events.recv()).await {
            Ok(Some(P2pEvent::Message { from, bytes })) => return (from, bytes),
            Ok(Some(_)) => {}
            Ok(None) => panic!("event channel closed"),
            Err(_) => panic!("no message within {DEADLINE:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_mesh_delivers_each_broadcast_exactly_once() {
    init_logs();
    let members = [member(), member(), member()];
    let mut nodes = Vec::new();
    for (i, me) in members.iter().enumerate() {
        let others: Vec<&Member> = members
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, m)| m)
            .collect();
        nodes.push(start(me, &others, no_blocks()).await);
    }
    let mesh_time = wait_until("all three nodes are meshed", || {
        nodes.iter().enumerate().all(|(i, n)| {
            let others: Vec<&Member> = members
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, m)| m)
                .collect();
            meshed(&n.handle, &others)
        })
    })
    .await;
    println!("mesh of 3 formed in {mesh_time:?}");
    for (node, me) in nodes.iter().zip(&members) {
        assert_eq!(node.handle.local_peer_id(), me.peer_id);
        assert_eq!(node.handle.local_addrs(), vec![me.addr.clone()]);
    }

    for (i, node) in nodes.iter().enumerate() {
        node.handle
            .broadcast(format!("hello from {i}").into_bytes());
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        // Two messages are expected; the extra time catches duplicates and echoes of our own broadcast.
        let got = messages_for(&mut node.events, Duration::from_millis(1500)).await;
        let mut expected: Vec<(PeerId, Vec<u8>)> = (0..3)
            .filter(|j| *j != i)
            .map(|j| (members[j].peer_id, format!("hello from {j}").into_bytes()))
            .collect();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        expected.sort();
        assert_eq!(
            got_sorted, expected,
            "node {i} must receive each other node's broadcast exactly once"
        );
    }

    // Every broadcast is delivered exactly once, including a deliberate retransmission of an unchanged payload
    // (nothing is relayed, so there are no copies to deduplicate).
    nodes[0].handle.broadcast(b"hello from 0".to_vec());
    nodes[0].handle.broadcast(b"second from 0".to_vec());
    let got = messages_for(&mut nodes[1].events, Duration::from_millis(1500)).await;
    assert_eq!(
        got,
        vec![
            (members[0].peer_id, b"hello from 0".to_vec()),
            (members[0].peer_id, b"second from 0".to_vec())
        ]
    );
    let got = messages_for(&mut nodes[2].events, Duration::from_millis(500)).await;
    assert_eq!(
        got.len(),
        2,
        "node 2 must receive each publish exactly once: {got:?}"
    );

    // The largest payload goes through; one byte more is refused by broadcast().
    let largest = vec![0xA5; MAX_MESSAGE_BYTES];
    nodes[0].handle.broadcast(largest.clone());
    assert_eq!(
        next_message(&mut nodes[1].events).await,
        (members[0].peer_id, largest)
    );
    nodes[0].handle.broadcast(vec![0x5A; MAX_MESSAGE_BYTES + 1]);
    assert!(
        messages_for(&mut nodes[1].events, Duration::from_millis(500))
            .await
            .is_empty()
    );
    let _ = messages_for(&mut nodes[2].events, Duration::from_millis(100)).await;

    // One-hop latency on loopback.
    let mut samples = Vec::new();
    for k in 0..50u32 {
        let payload = format!("latency probe {k}").into_bytes();
        let sent = Instant::now();
        nodes[0].handle.broadcast(payload.clone());
        let (from, bytes) = next_message(&mut nodes[1].events).await;
        samples.push(sent.elapsed());
        assert_eq!((from, bytes), (members[0].peer_id, payload));
    }
    samples.sort();
    println!(
        "broadcast hop latency on loopback over {} samples: min {:?}, median {:?}, p90 {:?}, max {:?}",
        samples.len(),
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() * 9 / 10],
        samples[samples.len() - 1]
    );
    assert!(
        samples[samples.len() / 2] < Duration::from_secs(1),
        "median hop latency is far too high"
    );

    let status = nodes[1].handle.peers();
    let from0 = status
        .iter()
        .find(|s| s.peer_id == members[0].peer_id)
        .unwrap();
    assert!(
        from0.messages_in >= 52,
        "messages_in counts received broadcasts: {from0:?}"
    );
    assert!(from0.last_message_ms.is_some() && from0.connected_since_ms.is_some());
    for node in &nodes {
        node.handle.shutdown().await;
    }
    assert!(nodes[0].handle.peers().iter().all(|s| !s.connected));
}

/// Requests blocks from `peer` and waits for the answer.
async fn ask(node: &mut Node, peer: &Member, start_height: u32, count: u32) -> Vec<Vec<u8>> {
    node.handle
        .request_blocks(peer.peer_id, start_height, count);
    answer(node, peer, start_height).await
}

/// Waits for the `Blocks` answer from `peer`.
async fn answer(node: &mut Node, peer: &Member, start_height: u32) -> Vec<Vec<u8>> {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(until, node.events.recv())
            .await
            .expect("block answer in time")
        {
            Some(P2pEvent::Blocks {
                from,
                start_height: s,
                blocks,
            }) => {
                assert_eq!((from, s), (peer.peer_id, start_height));
                return blocks;
            }
            Some(_) => {}
            None => panic!("event channel closed"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_blocks_returns_what_the_peer_serves() {
    init_logs();
    let (a, b) = (member(), member());
    let chain: Vec<Vec<u8>> = (0..600u32)
        .map(|h| format!("block {h}").into_bytes())
        .collect();
    let mut node_a = start(&a, &[&b], no_blocks()).await;
    // Asked before B is up: the request waits while A's dials to B fail, and is sent once they connect.
    node_a.handle.request_blocks(b.peer_id, 3, 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let node_b = start(&b, &[&a], Arc::new(MemSource(chain.clone()))).await;
    assert_eq!(answer(&mut node_a, &b, 3).await, chain[3..7].to_vec());
    assert_eq!(ask(&mut node_a, &b, 598, 10).await, chain[598..].to_vec());
    assert!(
        ask(&mut node_a, &b, 700, 10).await.is_empty(),
        "nothing above the tip"
    );
    let clamped = ask(&mut node_a, &b, 0, 10_000).await;
    assert_eq!(clamped.len(), MAX_BLOCKS_PER_REQUEST as usize);
    assert_eq!(clamped, chain[..MAX_BLOCKS_PER_REQUEST as usize].to_vec());

    // B counts a response as sent when libp2p reports it sent, which may be just after A has it: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let served = node_b.handle.peers();
        if served[0].messages_in >= 4 && served[0].messages_out >= 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{served:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A request to a peer that is not configured fails at once with an empty answer.
    let stranger = PeerId::random();
    node_a.handle.request_blocks(stranger, 1, 1);
    let ev = tokio::time::timeout(DEADLINE, node_a.events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ev,
        P2pEvent::Blocks {
            from: stranger,
            start_height: 1,
            blocks: vec![]
        }
    );
    node_a.handle.shutdown().await;
    node_b.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_responses_are_cut_to_max_message_bytes() {
    init_logs();
    let (a, b) = (member(), member());
    // 10 blocks of 100 KB; 256 KiB fit two of them.
    let chain: Vec<Vec<u8>> = (0..10u8).map(|h| vec![h; 100_000]).collect();
    let mut node_a = start(&a, &[&b], no_blocks()).await;
    let node_b = start(&b, &[&a], Arc::new(MemSource(chain.clone()))).await;
    node_a.handle.request_blocks(b.peer_id, 0, 10);
    let until = tokio::time::Instant::now() + DEADLINE;
    let blocks = loop {
        match tokio::time::timeout_at(until, node_a.events.recv())
            .await
            .expect("answer in time")
        {
            Some(P2pEvent::Blocks { blocks, .. }) => break blocks,
            Some(_) => {}
            None => panic!("event channel closed"),
        }
    };
    assert_eq!(blocks, chain[..2].to_vec());
    node_a.handle.shutdown().await;
    node_b.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_node_is_denied_and_its_messages_never_reach_a() {
    init_logs();
    // A knows only B. B knows A and U (so U's messages reach B). U knows A and B and dials both; A must deny it,
    // and B must not relay U's messages to A (broadcasts are direct, never relayed).
    let (a, b, u) = (member(), member(), member());
    let mut node_a = start(&a, &[&b], no_blocks()).await;
    let mut node_b = start(&b, &[&a, &u], no_blocks()).await;
    let node_u = start(&u, &[&a, &b], no_blocks()).await;

    wait_until("A and B are meshed and U is connected to B", || {
        meshed(&node_a.handle, &[&b])
            && meshed(&node_b.handle, &[&a, &u])
            && meshed(&node_u.handle, &[&b])
    })
    .await;
    // Garbage on A's port (not even a noise handshake) must not hurt A.
    {
        use tokio::io::AsyncWriteExt;
        let port = a.addr.iter().find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        });
        let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", port.unwrap()))
            .await
            .unwrap();
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        let _ = raw.write_all(&garbage).await;
        let _ = raw
            .write_all(b"/multistream/1.0.0\n\xff\xff\xff\xff\xff")
            .await;
    }
    wait_until("A denied U's connection", || {
        node_a.handle.counters().denied_connections >= 1
    })
    .await;

    for k in 0..10 {
        node_u
            .handle
            .broadcast(format!("from unknown {k}").into_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node_b.handle.broadcast(b"from b".to_vec());

    // B (which allows U) receives U's messages: they really were in the network.
    let at_b = messages_for(&mut node_b.events, Duration::from_secs(2)).await;
    assert_eq!(
        at_b.iter().filter(|(from, _)| *from == u.peer_id).count(),
        10,
        "B gets U's messages"
    );

    let at_a = messages_for(&mut node_a.events, Duration::from_secs(2)).await;
    assert_eq!(
        at_a,
        vec![(b.peer_id, b"from b".to_vec())],
        "A only gets B's message"
    );
    assert_eq!(
        node_a.handle.counters().rejected_messages,
        0,
        "nothing is relayed, so nothing of U's even reaches A to be rejected: {:?}",
        node_a.handle.counters()
    );
    let status = node_a.handle.peers();
    assert_eq!(status.len(), 1);
    assert!(status.iter().all(|s| s.peer_id != u.peer_id));
    for n in [&node_a.handle, &node_b.handle, &node_u.handle] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_peer_is_reconnected_and_messages_flow() {
    init_logs();
    let (a, b) = (member(), member());
    let mut node_a = start(&a, &[&b], no_blocks()).await;
    let node_b = start(&b, &[&a], no_blocks()).await;
    wait_until("A and B are meshed", || {
        meshed(&node_a.handle, &[&b]) && meshed(&node_b.handle, &[&a])
    })
    .await;

    node_b.handle.shutdown().await;
    drop(node_b);
    wait_until("A sees B disconnected", || {
        node_a.handle.peers().iter().all(|s| !s.connected)
    })
    .await;
    let mut saw: HashMap<&str, bool> = HashMap::new();
    while let Ok(ev) = node_a.events.try_recv() {
        match ev {
            P2pEvent::PeerConnected(p) if p == b.peer_id => saw.insert("connected", true),
            P2pEvent::PeerDisconnected(p) if p == b.peer_id => saw.insert("disconnected", true),
            _ => None,
        };
    }
    assert_eq!(saw.get("connected"), Some(&true));
    assert_eq!(saw.get("disconnected"), Some(&true));

    // Let A's redial backoff grow a little before B comes back on the same port.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted = Instant::now();
    let mut node_b = start(&b, &[&a], no_blocks()).await;
    wait_until("A and the restarted B are meshed again", || {
        meshed(&node_a.handle, &[&b]) && meshed(&node_b.handle, &[&a])
    })
    .await;
    println!(
        "restarted peer meshed again after {:?}",
        restarted.elapsed()
    );

    node_b.handle.broadcast(b"b is back".to_vec());
    assert_eq!(
        next_message(&mut node_a.events).await,
        (b.peer_id, b"b is back".to_vec())
    );
    node_a.handle.broadcast(b"welcome back".to_vec());
    assert_eq!(
        next_message(&mut node_b.events).await,
        (a.peer_id, b"welcome back".to_vec())
    );

    // Again, but B now has a dead address for A, so only A's redial loop can restore the link.
    node_b.handle.shutdown().await;
    drop(node_b);
    wait_until("A sees B disconnected again", || {
        node_a.handle.peers().iter().all(|s| !s.connected)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted = Instant::now();
    let a_unreachable = Member {
        addr: addr(free_port()),
        ..a.clone()
    };
    let mut node_b = start(&b, &[&a_unreachable], no_blocks()).await;
    let took = wait_until("A redials the restarted B", || {
        meshed(&node_a.handle, &[&b])
            && node_b
                .handle
                .peers()
                .iter()
                .all(|s| s.connected && s.subscribed)
    })
    .await;
    println!(
        "A redialed the restarted peer after {:?}",
        restarted.elapsed()
    );
    assert!(
        took <= REDIAL_MAX + Duration::from_secs(2),
        "redial backoff is capped at {REDIAL_MAX:?}"
    );
    node_a.handle.broadcast(b"found you".to_vec());
    assert_eq!(
        next_message(&mut node_b.events).await,
        (a.peer_id, b"found you".to_vec())
    );
    node_a.handle.shutdown().await;
    node_b.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_quarantines_a_peer_then_reconnects() {
    init_logs();
    let (a, b) = (member(), member());
    let node_a = start(&a, &[&b], no_blocks()).await;
    let node_b = start(&b, &[&a], no_blocks()).await;
    wait_until("A and B are meshed", || {
        meshed(&node_a.handle, &[&b]) && meshed(&node_b.handle, &[&a])
    })
    .await;

    let dropped = Instant::now();
    node_a.handle.disconnect(b.peer_id);
    wait_until("A dropped B", || {
        node_a.handle.peers().iter().all(|s| !s.connected)
    })
    .await;
    // B keeps redialing A, but A refuses it during the quarantine.
    tokio::time::sleep(REDIAL_MAX / 2).await;
    assert!(
        node_a.handle.peers().iter().all(|s| !s.connected),
        "A refuses B during the quarantine"
    );
    wait_until("A and B are meshed again", || {
        meshed(&node_a.handle, &[&b]) && meshed(&node_b.handle, &[&a])
    })
    .await;
    assert!(dropped.elapsed() >= REDIAL_MAX);
    assert_eq!(
        node_a.handle.counters().denied_connections,
        0,
        "a quarantined member is not counted as a stranger"
    );
    node_a.handle.shutdown().await;
    node_b.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_in_use_is_a_listen_error_naming_the_address() {
    init_logs();
    let (a, b) = (member(), member());
    let node_a = start(&a, &[&b], no_blocks()).await;
    let config = P2pConfig {
        keypair: b.keypair.clone(),
        listen: a.addr.clone(),
        peers: vec![(a.peer_id, a.addr.clone())],
        max_message_bytes: MAX_MESSAGE_BYTES,
    };
    match p2p::start(config, no_blocks()).await {
        Err(P2pError::Listen { addr, source }) => {
            assert_eq!(addr, a.addr);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
            let shown = P2pError::Listen { addr, source }.to_string();
            assert!(shown.contains(&a.addr.to_string()), "{shown}");
        }
        other => panic!("expected a listen error, got {other:?}"),
    }
    node_a.handle.shutdown().await;
}

#[tokio::test]
async fn port_zero_resolves_to_the_bound_address() {
    for listen in ["/ip4/127.0.0.1/tcp/0", "/ip4/0.0.0.0/tcp/0"] {
        let keypair = Keypair::generate_ed25519();
        let config = P2pConfig {
            keypair,
            listen: listen.parse().unwrap(),
            peers: vec![],
            max_message_bytes: MAX_MESSAGE_BYTES,
        };
        let handle = p2p::start(config, no_blocks()).await.unwrap();
        let addrs = handle.local_addrs();
        assert!(!addrs.is_empty(), "{listen}: no bound address");
        for a in &addrs {
            let port = a.iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                _ => None,
            });
            assert!(
                matches!(port, Some(p) if p != 0),
                "{listen}: {a} has no resolved port"
            );
        }
        handle.shutdown().await;
    }
}

#[tokio::test]
async fn invalid_configs_are_rejected() {
    let a = member();
    let mut config = P2pConfig {
        keypair: a.keypair.clone(),
        listen: addr(0),
        peers: vec![],
        max_message_bytes: 10,
    };
    assert!(matches!(
        p2p::start(config, no_blocks()).await,
        Err(P2pError::Config(_))
    ));
    config = P2pConfig {
        keypair: a.keypair.clone(),
        listen: addr(0),
        peers: vec![(a.peer_id, a.addr.clone())],
        max_message_bytes: MAX_MESSAGE_BYTES,
    };
    assert!(matches!(
        p2p::start(config, no_blocks()).await,
        Err(P2pError::Config(_))
    ));
}

#[test]
fn identity_files_round_trip_and_refuse_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p2p.key");
    let generated = p2p::generate_identity_file(&path).unwrap();
    let content = std::fs::read_to_string(&path).unwrap();
    assert_eq!(content.len(), 65);
    assert!(content.ends_with('\n') && content.trim().chars().all(|c| c.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let loaded = p2p::load_identity_file(&path).unwrap();
    assert_eq!(loaded.public(), generated.public());

    assert!(matches!(
        p2p::generate_identity_file(&path),
        Err(P2pError::IdentityExists { .. })
    ));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        content,
        "refused overwrite leaves the file alone"
    );

    let bad = dir.path().join("bad.key");
    for content in [
        "zz".repeat(32),
        "ab".repeat(31),
        String::new(),
        "ab".repeat(33),
    ] {
        std::fs::write(&bad, &content).unwrap();
        match p2p::load_identity_file(&bad) {
            Err(e @ P2pError::IdentityFormat { .. }) => {
                assert!(e.to_string().contains("bad.key"), "{e}");
                assert!(
                    content.is_empty() || !e.to_string().contains(&content),
                    "errors never echo the content"
                );
            }
            other => panic!("expected a format error for {content:?}, got {other:?}"),
        }
    }
    assert!(matches!(
        p2p::load_identity_file(&dir.path().join("missing.key")),
        Err(P2pError::IdentityIo { .. })
    ));
}

#[test]
fn ed25519_keys_match_between_libp2p_and_dalek() {
    use ed25519_dalek::{Signer, Verifier};
    let keypair = Keypair::generate_ed25519();
    let peer = keypair.public().to_peer_id();
    let verifying = p2p::ed25519_key_of_peer(&peer).unwrap();
    let signing = p2p::dalek_signing_key(&keypair).unwrap();
    assert_eq!(signing.verifying_key(), verifying);

    let msg = b"functionary/precommit/v1";
    let dalek_sig = signing.sign(msg);
    assert!(
        keypair.public().verify(msg, &dalek_sig.to_bytes()),
        "libp2p verifies dalek's signature"
    );
    let libp2p_sig = keypair.sign(msg).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&libp2p_sig).unwrap();
    assert!(
        verifying.verify(msg, &sig).is_ok(),
        "dalek verifies libp2p's signature"
    );

    // PeerId::random() is an identity multihash of random bytes, not a protobuf ed25519 key.
    assert!(matches!(
        p2p::ed25519_key_of_peer(&PeerId::random()),
        Err(P2pError::NotEd25519Peer { .. })
    ));
    let debug = format!("{keypair:?}");
    assert!(!debug.contains(&hex::encode(
        keypair
            .clone()
            .try_into_ed25519()
            .unwrap()
            .secret()
            .as_ref()
    )));
}
