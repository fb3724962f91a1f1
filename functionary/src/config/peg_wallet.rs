//! The `[peg_wallet]` section of `federation.toml`: the federation's Bitcoin multisig wallet.
//!
//! ```toml
//! [peg_wallet]
//! emergency_keys = ["02…", "03…", "02…"]   # hex, compressed; held offline by the emergency key holders
//! emergency_threshold = 2                  # k of the emergency keys
//! csv_timelock = 4032                      # blocks (BIP 68 relative lock) before the emergency path opens
//!
//! [[members]]
//! peg_pubkey = "03…"                       # every member's peg-wallet key (in its HSM)
//! ```
//!
//! The normal spending path is `threshold` of the members' `peg_pubkey`s (the same m as for blocks); after
//! `csv_timelock` blocks without a spend, `emergency_threshold` of the `emergency_keys` can spend.
//! The section and the members' `peg_pubkey` come together: either every member has a `peg_pubkey` and the
//! section is present, or neither (configs written before the peg wallet existed).

use std::collections::HashSet;

use serde::Deserialize;

use super::error::ConfigError;
use super::fields::parse_block_pubkey;

/// Largest accepted number of emergency keys.
pub const MAX_EMERGENCY_KEYS: usize = 15;
/// Largest CSV timelock in blocks that BIP 68 can express (16 bits).
pub const MAX_CSV_TIMELOCK: u32 = 0xFFFF;

/// The validated `[peg_wallet]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PegWalletConfig {
    /// Emergency backup keys, in file order; distinct from each other and from every member key (1 to 15).
    pub emergency_keys: Vec<secp256k1::PublicKey>,
    /// Number of emergency signatures needed, `1..=emergency_keys.len()`.
    pub emergency_threshold: usize,
    /// Relative timelock (blocks, BIP 68) after which the emergency path may spend, `1..=65535`.
    pub csv_timelock: u32,
}

/// `[peg_wallet]` as written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPegWallet {
    emergency_keys: Option<Vec<String>>,
    emergency_threshold: Option<i64>,
    csv_timelock: Option<i64>,
}

/// Validates `[peg_wallet]`. `member_keys` are every member's block and peg keys (an emergency key may not be one
/// of them).
pub(crate) fn validate_peg_wallet(
    raw: RawPegWallet,
    member_keys: &HashSet<[u8; 33]>,
) -> Result<PegWalletConfig, ConfigError> {
    let texts = raw
        .emergency_keys
        .ok_or_else(|| ConfigError::missing("peg_wallet.emergency_keys"))?;
    if texts.is_empty() || texts.len() > MAX_EMERGENCY_KEYS {
        return Err(ConfigError::invalid(
            "peg_wallet.emergency_keys",
            format!(
                "{} keys given; 1 to {MAX_EMERGENCY_KEYS} are required",
                texts.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    let mut emergency_keys = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let key_name = format!("peg_wallet.emergency_keys[{i}]");
        let key =
            parse_block_pubkey(text).map_err(|e| ConfigError::invalid(key_name.clone(), e))?;
        if !seen.insert(key.serialize()) {
            return Err(ConfigError::invalid(
                key_name,
                format!("duplicate emergency key {key}"),
            ));
        }
        if member_keys.contains(&key.serialize()) {
            return Err(ConfigError::invalid(
                key_name,
                format!(
                    "{key} is also a member's block or peg key; emergency keys must be separate"
                ),
            ));
        }
        emergency_keys.push(key);
    }

    let threshold_raw = raw
        .emergency_threshold
        .ok_or_else(|| ConfigError::missing("peg_wallet.emergency_threshold"))?;
    let emergency_threshold = usize::try_from(threshold_raw)
        .ok()
        .filter(|t| (1..=emergency_keys.len()).contains(t))
        .ok_or_else(|| {
            ConfigError::invalid(
                "peg_wallet.emergency_threshold",
                format!(
                    "{threshold_raw} must be between 1 and the number of emergency keys ({})",
                    emergency_keys.len()
                ),
            )
        })?;

    let csv_raw = raw
        .csv_timelock
        .ok_or_else(|| ConfigError::missing("peg_wallet.csv_timelock"))?;
    let csv_timelock = u32::try_from(csv_raw)
        .ok()
        .filter(|t| (1..=MAX_CSV_TIMELOCK).contains(t))
        .ok_or_else(|| {
            ConfigError::invalid(
                "peg_wallet.csv_timelock",
                format!("{csv_raw} must be a number of blocks between 1 and {MAX_CSV_TIMELOCK} (BIP 68)"),
            )
        })?;

    Ok(PegWalletConfig {
        emergency_keys,
        emergency_threshold,
        csv_timelock,
    })
}

impl PegWalletConfig {
    /// The section as a TOML table.
    pub(crate) fn to_toml_table(&self) -> toml::Table {
        let mut table = toml::Table::new();
        table.insert(
            "emergency_keys".into(),
            toml::Value::Array(
                self.emergency_keys
                    .iter()
                    .map(|k| toml::Value::String(k.to_string()))
                    .collect(),
            ),
        );
        table.insert(
            "emergency_threshold".into(),
            toml::Value::Integer(self.emergency_threshold as i64),
        );
        table.insert(
            "csv_timelock".into(),
            toml::Value::Integer(i64::from(self.csv_timelock)),
        );
        table
    }
}
