//! Harness for multi-process federation tests: real `functionaryd` processes with SoftHSM tokens, RocksDB, libp2p
//! over loopback and JSON-RPC, driven through the `deploy` crate (the same code the devnet uses).

pub mod delay_proxy;
pub mod journal_check;
pub mod link_faults;
pub mod netns;
pub mod sim;
pub mod wallet;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use deploy::{Binaries, FederationLayout, FederationSpec, MemberProcess};

/// A federation running in a temporary directory. Member processes are killed when it is dropped; if the test
/// is failing, the tail of every member's log is printed first.
pub struct TestFederation {
    pub layout: FederationLayout,
    pub bins: Binaries,
    pub procs: Vec<Option<MemberProcess>>,
    /// Per member, a command prefix its daemon is started through (empty: started directly); see
    /// [`deploy::MemberProcess::start_prefixed`].
    pub launch_prefix: Vec<Vec<String>>,
    /// The federation directory; `None` once [`TestFederation::keep_files`] has released it.
    dir: Option<tempfile::TempDir>,
}

impl TestFederation {
    /// Creates an n-member, m-threshold federation (tokens, keys, configs); nothing is started.
    pub fn create(members: usize, threshold: usize, interval: Duration) -> anyhow::Result<Self> {
        let spec = FederationSpec::new(members, threshold, interval);
        Self::create_with(&spec, Binaries::locate(None)?, "federation-test-")
    }

    /// Creates a federation for `spec` with the given binaries in a new temporary directory named `prefix…`.
    pub fn create_with(
        spec: &FederationSpec,
        bins: Binaries,
        prefix: &str,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        let layout = deploy::create(dir.path(), spec, &bins)?;
        let procs = (0..spec.members).map(|_| None).collect();
        Ok(TestFederation {
            layout,
            bins,
            procs,
            launch_prefix: vec![Vec::new(); spec.members],
            dir: Some(dir),
        })
    }

    /// Keeps the federation directory (logs, stores, journals) on disk after drop, for a look after a failure;
    /// returns its path.
    pub fn keep_files(&mut self) -> Option<std::path::PathBuf> {
        self.dir.take().map(tempfile::TempDir::keep)
    }

