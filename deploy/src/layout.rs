//! What a local federation looks like on disk (`devnet.json`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// File in the federation directory that records the layout.
pub const LAYOUT_FILE: &str = "devnet.json";
/// Directory in the federation directory holding every member's ceremony descriptor.
pub const DESCRIPTORS_DIR: &str = "descriptors";

/// The shape of a federation asked for by a person or a test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederationSpec {
    /// Number of members n.
    pub members: usize,
    /// Signatures needed for a block, m.
    pub threshold: usize,
    /// Block interval in milliseconds.
    pub interval_ms: u64,
    /// Chain name written into the federation config (and so into genesis).
    pub chain_name: String,
    /// Whether genesis pays the devnet faucet ([`crate::faucet`]); absent in layouts written before it existed.
    #[serde(default)]
    pub faucet: bool,
}

impl FederationSpec {
    /// A spec with the default chain name.
    pub fn new(members: usize, threshold: usize, interval: Duration) -> Self {
        FederationSpec {
            members,
            threshold,
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            chain_name: "functionary-devnet".to_string(),
            faucet: true,
        }
    }

    /// Checks the numbers before anything is created.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=15).contains(&self.members),
            "members: {} is out of range (1..=15)",
            self.members
        );
        anyhow::ensure!(
            self.threshold >= 1 && self.threshold <= self.members,
            "threshold: {} must be between 1 and the number of members ({})",
            self.threshold,
            self.members
        );
        anyhow::ensure!(
            self.interval_ms >= 100,
            "interval: {} ms is below the 100 ms minimum",
            self.interval_ms
        );
        Ok(())
    }
}

/// One member's place in the federation directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberLayout {
    /// Member name (also its SoftHSM token label).
    pub name: String,
    /// Data dir, relative to the federation directory.
    pub datadir: PathBuf,
    /// JSON-RPC address.
    pub rpc_addr: SocketAddr,
    /// libp2p TCP port on 127.0.0.1.
    pub p2p_port: u16,
    /// Block-signing public key (hex, compressed) read from its token.
    pub block_pubkey: String,
    /// Peg-wallet public key (hex, compressed) read from its token.
    #[serde(default)]
    pub peg_pubkey: String,
    /// libp2p PeerId.
    pub peer_id: String,
    /// Its ceremony descriptor, relative to the federation directory.
    #[serde(default)]
    pub descriptor: PathBuf,
}

/// The whole federation as recorded in `devnet.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FederationLayout {
    /// Absolute path of the federation directory (not serialised: it is where the file was found).
    #[serde(skip)]
    pub dir: PathBuf,
    /// What was asked for.
    pub spec: FederationSpec,
    /// Genesis time (unix seconds) written in the federation config.
    pub genesis_time: u32,
    /// Hash of the federation config the ceremony assembled and every member verified.
    #[serde(default)]
    pub config_hash: String,
    /// Members in creation order.
    pub members: Vec<MemberLayout>,
}

impl FederationLayout {
    /// Absolute data dir of member `i`.
    pub fn datadir(&self, i: usize) -> PathBuf {
        self.dir.join(&self.members[i].datadir)
    }

    /// Path of the shared federation config.
    pub fn federation_file(&self) -> PathBuf {
        self.dir.join("federation.toml")
    }

    /// Absolute paths of every member's ceremony descriptor, in member order.
    pub fn descriptor_files(&self) -> Vec<PathBuf> {
        self.members
            .iter()
            .map(|m| self.dir.join(&m.descriptor))
            .collect()
    }

    /// The ceremony transcript shared by all steps of a local federation.
    pub fn transcript_file(&self) -> PathBuf {
        self.dir.join(functionary::ceremony::TRANSCRIPT_FILE)
    }

    /// Reads `devnet.json` from `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(LAYOUT_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut layout: FederationLayout =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        layout.dir = dir.to_path_buf();
        Ok(layout)
    }

    /// Writes `devnet.json` atomically.
    pub fn save(&self) -> anyhow::Result<()> {
        let path = self.dir.join(LAYOUT_FILE);
        let tmp = self.dir.join(format!("{LAYOUT_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    }
}

/// Member names: readable for the usual sizes.
pub fn member_name(i: usize) -> String {
    const NAMES: [&str; 15] = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
        "mallory", "niaj", "olivia", "peggy", "rupert",
    ];
    NAMES
        .get(i)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("member{i:02}"))
}
