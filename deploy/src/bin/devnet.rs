//! `devnet`: a local federation on this machine, the project's main job.
//!
//! Creates (or reuses) a federation directory with one SoftHSM token per member, generates each member's
//! block-signing key inside its token, writes the configs, starts one `functionary-signer` (the only process that
//! opens the token) and one `functionaryd` per member and shows the chain growing. Ctrl-C stops every member
//! cleanly.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use deploy::{Binaries, FederationSpec, MemberProcess};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Runs a local federation of functionaries.
#[derive(Parser, Debug)]
#[command(name = "devnet", version)]
struct Args {
    /// Number of members.
    #[arg(long, default_value_t = 4)]
    members: usize,
    /// Signatures needed per block (default: 3 for 4 members, otherwise floor(2n/3)+1).
    #[arg(long)]
    threshold: Option<usize>,
    /// Block interval, e.g. 1s, 500ms, 2m.
    #[arg(long, default_value = "1s", value_parser = functionary::config::parse_duration)]
    interval: Duration,
    /// Federation directory (reused when it exists with the same members, threshold and interval).
    #[arg(long, default_value = "devnet")]
    dir: PathBuf,
    /// Directory holding functionaryd, functionary-signer and functionary-cli (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("devnet: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let threshold = args.threshold.unwrap_or(args.members * 2 / 3 + 1);
    let spec = FederationSpec::new(args.members, threshold, args.interval);
    spec.validate()?;
    let bins = Binaries::locate(args.bin_dir.as_deref())?;
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }

    let existed = args.dir.join(deploy::layout::LAYOUT_FILE).exists();
    let layout =
        deploy::create_or_reuse(&args.dir, &spec, &bins).context("preparing the federation")?;
    println!(
        "devnet: {} federation {}-of-{} in {} (interval {} ms)",
        if existed { "reusing" } else { "created" },
        spec.threshold,
        spec.members,
        layout.dir.display(),
        spec.interval_ms
    );
    for (i, m) in layout.members.iter().enumerate() {
        println!(
            "  {:<8} rpc {}  p2p 127.0.0.1:{}  key {}…  log {} (signer: {})",
            m.name,
            m.rpc_addr,
            m.p2p_port,
            &m.block_pubkey[..16.min(m.block_pubkey.len())],
            layout.datadir(i).join("functionaryd.log").display(),
            deploy::process::SIGNER_LOG
        );
    }
    println!(
        "  try: target/debug/functionary-cli --datadir {} getblockchaininfo",
        layout.datadir(0).display()
    );

    let mut procs = Vec::new();
    for i in 0..layout.members.len() {
        procs.push(MemberProcess::start(&layout, i, &bins)?);
    }
    println!("devnet: {} members started; Ctrl-C stops them", procs.len());

    let mut last_height = None;
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(250));
        if STOP.load(Ordering::SeqCst) {
            // Ctrl-C in a terminal reaches the members too (same process group); they are stopping, not failing.
            break;
        }
        for p in procs.iter_mut() {
            if let Some(status) = p.try_exit()? {
                println!(
                    "devnet: member {} exited ({status}); see its functionaryd.log",
                    layout.members[p.index].name
                );
            }
            if let Some(status) = p.signer_exit()? {
                println!(
                    "devnet: the signer of member {} exited ({status}); stopping that member; see its {}",
                    layout.members[p.index].name,
                    deploy::process::SIGNER_LOG
                );
            }
        }
        procs.retain_mut(|p| {
            matches!(p.try_exit(), Ok(None)) && matches!(p.signer_exit(), Ok(None))
        });
        let mut heights = Vec::new();
        for i in 0..layout.members.len() {
            let h = deploy::rpc::client(&layout, i)
                .call("getblockcount", &[])
                .ok()
                .and_then(|v| v.as_u64());
            heights.push(h);
        }
        let best = heights.iter().flatten().max().copied();
        if best.is_some() && best != last_height {
            last_height = best;
            println!("{}", describe_tip(&layout, &heights));
        }
    }
    println!("devnet: stopping {} members", procs.len());
    for p in procs.iter_mut() {
        let status = p.terminate(Duration::from_secs(10))?;
        println!("  {} stopped ({status})", layout.members[p.index].name);
    }
    Ok(())
}

fn describe_tip(layout: &deploy::FederationLayout, heights: &[Option<u64>]) -> String {
    let up = heights.iter().filter(|h| h.is_some()).count();
    let best_member = heights
        .iter()
        .enumerate()
        .max_by_key(|(_, h)| **h)
        .map(|(i, _)| i)
        .unwrap_or(0);
    let client = deploy::rpc::client(layout, best_member);
    let block = client
        .call("getbestblockhash", &[])
        .ok()
        .and_then(|hash| client.call("getblock", &[hash, serde_json::json!(1)]).ok());
    let (height, hash, signers) = match &block {
        Some(b) => (
            b["height"].as_u64().unwrap_or(0),
            b["hash"].as_str().unwrap_or("?").to_string(),
            b["signers"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter_map(|x| x["name"].as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
        ),
        None => (0, "?".to_string(), String::new()),
    };
    let per_member = layout
        .members
        .iter()
        .zip(heights)
        .map(|(m, h)| {
            format!(
                "{}:{}",
                m.name,
                h.map(|h| h.to_string()).unwrap_or_else(|| "down".into())
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "height {height:>5}  {}…  signed by {signers}  up {up}/{}  [{per_member}]",
        &hash[..16.min(hash.len())],
        heights.len()
    )
}
