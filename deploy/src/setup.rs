//! Creating a federation directory: one SoftHSM token per member with its block-signing key generated inside the
//! token, one libp2p identity per member, the shared `federation.toml` and each member's `node.toml`.
//!
//! Every token operation runs in a `functionary-cli` subprocess with that member's `SOFTHSM2_CONF`, because
//! SoftHSM reads its configuration once per process, and because that is exactly what an operator runs.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use rand::RngCore;

use crate::layout::{member_name, FederationLayout, FederationSpec, MemberLayout, LAYOUT_FILE};
use crate::process::Binaries;

/// Default location of Debian's SoftHSM PKCS#11 module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Label of the block-signing key inside each token.
pub const BLOCK_KEY_LABEL: &str = "block-signing";

/// Opens the federation in `dir` if it exists and has the same spec; creates it if `dir` holds none.
pub fn create_or_reuse(
    dir: &Path,
    spec: &FederationSpec,
    bins: &Binaries,
) -> anyhow::Result<FederationLayout> {
    if dir.join(LAYOUT_FILE).exists() {
        let layout = open(dir)?;
        if &layout.spec != spec {
            bail!(
                "{} already holds a federation of {} members, threshold {}, interval {} ms; \
                 asked for {} members, threshold {}, interval {} ms. Use another --dir or remove that one.",
                dir.display(),
                layout.spec.members,
                layout.spec.threshold,
                layout.spec.interval_ms,
                spec.members,
                spec.threshold,
                spec.interval_ms
            );
        }
        return Ok(layout);
    }
    create(dir, spec, bins)
}

/// Opens an existing federation directory.
pub fn open(dir: &Path) -> anyhow::Result<FederationLayout> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("opening federation directory {}", dir.display()))?;
    FederationLayout::load(&dir)
}

/// Creates a new federation in `dir` (which must not already hold one).
pub fn create(
    dir: &Path,
    spec: &FederationSpec,
    bins: &Binaries,
) -> anyhow::Result<FederationLayout> {
    spec.validate()?;
    if dir.join(LAYOUT_FILE).exists() {
        bail!("{} already holds a federation", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let ports = free_ports(spec.members * 2)?;
    let genesis_time = u32::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?;

    let mut members = Vec::with_capacity(spec.members);
    for i in 0..spec.members {
        let name = member_name(i);
        let datadir = PathBuf::from(&name);
        let abs = dir.join(&datadir);
        let rpc_addr = SocketAddr::from(([127, 0, 0, 1], ports[2 * i]));
        let p2p_port = ports[2 * i + 1];
        prepare_member_dir(&abs, &name, rpc_addr)?;
        bins.cli_json(&abs, &["hsm-init", "so.pin"])?;
        let key = bins.cli_json(&abs, &["hsm-keygen"])?;
        let block_pubkey = json_str(&key, "pubkey")?;
        let p2p = bins.cli_json(&abs, &["p2p-keygen"])?;
        let peer_id = json_str(&p2p, "peer_id")?;
        members.push(MemberLayout {
            name,
            datadir,
            rpc_addr,
            p2p_port,
            block_pubkey,
            peer_id,
        });
    }
    let layout = FederationLayout {
        dir: dir.clone(),
        spec: spec.clone(),
        genesis_time,
        members,
    };
    let federation = federation_toml(&layout);
    write_file(&layout.federation_file(), federation.as_bytes(), 0o644)?;
    for i in 0..layout.members.len() {
        // Every member holds its own copy, as it would on its own machine.
        write_file(
            &layout.datadir(i).join("federation.toml"),
            federation.as_bytes(),
            0o644,
        )?;
    }
    layout.save()?;
    Ok(layout)
}

/// The shared federation config as TOML.
pub fn federation_toml(layout: &FederationLayout) -> String {
    let mut out = String::new();
    out.push_str("# Federation config: identical at every member. Compare `functionary-cli config-hash` out of band.\n");
    out.push_str(&format!("chain_name = \"{}\"\n", layout.spec.chain_name));
    out.push_str(&format!("threshold = {}\n", layout.spec.threshold));
    out.push_str(&format!(
        "block_interval = \"{}ms\"\n",
        layout.spec.interval_ms
    ));
    out.push_str(&format!("genesis_time = {}\n", layout.genesis_time));
    for m in &layout.members {
        out.push_str("\n[[members]]\n");
        out.push_str(&format!("name = \"{}\"\n", m.name));
        out.push_str(&format!("block_pubkey = \"{}\"\n", m.block_pubkey));
        out.push_str(&format!("peer_id = \"{}\"\n", m.peer_id));
        out.push_str(&format!(
            "address = \"/ip4/127.0.0.1/tcp/{}\"\n",
            m.p2p_port
        ));
    }
    out
}

/// Writes a member's SoftHSM config, PIN files and `node.toml`.
fn prepare_member_dir(datadir: &Path, name: &str, rpc_addr: SocketAddr) -> anyhow::Result<()> {
    let tokens = datadir.join("tokens");
    std::fs::create_dir_all(&tokens).with_context(|| format!("creating {}", tokens.display()))?;
    let conf = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        tokens.display()
    );
    write_file(&datadir.join("softhsm2.conf"), conf.as_bytes(), 0o600)?;
    write_file(&datadir.join("hsm.pin"), random_pin().as_bytes(), 0o600)?;
    write_file(&datadir.join("so.pin"), random_pin().as_bytes(), 0o600)?;
    let node = format!(
        "# Node config of member {name}. PINs are read from files, never from here.\n\
         member = \"{name}\"\n\
         federation = \"federation.toml\"\n\
         rpc_bind = \"{rpc_addr}\"\n\
         p2p_key_file = \"p2p.key\"\n\
         log = \"info\"\n\
         \n\
         [hsm]\n\
         module = \"{SOFTHSM_MODULE}\"\n\
         token_label = \"{name}\"\n\
         key_label = \"{BLOCK_KEY_LABEL}\"\n\
         pin_file = \"hsm.pin\"\n"
    );
    write_file(&datadir.join("node.toml"), node.as_bytes(), 0o644)?;
    Ok(())
}

fn random_pin() -> String {
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Writes a file atomically (tmp + rename) with the given mode.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp-write");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Distinct free TCP ports on 127.0.0.1 (bound together, then released).
pub fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("finding free ports on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn json_str(value: &serde_json::Value, key: &str) -> anyhow::Result<String> {
    value
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .with_context(|| format!("expected a string field {key:?} in {value}"))
}
