//! Running member daemons as child processes, and calling the admin CLI.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::layout::FederationLayout;

/// Where `functionaryd` and `functionary-cli` are.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// Path of `functionaryd`.
    pub daemon: PathBuf,
    /// Path of `functionary-cli`.
    pub cli: PathBuf,
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
            if daemon.is_file() && cli.is_file() {
                return Ok(Binaries { daemon, cli });
            }
        }
        bail!(
            "functionaryd and functionary-cli not found in {:?}; build them first with `cargo build --bins`",
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

/// A running (or exited) member daemon.
pub struct MemberProcess {
    /// Member index in the layout.
    pub index: usize,
    child: Child,
}

impl MemberProcess {
    /// Starts member `index` of `layout`; its stdout and stderr are appended to `<datadir>/functionaryd.log`.
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

    /// Like [`MemberProcess::start_with`], run through a command prefix: `prefix[0] prefix[1..] functionaryd …`
    /// (for example `ip netns exec NAME`, or `setpriv --regid GID --clear-groups --`). The prefix must `exec` the
    /// daemon in place (as those do), so that the child's pid is the daemon's and [`MemberProcess::kill9`] kills
    /// the daemon itself. An empty prefix runs the daemon directly.
    pub fn start_prefixed(
        layout: &FederationLayout,
        index: usize,
        bins: &Binaries,
        env: &[(&str, &str)],
        prefix: &[String],
    ) -> anyhow::Result<Self> {
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
        let child = cmd.spawn().with_context(|| {
            format!(
                "starting {}{}",
                prefix.iter().map(|p| format!("{p} ")).collect::<String>(),
                bins.daemon.display()
            )
        })?;
        Ok(MemberProcess { index, child })
    }

    /// OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no chance to clean up (a crash).
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        self.signal(libc::SIGKILL)?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits up to `grace` for a clean exit (SIGKILL after that). Returns the exit status.
    pub fn terminate(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        self.signal(libc::SIGTERM)?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.signal(libc::SIGKILL)?;
        Ok(self.child.wait()?)
    }

    /// The exit status if the process has exited.
    pub fn try_exit(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: i32) -> anyhow::Result<()> {
        let pid = i32::try_from(self.child.id())?;
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(pid, sig) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ESRCH) {
                return Err(err).context("sending a signal to a member daemon");
            }
        }
        Ok(())
    }
}

impl Drop for MemberProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.signal(libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}
