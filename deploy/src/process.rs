//! Running members as child processes (each member: its `functionary-signer`, then its `functionaryd`), and calling
//! the admin CLI.
//!
//! A member's signer is started before its daemon and is ready once its socket answers. [`MemberProcess::kill9`]
//! is a crash of the member's machine (daemon and signer); [`MemberProcess::kill9_daemon`] crashes only the daemon,
//! whose next start reconnects to the signer that kept running.

use std::fs::OpenOptions;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::layout::FederationLayout;

/// File name of a member's signer socket in its data dir (the `signer.socket` default).
pub const SIGNER_SOCKET: &str = "signer.sock";
/// Log of a member's signer in its data dir.
pub const SIGNER_LOG: &str = "functionary-signer.log";
/// How long a started signer may take to answer on its socket.
const SIGNER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where `functionaryd`, `functionary-signer` and `functionary-cli` are.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// Path of `functionaryd`.
    pub daemon: PathBuf,
    /// Path of `functionary-cli`.
    pub cli: PathBuf,
    /// Path of `functionary-signer`.
    pub signer: PathBuf,
}

impl Binaries {
    /// Finds the binaries next to the running executable (cargo puts `devnet` and test binaries in
    /// `target/<profile>/` and `target/<profile>/deps/`), or in `dir` when given.
    pub fn locate(dir: Option<&Path>) -> anyhow::Result<Self> {
        let candidates: Vec<PathBuf> = match dir {
            Some(d) => vec![d.to_path_buf()],
            None => {
                let exe = std::env::current_exe().context("locating the running executable")?;
                exe.ancestors()
                    .skip(1)
                    .take(2)
                    .map(Path::to_path_buf)
                    .collect()
            }
        };
        for d in &candidates {
            let daemon = d.join("functionaryd");
            let cli = d.join("functionary-cli");
            let signer = d.join("functionary-signer");
            if daemon.is_file() && cli.is_file() && signer.is_file() {
                return Ok(Binaries {
                    daemon,
                    cli,
                    signer,
                });
            }
        }
        bail!(
            "functionaryd, functionary-signer and functionary-cli not found in {:?}; build them first with \
             `cargo build --bins`",
            candidates
        )
    }

    /// Runs an admin command of `functionary-cli` for the member in `datadir` and parses its JSON output.
    pub fn cli_json(&self, datadir: &Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let out = Command::new(&self.cli)
            .arg("--datadir")
            .arg(datadir)
            .args(args)
            .env("SOFTHSM2_CONF", datadir.join("softhsm2.conf"))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.cli.display()))?;
        if !out.status.success() {
            bail!(
                "functionary-cli {} failed for {}: {}",
                args.join(" "),
                datadir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.trim()).with_context(|| {
            format!(
                "functionary-cli {} printed non-JSON output: {text}",
                args.join(" ")
            )
        })
    }
}

/// A running (or exited) member: its daemon and, unless another process already served its socket, its signer.
pub struct MemberProcess {
    /// Member index in the layout.
    pub index: usize,
    child: Child,
    signer: Option<SignerProcess>,
}

impl MemberProcess {
    /// Starts member `index` of `layout`: its signer (unless one already answers on its socket), then its daemon.
    /// The daemon's stdout and stderr are appended to `<datadir>/functionaryd.log`, the signer's to
    /// `<datadir>/functionary-signer.log`.
    pub fn start(layout: &FederationLayout, index: usize, bins: &Binaries) -> anyhow::Result<Self> {
        Self::start_with(layout, index, bins, &[])
    }

    /// Like [`MemberProcess::start`] with extra environment variables.
    pub fn start_with(
        layout: &FederationLayout,
        index: usize,
        bins: &Binaries,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::start_prefixed(layout, index, bins, env, &[])
    }

