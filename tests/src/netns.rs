//! A network namespace per test, so that members can be cut apart and slowed down without touching the host.
//!
//! [`NetNs::create`] makes a uniquely named namespace (`ip netns add`) and brings its loopback up; dropping it
//! deletes it (also while unwinding from a panic). [`NetNs::enter`] moves the CALLING THREAD into it (`setns(2)`
//! with `CLONE_NEWNET`), until the returned guard drops: every socket the thread opens afterwards (the harness's
//! blocking RPC client) and every process it spawns (member daemons and `functionary-cli`, which inherit the
//! spawning thread's namespaces) live in the namespace. Members keep the federation's 127.0.0.1 addresses: they
//! all share the namespace's own loopback, invisible from the host and from other tests.
//!
//! Needs root, `ip` (iproute2) and kernel network namespaces; [`unavailable_reason`] says which is missing so that
//! tests skip with that reason instead of failing.

use std::fs::File;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Why namespaces can't be used here (not root, no `ip`, namespaces refused by the kernel), or `None`.
pub fn unavailable_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions and can't fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("network namespaces need root (euid is not 0)".into());
    }
    if let Err(e) = run_tool("ip", &["-V"]) {
        return Some(format!("`ip` (iproute2) is not usable: {e:#}"));
    }
    match NetNs::create("netns-probe") {
        Ok(ns) => {
            drop(ns);
            None
        }
        Err(e) => Some(format!("cannot create a network namespace: {e:#}")),
    }
}

/// Runs a host tool and returns its stdout; a non-zero exit is an error carrying its stderr.
pub fn run_tool(program: &str, args: &[&str]) -> anyhow::Result<String> {
    run_tool_with_input(program, args, None)
}

/// Like [`run_tool`], writing `input` to the tool's stdin.
pub fn run_tool_with_input(
    program: &str,
    args: &[&str],
    input: Option<&str>,
) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .with_context(|| format!("writing to {program}'s stdin"))?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A named network namespace with its loopback up; deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `<prefix>-<pid>-<counter>` and brings its `lo` up.
    pub fn create(prefix: &str) -> anyhow::Result<Self> {
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        run_tool("ip", &["netns", "add", &name])?;
        let ns = NetNs { name };
        ns.exec("ip", &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (as `ip netns list` shows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `program args…` inside the namespace (`ip netns exec`) and returns its stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        self.exec_with_input(program, args, None)
    }

    /// Like [`NetNs::exec`], writing `input` to the program's stdin.
    pub fn exec_with_input(
        &self,
        program: &str,
        args: &[&str],
        input: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        run_tool_with_input("ip", &full, input)
    }

    /// Moves the calling thread into the namespace until the guard drops (which moves it back).
    pub fn enter(&self) -> anyhow::Result<EnteredNs> {
        let original = File::open("/proc/thread-self/ns/net")
            .context("opening this thread's network namespace")?;
        let target_path = format!("/run/netns/{}", self.name);
        let target = File::open(&target_path).with_context(|| format!("opening {target_path}"))?;
        set_thread_netns(&target).with_context(|| format!("entering namespace {}", self.name))?;
        Ok(EnteredNs {
            original,
            _not_send: PhantomData,
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = run_tool("ip", &["netns", "del", &self.name]) {
            eprintln!("netns: could not delete namespace {}: {e:#}", self.name);
        }
    }
}

/// The calling thread is inside a namespace; dropping this moves it back to where it was. Not `Send`: it must be
/// dropped on the thread that entered.
#[derive(Debug)]
pub struct EnteredNs {
    original: File,
    _not_send: PhantomData<*const ()>,
}

impl Drop for EnteredNs {
    fn drop(&mut self) {
        if let Err(e) = set_thread_netns(&self.original) {
            eprintln!("netns: could not return the thread to its original namespace: {e:#}");
        }
    }
}

fn set_thread_netns(ns: &File) -> anyhow::Result<()> {
    // SAFETY: setns(2) on an open namespace fd; it changes only the calling thread's network namespace.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("setns(CLONE_NEWNET)");
    }
    Ok(())
}
