//! `federation.toml`: the federation's shared parameters and member list.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use serde::Deserialize;

use super::duration::{format_duration, parse_duration};
use super::error::ConfigError;
use super::fields::{
    check_member_name, parse_block_pubkey, parse_ed25519_peer_id, parse_multiaddr, tcp_port,
};
use super::peg_wallet::{validate_peg_wallet, PegWalletConfig, RawPegWallet};

/// Block interval used when `block_interval` is absent.
pub const DEFAULT_BLOCK_INTERVAL: Duration = Duration::from_secs(120);
/// Shortest accepted block interval.
pub const MIN_BLOCK_INTERVAL: Duration = Duration::from_millis(100);
/// Largest accepted federation size.
pub const MAX_MEMBERS: usize = 15;
/// Longest accepted chain name, in bytes.
const MAX_CHAIN_NAME_LEN: usize = 64;
/// Shortest default round timeout (the default is a quarter of the block interval, clamped).
pub const MIN_DEFAULT_ROUND_TIMEOUT: Duration = Duration::from_millis(20);
/// Longest default round timeout.
pub const MAX_DEFAULT_ROUND_TIMEOUT: Duration = Duration::from_secs(10);

/// The federation configuration (`federation.toml`), identical at every member.
///
/// ```toml
/// chain_name = "demo"
/// threshold = 2
/// block_interval = "120s"
/// genesis_time = 1700000000
/// round_timeout = "5s"          # optional; default block_interval / 4 clamped to [20ms, 10s]
///
/// [peg_wallet]                  # optional (see [`PegWalletConfig`]); required with `peg_pubkey`
/// emergency_keys = ["02…"]
/// emergency_threshold = 1
/// csv_timelock = 4032
///
/// [[members]]
/// name = "alice"
/// block_pubkey = "02…"          # hex, compressed, 33 bytes
/// peg_pubkey = "03…"            # hex, compressed; every member or none, together with [peg_wallet]
/// peer_id = "12D3KooW…"        # ed25519 libp2p PeerId
/// address = "/ip4/127.0.0.1/tcp/7101"   # or "127.0.0.1:7101"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationConfig {
    /// Name of the chain: non-empty printable ASCII, at most 64 bytes.
    pub chain_name: String,
    /// Number of member signatures that make a block final (m of n), `1..=members.len()`.
    pub threshold: usize,
    /// Target time between blocks, at least 100 ms (default 120 s).
    pub block_interval: Duration,
    /// Unix time (seconds) of the genesis block.
    pub genesis_time: u32,
    /// An explicit `round_timeout` that differs from the default; `None` when absent or equal to the default
    /// (so both spellings compare and hash alike). Use [`FederationConfig::round_timeout`] for the value.
    pub round_timeout_override: Option<Duration>,
    /// The peg wallet (`[peg_wallet]`); `None` in configs written before the peg wallet existed.
    pub peg_wallet: Option<PegWalletConfig>,
    /// Coins the genesis block creates (`[initial_coins]`, development and test chains only).
    pub initial_coins: Option<super::initial_coins::InitialCoinsConfig>,
    /// The members, in file order (1 to 15).
    pub members: Vec<MemberConfig>,
}

/// One member of the federation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConfig {
    /// Unique name, `[A-Za-z0-9_-]{1,32}`.
    pub name: String,
    /// Unique block-signing public key (held in the member's HSM).
    pub block_pubkey: secp256k1::PublicKey,
    /// Unique peg-wallet public key (held in the member's HSM); present exactly when the config has a
    /// [`FederationConfig::peg_wallet`].
    pub peg_pubkey: Option<secp256k1::PublicKey>,
    /// Unique ed25519 libp2p identity.
    pub peer_id: PeerId,
    /// Unique TCP address where the member listens: `/ip4|ip6/<address>/tcp/<port>`.
    pub address: Multiaddr,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFederation {
    chain_name: Option<String>,
    threshold: Option<i64>,
    block_interval: Option<String>,
    genesis_time: Option<i64>,
    round_timeout: Option<String>,
    peg_wallet: Option<RawPegWallet>,
    initial_coins: Option<super::initial_coins::RawInitialCoins>,
    members: Option<Vec<RawMember>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    name: Option<String>,
    block_pubkey: Option<String>,
    peg_pubkey: Option<String>,
    peer_id: Option<String>,
    address: Option<String>,
}

