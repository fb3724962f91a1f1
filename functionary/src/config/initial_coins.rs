//! `[initial_coins]` of the federation config: policy-asset coins the genesis block creates, for development and
//! test chains (Elements' `-initialfreecoins`). A production federation leaves it out: its L-BTC comes only from
//! peg-ins.

use serde::Deserialize;

use super::error::ConfigError;

/// Most satoshis that can exist (21 million coins).
pub const MAX_MONEY: u64 = 21_000_000 * 100_000_000;
/// Longest accepted script, bytes (`MAX_SCRIPT_SIZE`).
const MAX_SCRIPT_LEN: usize = 10_000;

/// Coins the genesis coinbase pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialCoinsConfig {
    /// Satoshis of the policy asset, 1..=[`MAX_MONEY`].
    pub amount: u64,
    /// The scriptPubKey they are paid to.
    pub script_pubkey: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInitialCoins {
    amount: Option<i64>,
    script_pubkey: Option<String>,
}

pub(crate) fn validate_initial_coins(
    raw: Option<RawInitialCoins>,
) -> Result<Option<InitialCoinsConfig>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let amount = raw
        .amount
        .ok_or_else(|| ConfigError::missing("initial_coins.amount"))?;
    let amount = u64::try_from(amount)
        .ok()
        .filter(|a| (1..=MAX_MONEY).contains(a))
        .ok_or_else(|| {
            ConfigError::invalid(
                "initial_coins.amount",
                format!("{amount} sat is not in 1..={MAX_MONEY}"),
            )
        })?;
    let text = raw
        .script_pubkey
        .ok_or_else(|| ConfigError::missing("initial_coins.script_pubkey"))?;
    let script_pubkey = hex::decode(&text).map_err(|e| {
        ConfigError::invalid("initial_coins.script_pubkey", format!("not hex: {e}"))
    })?;
    if script_pubkey.is_empty() || script_pubkey.len() > MAX_SCRIPT_LEN {
        return Err(ConfigError::invalid(
            "initial_coins.script_pubkey",
            format!(
                "{} bytes; 1 to {MAX_SCRIPT_LEN} are allowed",
                script_pubkey.len()
            ),
        ));
    }
    Ok(Some(InitialCoinsConfig {
        amount,
        script_pubkey,
    }))
}

impl InitialCoinsConfig {
    pub(crate) fn to_toml_table(&self) -> toml::Table {
        let mut table = toml::Table::new();
        table.insert(
            "amount".into(),
            toml::Value::Integer(i64::try_from(self.amount).unwrap_or(i64::MAX)),
        );
        table.insert(
            "script_pubkey".into(),
            hex::encode(&self.script_pubkey).into(),
        );
        table
    }
}