    /// Starts every member that is not running.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.procs.len() {
            if self.procs[i].is_none() {
                self.start(i)?;
            }
        }
        Ok(())
    }

    /// Starts member `i`.
    pub fn start(&mut self, i: usize) -> anyhow::Result<()> {
        self.start_with(i, &[])
    }

    /// Starts member `i` with extra environment variables.
    pub fn start_with(&mut self, i: usize, env: &[(&str, &str)]) -> anyhow::Result<()> {
        let prefix = self.launch_prefix.get(i).cloned().unwrap_or_default();
        self.procs[i] = Some(MemberProcess::start_prefixed(
            &self.layout,
            i,
            &self.bins,
            env,
            &prefix,
        )?);
        Ok(())
    }

    /// Kills member `i` with SIGKILL (a crash).
    pub fn kill9(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut p) = self.procs[i].take() {
            p.kill9()?;
        }
        Ok(())
    }

    /// Stops member `i` with SIGTERM and checks it exited cleanly.
    pub fn stop(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut p) = self.procs[i].take() {
            let status = p.terminate(Duration::from_secs(10))?;
            anyhow::ensure!(
                status.success(),
                "member {i} exited with {status} on SIGTERM"
            );
        }
        Ok(())
    }

    /// Indexes of running members.
    pub fn running(&self) -> Vec<usize> {
        (0..self.procs.len())
            .filter(|i| self.procs[*i].is_some())
            .collect()
    }

    /// An RPC call to member `i`.
    pub fn rpc(
        &self,
        i: usize,
        method: &str,
        params: &[serde_json::Value],
    ) -> anyhow::Result<serde_json::Value> {
        deploy::rpc::client(&self.layout, i)
            .call(method, params)
            .map_err(|e| anyhow::anyhow!("{method} on member {i}: {e}"))
    }

    /// Block count of member `i`, None if it does not answer.
    pub fn height(&self, i: usize) -> Option<u64> {
        self.rpc(i, "getblockcount", &[])
            .ok()
            .and_then(|v| v.as_u64())
    }

    /// Waits until every member in `members` has at least `height` blocks.
    pub fn wait_height(
        &self,
        members: &[usize],
        height: u64,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let heights: Vec<_> = members.iter().map(|i| self.height(*i)).collect();
            if heights.iter().all(|h| h.is_some_and(|h| h >= height)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("timed out after {timeout:?} waiting for height {height}: members {members:?} at {heights:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Block hashes 0..=upto as member `i` reports them.
    pub fn chain_of(&self, i: usize, upto: u64) -> anyhow::Result<Vec<String>> {
        (0..=upto)
            .map(|h| {
                let v = self.rpc(i, "getblockhash", &[serde_json::json!(h)])?;
                v.as_str()
                    .map(str::to_string)
                    .context("getblockhash returned a non-string")
            })
            .collect()
    }

    /// Asserts that `members` agree on every block hash up to `upto`.
    pub fn assert_same_chain(&self, members: &[usize], upto: u64) -> anyhow::Result<Vec<String>> {
        let reference = self.chain_of(members[0], upto)?;
        for &i in &members[1..] {
            let other = self.chain_of(i, upto)?;
            for (h, (a, b)) in reference.iter().zip(&other).enumerate() {
                if a != b {
                    bail!(
                        "FORK at height {h}: member {} has {a}, member {i} has {b}",
                        members[0]
                    );
                }
            }
        }
        Ok(reference)
    }

    /// The federation params, from the federation config every member holds.
    pub fn params(&self) -> anyhow::Result<chain::FederationParams> {
        let config = functionary::config::FederationConfig::load(&self.layout.federation_file())?;
        Ok(config.params()?)
    }

    /// Fetches blocks 1..=upto from member `i` as raw hex and checks each independently: it decodes, links to its
    /// parent, and carries >= m valid signatures from distinct members (full Elements header-proof validation).
    /// Returns the signer sets.
    pub fn verify_chain(&self, i: usize, upto: u64) -> anyhow::Result<Vec<Vec<usize>>> {
        let params = self.params()?;
        let mut parent = params.genesis_block().header;
        let genesis_hash = self.rpc(i, "getblockhash", &[serde_json::json!(0)])?;
        anyhow::ensure!(
            genesis_hash.as_str() == Some(params.genesis_hash().to_string().as_str()),
            "member {i}'s genesis {genesis_hash} is not the federation's {}",
            params.genesis_hash()
        );
        let mut signers = Vec::new();
        for h in 1..=upto {
            let hash = self.rpc(i, "getblockhash", &[serde_json::json!(h)])?;
            let hex_block = self.rpc(i, "getblock", &[hash.clone(), serde_json::json!(0)])?;
            let bytes = hex::decode(
                hex_block
                    .as_str()
                    .context("getblock 0 returned a non-string")?,
            )?;
            let block: elements::Block = elements::encode::deserialize(&bytes)?;
            anyhow::ensure!(
                Some(block.block_hash().to_string().as_str()) == hash.as_str(),
                "hash mismatch at {h}"
            );
            let who = chain::validate_final_block(&params, &parent, &block)
                .map_err(|e| anyhow::anyhow!("block {h} from member {i} is invalid: {e}"))?;
            let distinct: BTreeSet<_> = who.iter().collect();
            anyhow::ensure!(
                distinct.len() >= params.threshold(),
                "block {h} has {} distinct signers, needs {}",
                distinct.len(),
                params.threshold()
            );
            signers.push(who);
            parent = block.header;
        }
        Ok(signers)
    }

    /// Path of member `i`'s log.
    pub fn log_path(&self, i: usize) -> std::path::PathBuf {
        self.layout.datadir(i).join("functionaryd.log")
    }

    /// Member `i`'s log text.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }
}

impl Drop for TestFederation {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for i in 0..self.layout.members.len() {
                let log = self.log(i);
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("---- tail of {} ----", self.log_path(i).display());
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// Runs `functionaryd` once with the given data dir and extra args, waits for it to exit (at most `timeout`) and
/// returns (exit code, stderr). Used for start-up error tests.
pub fn run_daemon_once(
    bins: &Binaries,
    datadir: &Path,
    args: &[&str],
    timeout: Duration,
) -> anyhow::Result<(Option<i32>, String)> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(&bins.daemon)
        .arg("--datadir")
        .arg(datadir)
        .args(args)
        .env("SOFTHSM2_CONF", datadir.join("softhsm2.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait()?.is_some() {
            let out = child.wait_with_output()?;
            return Ok((
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "functionaryd did not exit within {timeout:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