impl FederationConfig {
    /// Reads and validates a federation file. A missing file is an [`ConfigError::Io`] naming the path.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates a federation config from TOML text.
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        Self::parse(s, Path::new("<string>"))
    }

    fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawFederation = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from(path),
            message: e.to_string(),
        })?;
        validate(raw)
    }

    /// Renders the config as TOML that [`FederationConfig::from_toml_str`] reads back to an equal value.
    pub fn to_toml_string(&self) -> String {
        let mut table = toml::Table::new();
        table.insert("chain_name".into(), self.chain_name.clone().into());
        table.insert(
            "threshold".into(),
            toml::Value::Integer(self.threshold as i64),
        );
        table.insert(
            "block_interval".into(),
            format_duration(self.block_interval).into(),
        );
        table.insert(
            "genesis_time".into(),
            toml::Value::Integer(i64::from(self.genesis_time)),
        );
        if let Some(timeout) = self.round_timeout_override {
            table.insert("round_timeout".into(), format_duration(timeout).into());
        }
        if let Some(peg_wallet) = &self.peg_wallet {
            table.insert(
                "peg_wallet".into(),
                toml::Value::Table(peg_wallet.to_toml_table()),
            );
        }
        if let Some(coins) = &self.initial_coins {
            table.insert(
                "initial_coins".into(),
                toml::Value::Table(coins.to_toml_table()),
            );
        }
        let members = self
            .members
            .iter()
            .map(|m| {
                let mut t = toml::Table::new();
                t.insert("name".into(), m.name.clone().into());
                t.insert("block_pubkey".into(), m.block_pubkey.to_string().into());
                if let Some(peg) = m.peg_pubkey {
                    t.insert("peg_pubkey".into(), peg.to_string().into());
                }
                t.insert("peer_id".into(), m.peer_id.to_string().into());
                t.insert("address".into(), m.address.to_string().into());
                toml::Value::Table(t)
            })
            .collect();
        table.insert("members".into(), toml::Value::Array(members));
        table.to_string()
    }

    /// SHA-256 of the canonical encoding of this config, in hex. See [`super::federation_hash`] for the exact
    /// encoding: members are sorted by their compressed block public key and every field has a fixed form, so
    /// formatting, comments, key order and member order in the file do not change the hash; any semantic change
    /// (chain name, threshold, interval, genesis time, round timeout, peg wallet, any member's name, keys, PeerId
    /// or address) does. A config without `round_timeout` and `[peg_wallet]` hashes exactly as before they existed.
    pub fn config_hash(&self) -> String {
        super::federation_hash::config_hash(self)
    }

    /// How long a consensus round may last before the next round starts: the explicit `round_timeout`, else
    /// [`default_round_timeout`] of the block interval. Always shorter than the block interval.
    pub fn round_timeout(&self) -> Duration {
        self.round_timeout_override
            .unwrap_or_else(|| default_round_timeout(self.block_interval))
    }

    /// The member with this name, if any.
    pub fn member_by_name(&self, name: &str) -> Option<&MemberConfig> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The consensus parameters this config defines (keys, threshold, chain name, genesis time); genesis and the
    /// signblockscript derive from them.
    pub fn params(&self) -> Result<chain::FederationParams, chain::ParamsError> {
        let params = chain::FederationParams::new(
            &self.chain_name,
            self.members.iter().map(|m| m.block_pubkey).collect(),
            self.threshold,
            self.genesis_time,
        )?;
        match &self.initial_coins {
            None => Ok(params),
            Some(coins) => params.with_initial_coins(chain::InitialCoins {
                amount: coins.amount,
                script_pubkey: elements::Script::from(coins.script_pubkey.clone()),
            }),
        }
    }
}

