//! Cutting and healing links between members that share a network namespace's loopback, with nftables.
//!
//! All members listen on 127.0.0.1 (their addresses in the federation config, signed in the ceremony
//! descriptors), and a dialling member's source port is an ephemeral one (libp2p's TCP transport does not dial
//! from its listen port here: checked, and that is what broke a port-pair design). So a connection is attributed to
//! the member that dialled it by the socket's owner: every member's daemon runs with its own group id
//! ([`LinkFaults::launch_prefix`]: `setpriv --regid <gid> --clear-groups --`, still uid 0, so file access is
//! unchanged), and the `output` hook stamps each NEW connection's conntrack entry with the dialler's gid
//! (`ct mark`). Cutting a and b then drops, in the `input` hook, every packet (both directions) of a connection
//! dialled by a to b's listen port or by b to a's (`ct mark` + `ct original proto-dst`): the packets vanish as on a
//! broken link (no reset, no error to the sender); RPC and other pairs are untouched. The marking rules must be
//! installed before the members start ([`LinkFaults::new`] first), or their connections carry no mark;
//! [`LinkFaults::check_member_gids`] checks that the running daemons carry their gids.
//!
//! Why not per-member veth addresses: every member's address is 127.0.0.1 in the signed federation config, and
//! one shared loopback keeps the federation exactly as deployed. Latency is `tc qdisc … netem` on that loopback
//! (each packet crosses `lo` once, so the delay is one-way), when the kernel has `sch_netem`
//! ([`LinkFaults::set_delay`] reports when it has not).

use std::collections::BTreeSet;

use anyhow::Context;

use crate::netns::{run_tool, NetNs};

const TABLE: &str = "netfaults";
/// Member i's daemon runs with group id `GID_BASE + i` (no such group needs to exist).
pub const GID_BASE: u32 = 47_000;

/// Why nftables can't be used here, or `None`.
pub fn nft_unavailable_reason() -> Option<String> {
    if let Err(e) = run_tool("nft", &["--version"]) {
        return Some(format!(
            "`nft` (nftables) is not installed or not usable: {e:#}; install the nftables package"
        ));
    }
    if let Err(e) = run_tool("setpriv", &["--version"]) {
        return Some(format!(
            "`setpriv` (util-linux) is not installed or not usable: {e:#}"
        ));
    }
    None
}

/// Link faults between members (by index) inside one namespace.
pub struct LinkFaults<'a> {
    ns: &'a NetNs,
    ports: Vec<u16>,
    cut: BTreeSet<(usize, usize)>,
}

impl<'a> LinkFaults<'a> {
    /// Installs an empty nftables table in `ns`; `p2p_ports[i]` is member i's listen port.
    pub fn new(ns: &'a NetNs, p2p_ports: Vec<u16>) -> anyhow::Result<Self> {
        let faults = LinkFaults {
            ns,
            ports: p2p_ports,
            cut: BTreeSet::new(),
        };
        faults.apply()?;
        Ok(faults)
    }

    /// Cuts the link between members a and b (both directions).
    pub fn cut(&mut self, a: usize, b: usize) -> anyhow::Result<()> {
        self.port(a)?;
        self.port(b)?;
        if a != b {
            self.cut.insert((a.min(b), a.max(b)));
        }
        self.apply()
    }

    /// Cuts every link between a member of `side_a` and a member of `side_b`.
    pub fn partition(&mut self, side_a: &[usize], side_b: &[usize]) -> anyhow::Result<()> {
        for &a in side_a {
            for &b in side_b {
                self.port(a)?;
                self.port(b)?;
                if a != b {
                    self.cut.insert((a.min(b), a.max(b)));
                }
            }
        }
        self.apply()
    }

    /// Heals the link between a and b.
    pub fn heal(&mut self, a: usize, b: usize) -> anyhow::Result<()> {
        self.cut.remove(&(a.min(b), a.max(b)));
        self.apply()
    }

    /// Heals every link.
    pub fn heal_all(&mut self) -> anyhow::Result<()> {
        self.cut.clear();
        self.apply()
    }

    /// Links currently cut, as (lower, higher) member indexes.
    pub fn cut_links(&self) -> &BTreeSet<(usize, usize)> {
        &self.cut
    }

    /// Adds (or changes) a one-way delay on the namespace's loopback with netem. Errors (naming the reason) when
    /// the kernel has no `sch_netem`.
    pub fn set_delay(&self, delay_ms: u32) -> anyhow::Result<()> {
        let delay = format!("{delay_ms}ms");
        self.ns
            .exec(
                "tc",
                &[
                    "qdisc", "replace", "dev", "lo", "root", "netem", "delay", &delay,
                ],
            )
            .context("adding netem delay on lo")?;
        Ok(())
    }

    /// The command prefix member `i`'s daemon must be started through (see the module docs).
    pub fn launch_prefix(i: usize) -> Vec<String> {
        vec![
            "setpriv".into(),
            "--regid".into(),
            gid_of(i).to_string(),
            "--clear-groups".into(),
            "--".into(),
        ]
    }

    /// Checks that each given (member, pid) runs with the member's group id, the premise of the cut rules. The
    /// prefix changes the gid just before it execs the daemon, so this waits up to 5 s for each.
    pub fn check_member_gids(&self, pids: &[(usize, u32)]) -> anyhow::Result<()> {
        for &(i, pid) in pids {
            let want = gid_of(i).to_string();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                let gids = gids_of(pid)?;
                if gids.split_whitespace().all(|g| g == want) {
                    break;
                }
                anyhow::ensure!(
                    std::time::Instant::now() < deadline,
                    "member {i} (pid {pid}) runs with gids {gids:?}, not {want}: its connections could not be cut"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        Ok(())
    }

    fn port(&self, i: usize) -> anyhow::Result<u16> {
        self.ports
            .get(i)
            .copied()
            .with_context(|| format!("no member {i} (federation has {})", self.ports.len()))
    }

    /// Replaces the table with the marking rules and one rule pair per cut link, atomically (`nft -f -`).
    fn apply(&self) -> anyhow::Result<()> {
        let mut script = format!(
            "table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n  \
             chain output {{\n    type filter hook output priority 0; policy accept;\n"
        );
        for i in 0..self.ports.len() {
            let gid = gid_of(i);
            script.push_str(&format!(
                "    ct state new meta skgid {gid} ct mark set {gid}\n"
            ));
        }
        script.push_str(
            "  }\n  chain input {\n    type filter hook input priority 0; policy accept;\n",
        );
        for &(a, b) in &self.cut {
            let (pa, pb) = (self.port(a)?, self.port(b)?);
            let (ga, gb) = (gid_of(a), gid_of(b));
            script.push_str(&format!(
                "    meta l4proto tcp ct mark {ga} ct original proto-dst {pb} drop\n    \
                 meta l4proto tcp ct mark {gb} ct original proto-dst {pa} drop\n"
            ));
        }
        script.push_str("  }\n}\n");
        self.ns
            .exec_with_input("nft", &["-f", "-"], Some(&script))
            .with_context(|| format!("applying nftables rules in {}", self.ns.name()))?;
        Ok(())
    }
}

/// The `Gid:` line of a process (real, effective, saved, filesystem).
fn gids_of(pid: u32) -> anyhow::Result<String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Gid:"))
        .map(str::to_string)
        .with_context(|| format!("no Gid line in {path}"))
}

fn gid_of(i: usize) -> u32 {
    GID_BASE.saturating_add(u32::try_from(i).unwrap_or(u32::MAX - GID_BASE))
}