    /// Like [`MemberProcess::start_with`], the daemon run through a command prefix: `prefix[0] prefix[1..]
    /// functionaryd …` (for example `ip netns exec NAME`, or `setpriv --regid GID --clear-groups --`). The prefix
    /// must `exec` the daemon in place (as those do), so that the child's pid is the daemon's and
    /// [`MemberProcess::kill9`] kills the daemon itself. An empty prefix runs the daemon directly. The signer is
    /// always started directly (it uses no network; its Unix socket is reachable from any network namespace).
    pub fn start_prefixed(
        layout: &FederationLayout,
        index: usize,
        bins: &Binaries,
        env: &[(&str, &str)],
        prefix: &[String],
    ) -> anyhow::Result<Self> {
        let signer = if signer_answers(&layout.datadir(index).join(SIGNER_SOCKET)) {
            None
        } else {
            Some(SignerProcess::start(layout, index, bins, env)?)
        };
        let child = spawn_daemon(layout, index, bins, env, prefix)?;
        Ok(MemberProcess {
            index,
            child,
            signer,
        })
    }

    /// Starts the daemon again after [`MemberProcess::kill9_daemon`] (or after it exited), keeping the signer.
    pub fn restart_daemon(
        &mut self,
        layout: &FederationLayout,
        bins: &Binaries,
        env: &[(&str, &str)],
        prefix: &[String],
    ) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            bail!("member {}: its daemon is still running", self.index);
        }
        self.child = spawn_daemon(layout, self.index, bins, env, prefix)?;
        Ok(())
    }

    /// OS process id of the daemon.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// OS process id of the signer this member started (None if it reused a running one).
    pub fn signer_pid(&self) -> Option<u32> {
        self.signer.as_ref().map(|s| s.child.id())
    }

    /// The signer this member started, if any.
    pub fn signer_mut(&mut self) -> Option<&mut SignerProcess> {
        self.signer.as_mut()
    }

    /// SIGKILL to the daemon and the signer, no chance to clean up (a crash of the member's machine).
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        signal_child(&mut self.child, libc::SIGKILL)?;
        self.child.wait()?;
        if let Some(signer) = self.signer.as_mut() {
            signer.kill9()?;
        }
        Ok(())
    }

    /// SIGKILL to the daemon only: the signer keeps running (see [`MemberProcess::restart_daemon`]).
    pub fn kill9_daemon(&mut self) -> anyhow::Result<()> {
        signal_child(&mut self.child, libc::SIGKILL)?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM to the daemon, then waits up to `grace` for a clean exit (SIGKILL after that); then the same for
    /// the signer. Returns the daemon's exit status.
    pub fn terminate(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        let status = terminate_child(&mut self.child, grace)?;
        if let Some(signer) = self.signer.as_mut() {
            signer.terminate(grace)?;
        }
        Ok(status)
    }

    /// The daemon's exit status if it has exited.
    pub fn try_exit(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// The signer's exit status if the signer this member started has exited.
    pub fn signer_exit(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        match self.signer.as_mut() {
            Some(signer) => signer.try_exit(),
            None => Ok(None),
        }
    }

    /// Waits for the daemon to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<Option<ExitStatus>> {
        wait_child(&mut self.child, timeout)
    }
}

impl Drop for MemberProcess {
    fn drop(&mut self) {
        kill_on_drop(&mut self.child);
        // The signer (if this member started it) is killed by its own Drop.
    }
}

/// A member's running `functionary-signer`.
pub struct SignerProcess {
    /// Member index in the layout.
    pub index: usize,
    child: Child,
}