/// The round timeout used when `round_timeout` is absent: a quarter of the block interval, clamped to
/// [`MIN_DEFAULT_ROUND_TIMEOUT`]..=[`MAX_DEFAULT_ROUND_TIMEOUT`] (always below any accepted block interval).
pub fn default_round_timeout(block_interval: Duration) -> Duration {
    (block_interval / 4).clamp(MIN_DEFAULT_ROUND_TIMEOUT, MAX_DEFAULT_ROUND_TIMEOUT)
}

fn validate_round_timeout(
    text: Option<String>,
    block_interval: Duration,
) -> Result<Option<Duration>, ConfigError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let timeout = parse_duration(&text).map_err(|e| ConfigError::invalid("round_timeout", e))?;
    if timeout.is_zero() || timeout >= block_interval {
        return Err(ConfigError::invalid(
            "round_timeout",
            format!(
                "{} must be above zero and shorter than block_interval ({})",
                format_duration(timeout),
                format_duration(block_interval)
            ),
        ));
    }
    Ok((timeout != default_round_timeout(block_interval)).then_some(timeout))
}

fn validate(raw: RawFederation) -> Result<FederationConfig, ConfigError> {
    let chain_name = raw
        .chain_name
        .ok_or_else(|| ConfigError::missing("chain_name"))?;
    if chain_name.is_empty()
        || chain_name.len() > MAX_CHAIN_NAME_LEN
        || !chain_name
            .bytes()
            .all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(ConfigError::invalid(
            "chain_name",
            format!("`{chain_name}` must be 1 to {MAX_CHAIN_NAME_LEN} bytes of printable ASCII"),
        ));
    }

    let threshold_raw = raw
        .threshold
        .ok_or_else(|| ConfigError::missing("threshold"))?;

    let block_interval = match raw.block_interval {
        None => DEFAULT_BLOCK_INTERVAL,
        Some(text) => {
            parse_duration(&text).map_err(|e| ConfigError::invalid("block_interval", e))?
        }
    };
    if block_interval < MIN_BLOCK_INTERVAL {
        return Err(ConfigError::invalid(
            "block_interval",
            format!(
                "{} is shorter than the minimum of {}",
                format_duration(block_interval),
                format_duration(MIN_BLOCK_INTERVAL)
            ),
        ));
    }

    let round_timeout_override = validate_round_timeout(raw.round_timeout, block_interval)?;

    let genesis_raw = raw
        .genesis_time
        .ok_or_else(|| ConfigError::missing("genesis_time"))?;
    let genesis_time = u32::try_from(genesis_raw).map_err(|_| {
        ConfigError::invalid(
            "genesis_time",
            format!(
                "{genesis_raw} is not a unix time in seconds between 0 and {}",
                u32::MAX
            ),
        )
    })?;

    let raw_members = raw.members.unwrap_or_default();
    if raw_members.is_empty() {
        return Err(ConfigError::invalid(
            "members",
            "at least one [[members]] entry is required",
        ));
    }
    if raw_members.len() > MAX_MEMBERS {
        return Err(ConfigError::invalid(
            "members",
            format!(
                "{} members given, at most {MAX_MEMBERS} are supported",
                raw_members.len()
            ),
        ));
    }
    let members = validate_members(raw_members)?;
    let peg_wallet = validate_peg_section(raw.peg_wallet, &members)?;
    let initial_coins = super::initial_coins::validate_initial_coins(raw.initial_coins)?;

    let threshold = usize::try_from(threshold_raw).map_err(|_| {
        ConfigError::invalid("threshold", format!("{threshold_raw} must be at least 1"))
    })?;
    if threshold == 0 {
        return Err(ConfigError::invalid("threshold", "0 must be at least 1"));
    }
    if threshold > members.len() {
        return Err(ConfigError::invalid(
            "threshold",
            format!(
                "{threshold} is larger than the number of members ({})",
                members.len()
            ),
        ));
    }

    Ok(FederationConfig {
        chain_name,
        threshold,
        block_interval,
        genesis_time,
        round_timeout_override,
        peg_wallet,
        initial_coins,
        members,
    })
}

