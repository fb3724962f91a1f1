//! Parsing of positional RPC parameters. Every failure is `-8` (invalid parameter) with a message naming the
//! parameter, as the issue asks (bitcoind itself answers some type errors with `-3`).

use std::str::FromStr;

use serde_json::Value;

use super::jsonrpc::RpcFault;

/// A required 32-byte hash in display (reversed hex) order: a block hash or a txid.
pub fn param_hash<H>(params: &[Value], index: usize, name: &str) -> Result<H, RpcFault>
where
    H: FromStr,
    H::Err: std::fmt::Display,
{
    let text = match params.get(index) {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => {
            return Err(RpcFault::invalid_parameter(format!("{name} is required")))
        }
        Some(other) => {
            return Err(RpcFault::invalid_parameter(format!(
                "{name} must be a hex string, got {other}"
            )));
        }
    };
    if text.len() != 64 {
        return Err(RpcFault::invalid_parameter(format!(
            "{name} must be of length 64 (not {}, for '{text}')",
            text.len()
        )));
    }
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RpcFault::invalid_parameter(format!(
            "{name} must be hexadecimal string (not '{text}')"
        )));
    }
    H::from_str(text).map_err(|e| {
        RpcFault::invalid_parameter(format!("{name} is not a valid hash ('{text}'): {e}"))
    })
}

/// An optional 32-byte hash (absent or null → `None`).
pub fn param_hash_opt<H>(params: &[Value], index: usize, name: &str) -> Result<Option<H>, RpcFault>
where
    H: FromStr,
    H::Err: std::fmt::Display,
{
    match params.get(index) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => param_hash(params, index, name).map(Some),
    }
}

/// A required integer.
pub fn param_int(params: &[Value], index: usize, name: &str) -> Result<i64, RpcFault> {
    match params.get(index) {
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            RpcFault::invalid_parameter(format!("{name} must be an integer, got {n}"))
        }),
        None | Some(Value::Null) => Err(RpcFault::invalid_parameter(format!("{name} is required"))),
        Some(other) => Err(RpcFault::invalid_parameter(format!(
            "{name} must be an integer, got {other}"
        ))),
    }
}

/// A required output index (0 ..= u32::MAX).
pub fn param_vout(params: &[Value], index: usize, name: &str) -> Result<u32, RpcFault> {
    let n = param_int(params, index, name)?;
    u32::try_from(n).map_err(|_| {
        RpcFault::invalid_parameter(format!(
            "{name} must be a non-negative output index below 2^32, got {n}"
        ))
    })
}

/// An optional boolean with a default.
pub fn param_bool(
    params: &[Value],
    index: usize,
    name: &str,
    default: bool,
) -> Result<bool, RpcFault> {
    match params.get(index) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(RpcFault::invalid_parameter(format!(
            "{name} must be a boolean (true or false), got {other}"
        ))),
    }
}

/// A verbosity level as Core's `ParseVerbosity`: a number, or a boolean (false = 0, true = 1); `default` when
/// absent; refused above `max`.
pub fn param_verbosity(
    params: &[Value],
    index: usize,
    name: &str,
    default: u8,
    max: u8,
) -> Result<u8, RpcFault> {
    let out_of_range = |got: &dyn std::fmt::Display| {
        RpcFault::invalid_parameter(format!("{name} must be between 0 and {max}, got {got}"))
    };
    match params.get(index) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(u8::from(*b)),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|v| u8::try_from(v).ok())
            .filter(|v| *v <= max)
            .ok_or_else(|| out_of_range(n)),
        Some(other) => Err(out_of_range(other)),
    }
}

/// A required string.
pub fn param_str<'a>(params: &'a [Value], index: usize, name: &str) -> Result<&'a str, RpcFault> {
    match params.get(index) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(RpcFault::invalid_parameter(format!("{name} is required"))),
        Some(other) => Err(RpcFault::invalid_parameter(format!(
            "{name} must be a string, got {other}"
        ))),
    }
}