impl SignerProcess {
    /// Starts the signer of member `index` and waits until it answers on its socket (`<datadir>/signer.sock`);
    /// its output is appended to `<datadir>/functionary-signer.log`. Fails (with the log's tail) if it exits
    /// first, e.g. on a wrong PIN or a missing token.
    pub fn start(
        layout: &FederationLayout,
        index: usize,
        bins: &Binaries,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let datadir = layout.datadir(index);
        let log_path = datadir.join(SIGNER_LOG);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(&bins.signer);
        cmd.arg("--datadir")
            .arg(&datadir)
            .env("SOFTHSM2_CONF", datadir.join("softhsm2.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bins.signer.display()))?;
        let mut signer = SignerProcess { index, child };
        let socket = datadir.join(SIGNER_SOCKET);
        let deadline = Instant::now() + SIGNER_READY_TIMEOUT;
        loop {
            if let Some(status) = signer.child.try_wait()? {
                bail!(
                    "functionary-signer of member {index} exited ({status}) before serving {}: {}",
                    socket.display(),
                    log_tail(&log_path, log_start)
                );
            }
            if signer_answers(&socket) {
                return Ok(signer);
            }
            if Instant::now() >= deadline {
                bail!(
                    "functionary-signer of member {index} did not answer on {} within {SIGNER_READY_TIMEOUT:?}: {}",
                    socket.display(),
                    log_tail(&log_path, log_start)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (a crash).
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        signal_child(&mut self.child, libc::SIGKILL)?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits up to `grace` (SIGKILL after that).
    pub fn terminate(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        terminate_child(&mut self.child, grace)
    }

    /// The exit status if it has exited.
    pub fn try_exit(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }
}

impl Drop for SignerProcess {
    fn drop(&mut self) {
        kill_on_drop(&mut self.child);
    }
}

/// Runs `program --datadir DATADIR ARGS…` once (with the member's `SOFTHSM2_CONF`), waits for it to exit (at most
/// `timeout`, then kills it) and returns (exit code, stderr). For start-up error tests of `functionaryd` and
/// `functionary-signer` (e.g. `run_once(&bins.signer, …, &["--hsm-module", "/nonexistent.so"], …)`).
pub fn run_once(
    program: &Path,
    datadir: &Path,
    args: &[&str],
    timeout: Duration,
) -> anyhow::Result<(Option<i32>, String)> {
    let mut child = Command::new(program)
        .arg("--datadir")
        .arg(datadir)
        .args(args)
        .env("SOFTHSM2_CONF", datadir.join("softhsm2.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let exited = wait_child(&mut child, timeout)?;
    if exited.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if exited.is_none() {
        bail!(
            "{} did not exit within {timeout:?}; stderr: {stderr}",
            program.display()
        );
    }
    Ok((out.status.code(), stderr))
}

/// Whether a process accepts connections on the signer socket at `path`.
pub fn signer_answers(path: &Path) -> bool {
    UnixStream::connect(path).is_ok()
}

/// The text a log file gained since `start` (at most its last 2,000 bytes), on one line.
fn log_tail(path: &Path, start: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let from = usize::try_from(start).unwrap_or(0).min(text.len());
    let new = text.get(from..).unwrap_or_default();
    let cut = new.len().saturating_sub(2000);
    let tail = String::from_utf8_lossy(new.get(cut..).unwrap_or_default()).into_owned();
    tail.trim().replace('\n', " | ")
}

fn spawn_daemon(
    layout: &FederationLayout,
    index: usize,
    bins: &Binaries,
    env: &[(&str, &str)],
    prefix: &[String],
) -> anyhow::Result<Child> {
    let datadir = layout.datadir(index);
    let log_path = datadir.join("functionaryd.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut cmd = match prefix.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(&bins.daemon);
            cmd
        }
        None => Command::new(&bins.daemon),
    };
    cmd.arg("--datadir")
        .arg(&datadir)
        .env("SOFTHSM2_CONF", datadir.join("softhsm2.conf"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().with_context(|| {
        format!(
            "starting {}{}",
            prefix.iter().map(|p| format!("{p} ")).collect::<String>(),
            bins.daemon.display()
        )
    })
}

/// Sends `sig` to a child that has not been reaped yet (never to a pid that may since belong to another process).
fn signal_child(child: &mut Child, sig: i32) -> anyhow::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let pid = i32::try_from(child.id())?;
    // SAFETY: plain kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(err).context("sending a signal to a member process");
        }
    }
    Ok(())
}

fn terminate_child(child: &mut Child, grace: Duration) -> anyhow::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    signal_child(child, libc::SIGTERM)?;
    if let Some(status) = wait_child(child, grace)? {
        return Ok(status);
    }
    signal_child(child, libc::SIGKILL)?;
    Ok(child.wait()?)
}

fn wait_child(child: &mut Child, timeout: Duration) -> anyhow::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill_on_drop(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = signal_child(child, libc::SIGKILL);
        let _ = child.wait();
    }
}
