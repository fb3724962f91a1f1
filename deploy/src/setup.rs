//! Creating a federation directory through the real key ceremony (`functionary-cli ceremony …`):
//!
//! 1. for every member: its data dir (`node.toml`, SoftHSM config, PIN files), then `ceremony member`, which
//!    initialises its token, generates its block-signing and peg-wallet keys inside it, creates its libp2p
//!    identity and writes its signed descriptor to `descriptors/<name>.json`;
//! 2. `ceremony assemble` over all descriptors writes `federation.toml` and prints its config hash (the peg
//!    wallet's emergency keys are throwaway keys: nobody holds their secrets);
//! 3. for every member: its own copy of `federation.toml`, then `ceremony verify` with the printed hash, which
//!    writes the `federation.verified` marker the daemon requires;
//! 4. `ceremony audit` re-checks the whole transcript (`ceremony.transcript.jsonl`, shared by all steps here).
//!
//! Every token operation runs in a `functionary-cli` subprocess with that member's `SOFTHSM2_CONF`, because
//! SoftHSM reads its configuration once per process, and because that is exactly what an operator runs.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use rand::RngCore;

use functionary::ceremony::{TRANSCRIPT_FILE, VERIFIED_FILE};

use crate::layout::{
    member_name, FederationLayout, FederationSpec, MemberLayout, DESCRIPTORS_DIR, LAYOUT_FILE,
};
use crate::process::Binaries;

