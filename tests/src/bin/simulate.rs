//! Runs the deterministic federation simulator over many seeds.
//!
//! ```text
//! simulate --seeds 100000 --n 4 --byzantine 1 --faults all
//! simulate --seed 1234 --n 15 --faults loss=0.3,delay=300,crashes --trace   # reproduce one seed, print every event
//! ```
//! Prints one JSON line per failing seed and a JSON summary; exits 1 if any seed broke an invariant.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use clap::Parser;
use tests::sim::{FaultMix, SimConfig, Simulation};

#[derive(Parser, Debug)]
#[command(about = "Deterministic simulation of the block-signing federation under faults")]
struct Args {
    /// Number of seeds to run (from --first-seed).
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Run exactly this seed (overrides --seeds/--first-seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Members.
    #[arg(long, default_value_t = 4)]
    n: usize,
    /// Threshold (default: 11 for n = 15, else floor(2n/3) + 1).
    #[arg(long)]
    m: Option<usize>,
    /// Byzantine members.
    #[arg(long, default_value_t = 0)]
    byzantine: usize,
    /// Fault mix: `all`, `none`, or e.g. `loss=0.2,dup=0.1,delay=200,partitions,crashes,skew=300`.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Block interval (ms).
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Base round timeout (ms).
    #[arg(long, default_value_t = 125)]
    round_timeout_ms: u64,
    /// How long faults last (ms).
    #[arg(long, default_value_t = 8000)]
    fault_ms: u64,
    /// How long the run continues after the faults (ms).
    #[arg(long, default_value_t = 4000)]
    calm_ms: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print every event of the run (use with --seed).
    #[arg(long)]
    trace: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let faults = FaultMix::parse(&args.faults).map_err(anyhow::Error::msg)?;
    let (first, count) = match args.seed {
        Some(seed) => (seed, 1),
        None => (args.first_seed, args.seeds),
    };
    let make = |seed: u64| {
        let mut config = SimConfig::new(seed, args.n);
        if let Some(m) = args.m {
            config.m = m;
        }
        config.byzantine = args.byzantine;
        config.faults = faults.clone();
        config.interval_ms = args.interval_ms;
        config.round_timeout_ms = args.round_timeout_ms;
        config.fault_duration_ms = args.fault_ms;
        config.calm_duration_ms = args.calm_ms;
        config
    };
    let next = AtomicU64::new(first);
    let failures = Mutex::new(Vec::new());
    let heights = AtomicU64::new(0);
    let recovery_max = AtomicU64::new(0);
    let started = std::time::Instant::now();
    let trace = args.trace;
    let make = Arc::new(make);
    std::thread::scope(|scope| {
        for _ in 0..args.threads.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first + count {
                    return;
                }
                let config = make(seed);
                let sim = match Simulation::new(config) {
                    Ok(sim) if trace => sim.with_full_trace(),
                    Ok(sim) => sim,
                    Err(e) => {
                        eprintln!("seed {seed}: bad configuration: {e}");
                        return;
                    }
                };
                match sim.run() {
                    Ok(report) => {
                        heights.fetch_add(u64::from(report.final_height), Ordering::Relaxed);
                        recovery_max.fetch_max(report.recovery_ms.unwrap_or(0), Ordering::Relaxed);
                    }
                    Err(failure) => {
                        println!(
                            "{}",
                            serde_json::json!({ "seed": seed, "violation": failure.violation.0 })
                        );
                        eprintln!("{failure}");
                        if let Ok(mut list) = failures.lock() {
                            list.push(seed);
                        }
                    }
                }
            });
        }
    });
    let failed = failures.into_inner().unwrap_or_default();
    println!(
        "{}",
        serde_json::json!({
            "seeds": count, "first_seed": first, "n": args.n, "m": make(first).m, "byzantine": args.byzantine,
            "faults": args.faults, "failed": failed.len(), "failed_seeds": failed,
            "mean_final_height": heights.load(Ordering::Relaxed) as f64 / count.max(1) as f64,
            "max_recovery_ms": recovery_max.load(Ordering::Relaxed),
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
