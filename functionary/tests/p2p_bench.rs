//! Broadcast fan-out benchmark of the p2p transport: N in-process nodes on 127.0.0.1, full mesh.
//!
//! Ignored by default (it measures, it does not check behaviour). Run:
//!
//! ```text
//! cargo test -p functionary --test p2p_bench -- --ignored --nocapture
//! P2P_BENCH_NODES=15 P2P_BENCH_ROUNDS=300 cargo test -p functionary --test p2p_bench -- --ignored --nocapture
//! ```
//!
//! Two workloads, each printed as one JSON line:
//! - `single`: one node (round robin) broadcasts a ~300-byte message; latency = time until every other node has
//!   received it (the slowest receiver), rounds spaced by a pause so they do not overlap;
//! - `all_to_all`: every node broadcasts one message at the same moment (like a precommit round); latency = time
//!   until every node has every other node's message.
//!
//! CPU is the process's user+system time (`/proc/self/stat`) over the measured phase, pauses included (idle
//! protocol work such as heartbeats counts), divided by the number of broadcasts and by the number of delivered
//! copies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use functionary::p2p::{self, BlockSource, P2pConfig, P2pEvent, P2pHandle};
use libp2p::identity::Keypair;
use libp2p::Multiaddr;

const MAX_MESSAGE_BYTES: usize = 256 * 1024;
const PAYLOAD_BYTES: usize = 300;

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

/// Process CPU time (user + system) from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line, i.e. 11 and 12 after the state field (index 0 here).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY-free: the clock tick is 100 Hz on Linux x86_64 (sysconf(_SC_CLK_TCK)).
    Duration::from_millis(ticks * 10)
}

/// Receive log: message id -> (receiving node, receive time) per copy, and a wake-up for the waiter.
#[derive(Default)]
struct Log {
    arrivals: Mutex<HashMap<u32, Vec<(usize, Instant)>>>,
    wake: tokio::sync::Notify,
}
type Arrivals = Arc<Log>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn payload(id: u32) -> Vec<u8> {
    let mut bytes = vec![0x5Au8; PAYLOAD_BYTES];
    bytes[..4].copy_from_slice(&id.to_be_bytes());
    bytes
}