/// Default location of Debian's SoftHSM PKCS#11 module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Label of the block-signing key inside each token.
pub const BLOCK_KEY_LABEL: &str = "block-signing";
/// Label of the peg-wallet key inside each token.
pub const PEG_KEY_LABEL: &str = "peg-wallet";
/// Number of (throwaway) emergency keys in a devnet's peg wallet.
pub const DEVNET_EMERGENCY_KEYS: usize = 3;
/// Emergency signatures needed in a devnet's peg wallet.
pub const DEVNET_EMERGENCY_THRESHOLD: usize = 2;
/// CSV timelock (blocks) of a devnet's peg wallet emergency path (about four weeks of Bitcoin blocks).
pub const DEVNET_CSV_TIMELOCK: u32 = 4032;

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
        for (i, m) in layout.members.iter().enumerate() {
            if !layout.datadir(i).join(VERIFIED_FILE).exists() {
                bail!(
                    "{} was created before the key ceremony existed (member {} has no {VERIFIED_FILE}); \
                     remove that directory or use another --dir",
                    dir.display(),
                    m.name
                );
            }
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

    std::fs::create_dir_all(dir.join(DESCRIPTORS_DIR))
        .with_context(|| format!("creating {}", dir.join(DESCRIPTORS_DIR).display()))?;
    let transcript = dir.join(TRANSCRIPT_FILE);

    // Step 1, on every member's "machine": token, keys, identity, signed descriptor.
    let mut members = Vec::with_capacity(spec.members);
    for i in 0..spec.members {
        let name = member_name(i);
        let datadir = PathBuf::from(&name);
        let abs = dir.join(&datadir);
        let rpc_addr = SocketAddr::from(([127, 0, 0, 1], ports[2 * i]));
        let p2p_port = ports[2 * i + 1];
        prepare_member_dir(&abs, &name, rpc_addr)?;
        let descriptor = PathBuf::from(DESCRIPTORS_DIR).join(format!("{name}.json"));
        let out = bins.cli_json(
            &abs,
            &[
                "ceremony",
                "member",
                "--so-pin-file",
                &path_arg(&abs.join("so.pin")),
                "--address",
                &format!("/ip4/127.0.0.1/tcp/{p2p_port}"),
                "--out",
                &path_arg(&dir.join(&descriptor)),
                "--transcript",
                &path_arg(&transcript),
            ],
        )?;
        members.push(MemberLayout {
            name,
            datadir,
            rpc_addr,
            p2p_port,
            block_pubkey: json_str(&out, "block_pubkey")?,
            peg_pubkey: json_str(&out, "peg_pubkey")?,
            peer_id: json_str(&out, "peer_id")?,
            descriptor,
        });
    }
    let mut layout = FederationLayout {
        dir: dir.clone(),
        spec: spec.clone(),
        genesis_time,
        config_hash: String::new(),
        members,
    };

    // Step 2, at the coordinator: assemble the config from the descriptors.
    let descriptors = layout.descriptor_files();
    let emergency_keys: Vec<String> =
        functionary::ceremony::throwaway_emergency_keys(DEVNET_EMERGENCY_KEYS)
            .iter()
            .map(|k| k.to_string())
            .collect();
    let mut args: Vec<String> = vec!["ceremony".into(), "assemble".into()];
    for d in &descriptors {
        args.push("--descriptor".into());
        args.push(path_arg(d));
    }
    args.push("--emergency-key".into());
    args.extend(emergency_keys);
    for (flag, value) in [
        ("--threshold", spec.threshold.to_string()),
        ("--interval", format!("{}ms", spec.interval_ms)),
        (
            "--emergency-threshold",
            DEVNET_EMERGENCY_THRESHOLD.to_string(),
        ),
        ("--emergency-timelock", DEVNET_CSV_TIMELOCK.to_string()),
        ("--genesis-time", genesis_time.to_string()),
        ("--chain-name", spec.chain_name.clone()),
        ("--out", path_arg(&layout.federation_file())),
        ("--transcript", path_arg(&transcript)),
    ] {
        args.push(flag.into());
        args.push(value);
    }
    if spec.faucet {
        args.push("--initial-coins-amount".into());
        args.push(crate::faucet::DEVNET_FAUCET_AMOUNT.to_string());
        args.push("--initial-coins-script".into());
        args.push(hex::encode(crate::faucet::faucet_script()?));
        write_file(
            &dir.join(crate::faucet::FAUCET_FILE),
            serde_json::to_string_pretty(&crate::faucet::faucet_json()?)?.as_bytes(),
            0o644,
        )?;
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let assembled = bins.cli_json(&dir, &args)?;
    layout.config_hash = json_str(&assembled, "config_hash")?;

    // Step 3, on every member's "machine": its own copy, verified against the hash compared out of band.
    let federation = std::fs::read(layout.federation_file())
        .with_context(|| format!("reading {}", layout.federation_file().display()))?;
    for i in 0..layout.members.len() {
        write_file(
            &layout.datadir(i).join("federation.toml"),
            &federation,
            0o644,
        )?;
        verify_step(&layout, bins, i, &layout.config_hash)?;
    }

    // Step 4: the whole transcript re-checked.
    let mut args: Vec<String> = vec![
        "ceremony".into(),
        "audit".into(),
        "--transcript".into(),
        path_arg(&transcript),
        "--config".into(),
        path_arg(&layout.federation_file()),
    ];
    for d in &descriptors {
        args.push("--descriptor".into());
        args.push(path_arg(d));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    bins.cli_json(&dir, &args)?;

    layout.save()?;
    Ok(layout)
}

/// Runs `ceremony verify` for member `i` on the `federation.toml` in its data dir, expecting `config_hash`.
fn verify_step(
    layout: &FederationLayout,
    bins: &Binaries,
    i: usize,
    config_hash: &str,
) -> anyhow::Result<()> {
    let datadir = layout.datadir(i);
    let mut args: Vec<String> = vec![
        "ceremony".into(),
        "verify".into(),
        "--config".into(),
        path_arg(&datadir.join("federation.toml")),
        "--expect-hash".into(),
        config_hash.to_string(),
        "--transcript".into(),
        path_arg(&layout.transcript_file()),
    ];
    for d in layout.descriptor_files() {
        args.push("--descriptor".into());
        args.push(path_arg(&d));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    bins.cli_json(&datadir, &args)?;
    Ok(())
}

/// For tests that change a member's `federation.toml` on purpose: runs the real `ceremony verify` for member
/// `i` against the hash of the file now in its data dir (instead of a hash compared out of band), so the daemon
/// will start with it. The changed config must still match every member's descriptor (chain name, threshold,
/// interval or genesis time may change; keys, PeerIds and addresses may not).
pub fn reverify_member(
    layout: &FederationLayout,
    bins: &Binaries,
    i: usize,
) -> anyhow::Result<String> {
    let path = layout.datadir(i).join("federation.toml");
    let config = functionary::config::FederationConfig::load(&path)?;
    let hash = config.config_hash();
    verify_step(layout, bins, i, &hash)?;
    Ok(hash)
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A minimal federation config for the layout's members, in the format without the peg wallet (block keys,
/// PeerIds, addresses only), for tests that hand-craft configs. The devnet's real config is the one the
/// ceremony assembled ([`FederationLayout::federation_file`]); a daemon runs a hand-crafted config only after
/// its member verified it (see `functionary::ceremony::require_verified`).
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
    // The signer refuses a data dir writable by group or others (its journal lives there); whatever the umask.
    std::fs::set_permissions(datadir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of {}", datadir.display()))?;
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
         peg_key_label = \"{PEG_KEY_LABEL}\"\n\
         pin_file = \"hsm.pin\"\n\
         \n\
         # The block signer runs as its own process (functionary-signer); functionaryd reaches it here and\n\
         # never reads the PIN.\n\
         [signer]\n\
         mode = \"socket\"\n\
         socket = \"{}\"\n",
        crate::process::SIGNER_SOCKET
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
