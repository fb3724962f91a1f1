//! One-way latency between members without `sch_netem`: a delaying TCP proxy inside the test process, with every
//! member-to-member connection redirected through it by nftables.
//!
//! Members run with their own group ids (see [`crate::link_faults::LinkFaults::launch_prefix`]); a `nat` `output`
//! rule redirects each connection a member dials to member b's listen port to the proxy's port for b. The proxy
//! (running as gid 0, so its own connections are not redirected) dials b and copies bytes both ways, releasing each
//! chunk `delay` after it was read: every byte arrives one `delay` late in each direction, order preserved. Used
//! where the kernel has no `sch_netem` (as on the machine this was written on); with netem,
//! `tc qdisc add dev lo root netem delay …` does the same at packet level.
//!
//! The proxy's threads must be started from a thread inside the namespace (threads inherit the creating thread's
//! network namespace): call [`DelayProxy::start`] after [`crate::netns::NetNs::enter`].

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::link_faults::GID_BASE;
use crate::netns::NetNs;

const TABLE: &str = "netdelay";

/// A running delay proxy; stops accepting when dropped (open connections end with their members).
pub struct DelayProxy {
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

/// Binds a listener on a port below the kernel's ephemeral range. The members' ports were picked from the ephemeral
/// range (bound to port 0, then released) but are not bound yet when the proxy starts: a port-0 listener here could
/// take one of them and keep that member from starting.
fn bind_outside_ephemeral_range() -> anyhow::Result<TcpListener> {
    for port in 21_000u16..28_000 {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            return Ok(listener);
        }
    }
    anyhow::bail!("no free port in 21000..28000 for a delay proxy listener")
}

impl DelayProxy {
    /// Starts one listener per member port in `p2p_ports` and installs the redirect rules in `ns` for members
    /// `0..p2p_ports.len()` (whose daemons must run with gids `GID_BASE + i`).
    pub fn start(ns: &NetNs, p2p_ports: &[u16], delay: Duration) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let mut rules = String::new();
        let last_gid = GID_BASE.saturating_add(u32::try_from(p2p_ports.len()).unwrap_or(u32::MAX));
        for &port in p2p_ports {
            let listener = bind_outside_ephemeral_range()?;
            listener.set_nonblocking(true)?;
            let proxy_port = listener.local_addr()?.port();
            rules.push_str(&format!(
                "    meta skgid {GID_BASE}-{last_gid} tcp dport {port} redirect to :{proxy_port}\n"
            ));
            let target = SocketAddr::from(([127, 0, 0, 1], port));
            let (stop, connections, bytes) = (stop.clone(), connections.clone(), bytes.clone());
            std::thread::spawn(move || {
                accept_loop(listener, target, delay, stop, connections, bytes)
            });
        }
        let script = format!(
            "table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n  \
             chain output {{\n    type nat hook output priority -100; policy accept;\n{rules}  }}\n}}\n"
        );
        ns.exec_with_input("nft", &["-f", "-"], Some(&script))
            .with_context(|| format!("installing delay redirects in {}", ns.name()))?;
        Ok(DelayProxy {
            stop,
            connections,
            bytes,
        })
    }

    /// Connections proxied so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Bytes copied so far (both directions).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    delay: Duration,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((inbound, _)) => {
                let Ok(outbound) = TcpStream::connect_timeout(&target, Duration::from_secs(2))
                else {
                    continue; // the member is down: dropping `inbound` closes it, as a refused dial would
                };
                connections.fetch_add(1, Ordering::Relaxed);
                let _ = inbound.set_nonblocking(false);
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                if let (Ok(in2), Ok(out2)) = (inbound.try_clone(), outbound.try_clone()) {
                    pipe(inbound, out2, delay, bytes.clone());
                    pipe(outbound, in2, delay, bytes.clone());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Copies `from` → `to`, each chunk released `delay` after it was read (a reader and a writer thread).
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration, bytes: Arc<AtomicU64>) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let chunk = buf.get(..n).map(<[u8]>::to_vec).unwrap_or_default();
                    if tx.send((Instant::now() + delay, chunk)).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Read);
    });
    std::thread::spawn(move || {
        while let Ok((due, chunk)) = rx.recv() {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round trip through the proxy (client → proxy → echo server → proxy → client) takes two delays.
    #[test]
    fn a_round_trip_through_the_proxy_takes_two_delays() -> anyhow::Result<()> {
        let echo = TcpListener::bind("127.0.0.1:0")?;
        let target = echo.local_addr()?;
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = echo.accept() {
                let mut buf = [0u8; 5];
                if s.read_exact(&mut buf).is_ok() {
                    let _ = s.write_all(&buf);
                }
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let proxy_addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (conns, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let delay = Duration::from_millis(50);
        {
            let (stop, conns, bytes) = (stop.clone(), conns.clone(), bytes.clone());
            std::thread::spawn(move || accept_loop(listener, target, delay, stop, conns, bytes));
        }
        let mut client = TcpStream::connect(proxy_addr)?;
        let started = Instant::now();
        client.write_all(b"hello")?;
        let mut back = [0u8; 5];
        client.read_exact(&mut back)?;
        let rtt = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        assert_eq!(&back, b"hello");
        assert!(rtt >= 2 * delay, "round trip {rtt:?} < two delays");
        assert!(
            rtt < 2 * delay + Duration::from_millis(200),
            "round trip {rtt:?} far above two delays"
        );
        assert_eq!(conns.load(Ordering::Relaxed), 1);
        Ok(())
    }
}