/// `[peg_wallet]` and the members' `peg_pubkey` come together: all or nothing.
fn validate_peg_section(
    raw: Option<RawPegWallet>,
    members: &[MemberConfig],
) -> Result<Option<PegWalletConfig>, ConfigError> {
    let with_peg = members.iter().filter(|m| m.peg_pubkey.is_some()).count();
    match raw {
        None => {
            if let Some(i) = members.iter().position(|m| m.peg_pubkey.is_some()) {
                return Err(ConfigError::invalid(
                    format!("members[{i}].peg_pubkey"),
                    "a peg key is given but the [peg_wallet] section is missing",
                ));
            }
            Ok(None)
        }
        Some(raw) => {
            if with_peg != members.len() {
                let i = members
                    .iter()
                    .position(|m| m.peg_pubkey.is_none())
                    .unwrap_or(0);
                return Err(ConfigError::invalid(
                    format!("members[{i}].peg_pubkey"),
                    "missing: with a [peg_wallet] section every member needs a peg key",
                ));
            }
            let member_keys: HashSet<[u8; 33]> = members
                .iter()
                .flat_map(|m| std::iter::once(m.block_pubkey).chain(m.peg_pubkey))
                .map(|k| k.serialize())
                .collect();
            validate_peg_wallet(raw, &member_keys).map(Some)
        }
    }
}

fn validate_members(raw_members: Vec<RawMember>) -> Result<Vec<MemberConfig>, ConfigError> {
    let mut names = HashSet::new();
    // Block and peg keys of all members: a key serves one purpose of one member.
    let mut keys = HashSet::new();
    let mut peer_ids = HashSet::new();
    let mut addresses = HashSet::new();
    let mut members = Vec::with_capacity(raw_members.len());
    for (i, raw) in raw_members.into_iter().enumerate() {
        let key = |field: &str| format!("members[{i}].{field}");

        let name = raw.name.ok_or_else(|| ConfigError::missing(key("name")))?;
        check_member_name(&name).map_err(|e| ConfigError::invalid(key("name"), e))?;
        if !names.insert(name.clone()) {
            return Err(ConfigError::invalid(
                key("name"),
                format!("duplicate member name `{name}`"),
            ));
        }

        let pubkey_text = raw
            .block_pubkey
            .ok_or_else(|| ConfigError::missing(key("block_pubkey")))?;
        let block_pubkey = parse_block_pubkey(&pubkey_text)
            .map_err(|e| ConfigError::invalid(key("block_pubkey"), e))?;
        if !keys.insert(block_pubkey.serialize()) {
            return Err(ConfigError::invalid(
                key("block_pubkey"),
                format!("duplicate block public key {block_pubkey} (already a member's block or peg key)"),
            ));
        }

        let peg_pubkey = match raw.peg_pubkey {
            None => None,
            Some(text) => {
                let peg = parse_block_pubkey(&text)
                    .map_err(|e| ConfigError::invalid(key("peg_pubkey"), e))?;
                if !keys.insert(peg.serialize()) {
                    return Err(ConfigError::invalid(
                        key("peg_pubkey"),
                        format!("duplicate key {peg}: already a member's block or peg key"),
                    ));
                }
                Some(peg)
            }
        };

        let peer_text = raw
            .peer_id
            .ok_or_else(|| ConfigError::missing(key("peer_id")))?;
        let peer_id = parse_ed25519_peer_id(&peer_text)
            .map_err(|e| ConfigError::invalid(key("peer_id"), e))?;
        if !peer_ids.insert(peer_id) {
            return Err(ConfigError::invalid(
                key("peer_id"),
                format!("duplicate PeerId {peer_id}"),
            ));
        }

        let address_text = raw
            .address
            .ok_or_else(|| ConfigError::missing(key("address")))?;
        let address =
            parse_multiaddr(&address_text).map_err(|e| ConfigError::invalid(key("address"), e))?;
        if tcp_port(&address) == Some(0) {
            return Err(ConfigError::invalid(
                key("address"),
                format!("`{address_text}` has port 0; peers need a fixed port to dial"),
            ));
        }
        if !addresses.insert(address.clone()) {
            return Err(ConfigError::invalid(
                key("address"),
                format!("duplicate address {address}"),
            ));
        }

        members.push(MemberConfig {
            name,
            block_pubkey,
            peg_pubkey,
            peer_id,
            address,
        });
    }
    Ok(members)
}