async fn wait_meshed(handles: &[P2pHandle]) -> Duration {
    let started = Instant::now();
    loop {
        let done = handles
            .iter()
            .all(|h| h.peers().iter().all(|s| s.connected && s.subscribed));
        if done {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "mesh not formed in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_delivered(arrivals: &Arrivals, ids: &[u32], receivers_per_id: usize) {
    let started = Instant::now();
    loop {
        let n = {
            let map = arrivals.arrivals.lock().unwrap();
            ids.iter()
                .map(|id| map.get(id).map_or(0, Vec::len))
                .sum::<usize>()
        };
        if n >= ids.len() * receivers_per_id {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "messages {ids:?} not delivered in 20 s ({n} copies)"
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), arrivals.wake.notified()).await;
    }
}

async fn bench(nodes: usize, rounds: u32) {
    let keys: Vec<Keypair> = (0..nodes).map(|_| Keypair::generate_ed25519()).collect();
    let addrs: Vec<Multiaddr> = (0..nodes)
        .map(|_| {
            format!("/ip4/127.0.0.1/tcp/{}", free_port())
                .parse()
                .unwrap()
        })
        .collect();
    let index_of: HashMap<_, _> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.public().to_peer_id(), i))
        .collect();
    let arrivals: Arrivals = Arc::new(Log::default());
    let duplicates = Arc::new(Mutex::new(0u64));
    let mut handles = Vec::new();
    for i in 0..nodes {
        let config = P2pConfig {
            keypair: keys[i].clone(),
            listen: addrs[i].clone(),
            peers: (0..nodes)
                .filter(|j| *j != i)
                .map(|j| (keys[j].public().to_peer_id(), addrs[j].clone()))
                .collect(),
            max_message_bytes: MAX_MESSAGE_BYTES,
        };
        let handle = p2p::start(config, Arc::new(NoBlocks)).await.unwrap();
        let mut events = handle.take_events().unwrap();
        let arrivals = Arc::clone(&arrivals);
        let duplicates = Arc::clone(&duplicates);
        let index_of = index_of.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let P2pEvent::Message { from, bytes } = event {
                    let now = Instant::now();
                    let id = u32::from_be_bytes(bytes[..4].try_into().unwrap());
                    assert!(index_of.contains_key(&from));
                    let mut map = arrivals.arrivals.lock().unwrap();
                    let copies = map.entry(id).or_default();
                    if copies.iter().any(|(r, _)| *r == i) {
                        *duplicates.lock().unwrap() += 1;
                    }
                    copies.push((i, now));
                    drop(map);
                    arrivals.wake.notify_one();
                }
            }
        });
        handles.push(handle);
    }
    let mesh = wait_meshed(&handles).await;
    // Let connection setup work settle.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Workload 1: one broadcaster at a time.
    let pause = Duration::from_millis(20);
    let cpu_before = process_cpu();
    let wall_before = Instant::now();
    let mut fanout = Vec::new();
    let mut per_copy = Vec::new();
    for round in 0..rounds {
        let sender = round as usize % nodes;
        let id = round;
        let sent = Instant::now();
        handles[sender].broadcast(payload(id));
        wait_delivered(&arrivals, &[id], nodes - 1).await;
        let copies: Vec<Instant> = arrivals.arrivals.lock().unwrap()[&id]
            .iter()
            .map(|(_, at)| *at)
            .collect();
        let mut slowest = Duration::ZERO;
        for at in copies {
            let d = at - sent;
            per_copy.push(d.as_secs_f64() * 1e3);
            slowest = slowest.max(d);
        }
        fanout.push(slowest.as_secs_f64() * 1e3);
        tokio::time::sleep(pause).await;
    }
    let cpu_single = process_cpu() - cpu_before;
    let wall_single = wall_before.elapsed();
    fanout.sort_by(f64::total_cmp);
    per_copy.sort_by(f64::total_cmp);
    let copies = f64::from(rounds) * (nodes - 1) as f64;
    println!(
        "{{\"workload\":\"single\",\"nodes\":{nodes},\"rounds\":{rounds},\"payload_bytes\":{PAYLOAD_BYTES},\
\"mesh_formed_ms\":{:.0},\"fanout_ms\":{{\"p50\":{:.3},\"p99\":{:.3},\"max\":{:.3}}},\
\"per_copy_ms\":{{\"p50\":{:.3},\"p99\":{:.3}}},\"cpu_ms_total\":{:.0},\"wall_ms\":{:.0},\
\"cpu_us_per_broadcast\":{:.0},\"cpu_us_per_delivered_copy\":{:.1},\"duplicates\":{}}}",
        mesh.as_secs_f64() * 1e3,
        percentile(&fanout, 0.5),
        percentile(&fanout, 0.99),
        fanout[fanout.len() - 1],
        percentile(&per_copy, 0.5),
        percentile(&per_copy, 0.99),
        cpu_single.as_secs_f64() * 1e3,
        wall_single.as_secs_f64() * 1e3,
        cpu_single.as_secs_f64() * 1e6 / f64::from(rounds),
        cpu_single.as_secs_f64() * 1e6 / copies,
        *duplicates.lock().unwrap(),
    );

    // Workload 2: all nodes broadcast at once.
    let bursts = (rounds / nodes as u32).max(10);
    let base = 1_000_000u32;
    let cpu_before = process_cpu();
    let wall_before = Instant::now();
    let mut burst_ms = Vec::new();
    for b in 0..bursts {
        let ids: Vec<u32> = (0..nodes as u32).map(|i| base + b * 1000 + i).collect();
        let sent = Instant::now();
        for (i, h) in handles.iter().enumerate() {
            h.broadcast(payload(ids[i]));
        }
        wait_delivered(&arrivals, &ids, nodes - 1).await;
        let last = {
            let map = arrivals.arrivals.lock().unwrap();
            ids.iter()
                .flat_map(|id| map[id].iter().map(|(_, at)| *at))
                .max()
                .unwrap()
        };
        burst_ms.push((last - sent).as_secs_f64() * 1e3);
        tokio::time::sleep(pause).await;
    }
    let cpu_burst = process_cpu() - cpu_before;
    let wall_burst = wall_before.elapsed();
    burst_ms.sort_by(f64::total_cmp);
    let broadcasts = f64::from(bursts) * nodes as f64;
    println!(
        "{{\"workload\":\"all_to_all\",\"nodes\":{nodes},\"bursts\":{bursts},\"payload_bytes\":{PAYLOAD_BYTES},\
\"burst_complete_ms\":{{\"p50\":{:.3},\"p99\":{:.3},\"max\":{:.3}}},\"cpu_ms_total\":{:.0},\"wall_ms\":{:.0},\
\"cpu_us_per_broadcast\":{:.0},\"cpu_us_per_delivered_copy\":{:.1},\"duplicates\":{}}}",
        percentile(&burst_ms, 0.5),
        percentile(&burst_ms, 0.99),
        burst_ms[burst_ms.len() - 1],
        cpu_burst.as_secs_f64() * 1e3,
        wall_burst.as_secs_f64() * 1e3,
        cpu_burst.as_secs_f64() * 1e6 / broadcasts,
        cpu_burst.as_secs_f64() * 1e6 / (broadcasts * (nodes - 1) as f64),
        *duplicates.lock().unwrap(),
    );
    for h in &handles {
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn broadcast_fanout_latency_and_cpu() {
    let rounds: u32 = std::env::var("P2P_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let sizes: Vec<usize> = match std::env::var("P2P_BENCH_NODES") {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => vec![4, 15],
    };
    for nodes in sizes {
        bench(nodes, rounds).await;
    }
}
