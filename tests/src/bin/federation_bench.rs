//! `federation-bench`: runs an n-member federation on loopback and prints, as JSON, the latency from a block's
//! proposal to that block being stored as final on ALL members (p50, p99, max) over a number of blocks, and the
//! share of that time spent in HSM signing (journal fsync + PKCS#11 sign + verification, measured in the signer).
//!
//! Every member writes timing records (`FUNCTIONARY_TIMING_LOG`); all members run on this machine, so one clock.
//! Build with `cargo build --release --bins` for meaningful figures.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use deploy::{Binaries, FederationSpec};
use tests::TestFederation;

#[derive(Parser, Debug)]
#[command(name = "federation-bench")]
struct Args {
    /// Members n.
    #[arg(long, default_value_t = 4)]
    members: usize,
    /// Threshold m (default: 3 for n=4, 11 for n=15, else floor(2n/3)+1).
    #[arg(long)]
    threshold: Option<usize>,
    /// Block interval.
    #[arg(long, default_value = "250ms", value_parser = functionary::config::parse_duration)]
    interval: Duration,
    /// Final blocks to measure (after a warm-up of 5).
    #[arg(long, default_value_t = 200)]
    blocks: u64,
    /// Directory with functionaryd and functionary-cli (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// One-way delay added to every member-to-member connection (ms): the members then run in a fresh network
    /// namespace (root, iproute2 and nftables needed), with netem where the kernel has it, else a delaying proxy.
    #[arg(long, default_value_t = 0)]
    delay_ms: u32,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("federation-bench: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let n = args.members;
    let m = args.threshold.unwrap_or(match n {
        4 => 3,
        15 => 11,
        _ => n * 2 / 3 + 1,
    });
    let bins = Binaries::locate(args.bin_dir.as_deref())?;
    let spec = FederationSpec::new(n, m, args.interval);
    // With a delay, everything (members, their RPC clients) runs inside a fresh network namespace.
    let netns = if args.delay_ms > 0 {
        if let Some(reason) =
            tests::netns::unavailable_reason().or_else(tests::link_faults::nft_unavailable_reason)
        {
            anyhow::bail!("--delay-ms needs network namespaces and nftables: {reason}");
        }
        let ns = tests::netns::NetNs::create("fbench")?;
        let entered = ns.enter()?;
        Some((ns, entered))
    } else {
        None
    };
    let mut fed = TestFederation::create_with(&spec, bins, "federation-bench-")?;
    let mut _delay = None;
    if let Some((ns, _)) = &netns {
        let ports: Vec<u16> = fed.layout.members.iter().map(|m| m.p2p_port).collect();
        let faults = tests::link_faults::LinkFaults::new(ns, ports.clone())?;
        let how = match faults.set_delay(args.delay_ms) {
            Ok(()) => "netem".to_string(),
            Err(e) => {
                _delay = Some(tests::delay_proxy::DelayProxy::start(
                    ns,
                    &ports,
                    Duration::from_millis(u64::from(args.delay_ms)),
                )?);
                format!("delaying proxy (no netem: {e:#})")
            }
        };
        eprintln!(
            "federation-bench: {} ms one-way delay via {how}",
            args.delay_ms
        );
        fed.launch_prefix = (0..n)
            .map(tests::link_faults::LinkFaults::launch_prefix)
            .collect();
    }
    let mut logs = Vec::new();
    for i in 0..n {
        let log = fed.layout.datadir(i).join("timing.jsonl");
        fed.start_with(i, &[("FUNCTIONARY_TIMING_LOG", &log.to_string_lossy())])?;
        logs.push(log);
    }
    let all: Vec<usize> = (0..n).collect();
    let warmup = 5;
    let target = warmup + args.blocks;
    let timeout =
        Duration::from_millis(spec.interval_ms) * (target as u32) * 4 + Duration::from_secs(60);
    let started = std::time::Instant::now();
    if let Err(e) = fed.wait_height(&all, target, timeout) {
        let kept = fed.keep_files().unwrap_or_default();
        anyhow::bail!("{e}; member logs kept in {}", kept.display());
    }
    let wall = started.elapsed();
    for i in all {
        fed.stop(i)?;
    }

    // Join the records by block hash.
    let mut proposed: HashMap<String, u64> = HashMap::new();
    let mut stored: HashMap<String, Vec<u64>> = HashMap::new();
    let mut hsm_us: HashMap<String, Vec<u64>> = HashMap::new();
    let mut height_of: HashMap<String, u64> = HashMap::new();
    for log in &logs {
        let text =
            std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let hash = v["hash"].as_str().unwrap_or_default().to_string();
            let at = v["at_ms"].as_u64().unwrap_or(0);
            height_of.insert(hash.clone(), v["height"].as_u64().unwrap_or(0));
            match v["event"].as_str() {
                Some("proposed") => {
                    let e = proposed.entry(hash).or_insert(at);
                    *e = (*e).min(at);
                }
                Some("stored") => stored.entry(hash).or_default().push(at),
                Some("signed") if v["ok"] == true => hsm_us
                    .entry(hash)
                    .or_default()
                    .push(v["hsm_us"].as_u64().unwrap_or(0)),
                _ => {}
            }
        }
    }
    let mut latencies = Vec::new();
    let mut hsm_shares = Vec::new();
    let mut hsm_ms = Vec::new();
    for (hash, at) in &stored {
        let h = height_of.get(hash).copied().unwrap_or(0);
        if h <= warmup || h > target || at.len() < n {
            continue;
        }
        let Some(p) = proposed.get(hash) else {
            continue;
        };
        let latency = at.iter().max().copied().unwrap_or(0).saturating_sub(*p);
        latencies.push(latency as f64);
        if let Some(us) = hsm_us.get(hash) {
            let mut us = us.clone();
            us.sort_unstable();
            let median_ms = us[us.len() / 2] as f64 / 1000.0;
            hsm_ms.push(median_ms);
            if latency > 0 {
                hsm_shares.push(median_ms / latency as f64);
            }
        }
    }
    anyhow::ensure!(!latencies.is_empty(), "no complete block records collected");
    let out = serde_json::json!({
        "members": n,
        "threshold": m,
        "interval_ms": spec.interval_ms,
        "blocks_measured": latencies.len(),
        "wall_s": wall.as_secs_f64(),
        "finality_latency_ms": { "p50": pct(&mut latencies, 50.0), "p99": pct(&mut latencies, 99.0), "max": pct(&mut latencies, 100.0) },
        "hsm_sign_ms_median_member": { "p50": pct(&mut hsm_ms, 50.0), "p99": pct(&mut hsm_ms, 99.0) },
        "hsm_share_of_latency": { "p50": pct(&mut hsm_shares, 50.0) },
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn pct(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let idx = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    (values[idx.min(values.len() - 1)] * 100.0).round() / 100.0
}