/// An optional amount in coins (a JSON number or a decimal string, at most 8 decimals, not negative) as
/// satoshis; `default` when absent.
pub fn param_amount(
    params: &[Value],
    index: usize,
    name: &str,
    default: u64,
) -> Result<u64, RpcFault> {
    let text = match params.get(index) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(RpcFault::invalid_parameter(format!(
                "{name} must be an amount, got {other}"
            )))
        }
    };
    parse_coins(&text).ok_or_else(|| {
        RpcFault::invalid_parameter(format!(
            "{name} is not a valid amount (coins, at most 8 decimals, not negative): {text}"
        ))
    })
}

/// A decimal coin amount as satoshis (`"0.1"` → 10,000,000); also the exponent forms serde_json prints for small
/// numbers (`1e-5`).
fn parse_coins(text: &str) -> Option<u64> {
    const COIN: u64 = 100_000_000;
    if text.contains(['e', 'E']) {
        let value: f64 = text.parse().ok()?;
        let sats = (value * COIN as f64).round();
        return (value >= 0.0
            && sats.is_finite()
            && sats <= 21e14
            && (sats / COIN as f64 - value).abs() < 1e-12)
            .then_some(sats as u64);
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if fraction.len() > 8
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: u64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<8}").parse().ok()?
    };
    whole.checked_mul(COIN)?.checked_add(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_params_are_display_order_and_errors_name_the_parameter() {
        let display = "1466275836220db2944ca059a3a10ef6fd2ea684b0688d2c379296888a206003";
        let hash: elements::BlockHash =
            param_hash(&[json!(display)], 0, "blockhash").expect("valid hash");
        assert_eq!(hash.to_string(), display);
        for bad in [json!("abc"), json!("zz".repeat(32)), json!(5)] {
            let fault = param_hash::<elements::Txid>(&[bad], 0, "txid").expect_err("invalid");
            assert_eq!(fault.code, -8);
            assert!(fault.message.contains("txid"), "{}", fault.message);
        }
        assert!(param_hash::<elements::Txid>(&[], 0, "txid").is_err());
    }

    #[test]
    fn verbosity_int_and_vout_params() {
        assert_eq!(param_verbosity(&[], 0, "verbosity", 1, 1), Ok(1));
        assert_eq!(param_verbosity(&[json!(0)], 0, "verbosity", 1, 1), Ok(0));
        assert_eq!(
            param_verbosity(&[json!(false)], 0, "verbosity", 1, 1),
            Ok(0)
        );
        assert_eq!(param_verbosity(&[json!(2)], 0, "verbosity", 1, 2), Ok(2));
        assert_eq!(
            param_verbosity(&[json!(3)], 0, "verbosity", 1, 2).map_err(|f| f.code),
            Err(-8)
        );
        assert_eq!(param_int(&[json!(4)], 0, "height"), Ok(4));
        let fault = param_int(&[json!("x")], 0, "height").expect_err("not a number");
        assert!(fault.message.contains("height"));
        let fault = param_vout(&[json!(-1)], 0, "n").expect_err("negative");
        assert_eq!(fault.code, -8);
        assert!(fault.message.contains('n'));
    }

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(parse_coins("0.1"), Some(10_000_000));
        assert_eq!(parse_coins("1"), Some(100_000_000));
        assert_eq!(parse_coins("0.00000001"), Some(1));
        assert_eq!(parse_coins("1e-5"), Some(1000));
        assert_eq!(parse_coins("0.000000001"), None);
        assert_eq!(parse_coins("-1"), None);
        assert_eq!(parse_coins("abc"), None);
        assert_eq!(
            param_amount(&[json!(0.1)], 0, "maxfeerate", 0),
            Ok(10_000_000)
        );
        assert_eq!(param_amount(&[], 0, "maxfeerate", 7), Ok(7));
    }
}
