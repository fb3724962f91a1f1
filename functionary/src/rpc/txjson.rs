//! Elements-shaped JSON for transactions, as Elements' `TxToUniv` (`core_write.cpp`, Elements master @7110a84)
//! prints them: `txid`, `hash`, `wtxid`, `withash`, `version`, `size`, `vsize`, `weight`, `locktime`, `vin`,
//! `vout`, the `fee` map (asset → amount of the explicit fee outputs), and `hex` when asked. Used by
//! `decoderawtransaction`, `getrawtransaction` and `getblock` verbosity 2.
//!
//! Amounts are JSON numbers in coins (satoshis / 10^8). Elements prints them with exactly 8 decimals
//! (`"0.00100000"` as a bare number); our JSON numbers carry the same value (`0.001`). Values with more than 15
//! significant digits (above 10 million coins with all 8 decimals used) may print rounded in the last digit,
//! because the JSON library holds numbers as f64.

use std::collections::BTreeMap;

use elements::confidential::{Asset, Nonce, Value as ConfValue};
use elements::encode::serialize;
use elements::{AssetId, Transaction, TxIn, TxOut};
use serde_json::{json, Map, Value};

use super::blockjson::script_asm;
use super::scriptjson::script_pubkey_json;

/// Satoshis as a JSON amount in coins (`ValueFromAmount`).
pub fn amount_json(satoshis: u64) -> Value {
    // f64 holds every satoshi amount up to 2^53 exactly; the division rounds to the nearest double.
    json!(satoshis as f64 / 100_000_000.0)
}

/// A 32-byte hash in Core's `uint256::GetHex` order (byte-reversed).
fn reversed_hex(bytes: [u8; 32]) -> String {
    let mut bytes = bytes;
    bytes.reverse();
    hex::encode(bytes)
}

/// Hex of a confidential field's commitment bytes as Elements' `GetHex` prints them (empty for null).
fn commitment_hex<T: elements::encode::Encodable>(field: &T, is_null: bool) -> String {
    if is_null {
        String::new()
    } else {
        hex::encode(serialize(field))
    }
}

/// What `secp256k1_rangeproof_info` reads from a rangeproof's header: `(exponent, mantissa bits, min, max)`.
/// `None` for a malformed header (then Elements prints no range fields either).
pub fn rangeproof_info(proof: &[u8]) -> Option<(i32, u32, u64, u64)> {
    if proof.len() < 65 {
        return None;
    }
    let header = *proof.first()?;
    if header & 128 != 0 {
        return None;
    }
    let mut offset = 0usize;
    let mut exponent: i32 = -1;
    let mut mantissa: u32 = 0;
    let mut max_value: u64 = 0;
    if header & 64 != 0 {
        exponent = i32::from(header & 31);
        offset += 1;
        if exponent > 18 {
            return None;
        }
        mantissa = u32::from(*proof.get(offset)?) + 1;
        if mantissa > 64 {
            return None;
        }
        max_value = u64::MAX >> (64 - mantissa);
    }
    offset += 1;
    for _ in 0..exponent.max(0) {
        max_value = max_value.checked_mul(10)?;
    }
    let mut min_value = 0u64;
    if header & 32 != 0 {
        let bytes: [u8; 8] = proof.get(offset..offset + 8)?.try_into().ok()?;
        min_value = u64::from_be_bytes(bytes);
    }
    let max_value = max_value.checked_add(min_value)?;
    Some((exponent, mantissa, min_value, max_value))
}

fn input_json(tx: &Transaction, input: &TxIn) -> Value {
    let mut out = Map::new();
    if tx.is_coinbase() {
        out.insert(
            "coinbase".into(),
            json!(hex::encode(input.script_sig.as_bytes())),
        );
    } else {
        out.insert("txid".into(), json!(input.previous_output.txid.to_string()));
        out.insert("vout".into(), json!(input.previous_output.vout));
        out.insert(
            "scriptSig".into(),
            json!({
                "asm": script_asm(&input.script_sig),
                "hex": hex::encode(input.script_sig.as_bytes()),
            }),
        );
        out.insert("is_pegin".into(), json!(input.is_pegin));
    }
    out.insert("sequence".into(), json!(input.sequence.to_consensus_u32()));
    let script_witness: Vec<Value> = input
        .witness
        .script_witness
        .iter()
        .map(|item| json!(hex::encode(item)))
        .collect();
    if !script_witness.is_empty() {
        out.insert("txinwitness".into(), Value::Array(script_witness));
    }
    if !input.witness.pegin_witness.is_empty() {
        // the pegin witness serializes as a witness stack
        let stack: Vec<Vec<u8>> =
            elements::encode::deserialize(&serialize(&input.witness.pegin_witness))
                .unwrap_or_default();
        let items: Vec<Value> = stack.iter().map(|item| json!(hex::encode(item))).collect();
        out.insert("pegin_witness".into(), Value::Array(items));
    }
    if !input.asset_issuance.is_null() {
        out.insert("issuance".into(), issuance_json(input));
    }
    Value::Object(out)
}

fn issuance_json(input: &TxIn) -> Value {
    let issuance = &input.asset_issuance;
    let mut out = Map::new();
    out.insert(
        "assetBlindingNonce".into(),
        json!(reversed_hex(issuance.asset_blinding_nonce.to_byte_array())),
    );
    let (asset, token) = input.issuance_ids();
    if issuance.asset_blinding_nonce.is_null() {
        let entropy = AssetId::generate_asset_entropy(
            input.previous_output,
            issuance.asset_entropy.into_contract_hash(),
        );
        out.insert("assetEntropy".into(), json!(entropy.to_string()));
        out.insert("isreissuance".into(), json!(false));
        out.insert("token".into(), json!(token.to_string()));
    } else {
        out.insert(
            "assetEntropy".into(),
            json!(issuance.asset_entropy.to_string()),
        );
        out.insert("isreissuance".into(), json!(true));
    }
    out.insert("asset".into(), json!(asset.to_string()));
    match issuance.amount {
        ConfValue::Explicit(amount) => {
            out.insert("assetamount".into(), amount_json(amount));
        }
        ConfValue::Confidential(_) => {
            out.insert(
                "assetamountcommitment".into(),
                json!(hex::encode(serialize(&issuance.amount))),
            );
        }
        ConfValue::Null => {}
    }
    match issuance.inflation_keys {
        ConfValue::Explicit(amount) => {
            out.insert("tokenamount".into(), amount_json(amount));
        }
        ConfValue::Confidential(_) => {
            out.insert(
                "tokenamountcommitment".into(),
                json!(hex::encode(serialize(&issuance.inflation_keys))),
            );
        }
        ConfValue::Null => {}
    }
    Value::Object(out)
}

/// Value, asset and nonce fields of an output as `TxToUniv` prints them (`gettxout` uses the same names but no
/// proof details: pass `with_proof_details = false`).
pub fn output_amount_fields(output: &TxOut, with_proof_details: bool) -> Map<String, Value> {
    let mut out = Map::new();
    match output.value {
        ConfValue::Explicit(value) => {
            out.insert("value".into(), amount_json(value));
        }
        _ => {
            if with_proof_details {
                let proof = output.witness.rangeproof.to_vec();
                if let Some((exponent, mantissa, min, max)) = rangeproof_info(&proof) {
                    if exponent == -1 {
                        out.insert("value".into(), amount_json(min));
                    } else {
                        out.insert("value-minimum".into(), amount_json(min));
                        out.insert("value-maximum".into(), amount_json(max));
                    }
                    out.insert("ct-exponent".into(), json!(exponent));
                    out.insert("ct-bits".into(), json!(mantissa));
                }
                if !output.witness.surjection_proof.is_empty() {
                    let bytes = output.witness.surjection_proof.to_vec();
                    out.insert("surjectionproof".into(), json!(hex::encode(bytes)));
                }
            }
            out.insert(
                "valuecommitment".into(),
                json!(commitment_hex(&output.value, output.value.is_null())),
            );
        }
    }
    match output.asset {
        Asset::Explicit(asset) => {
            out.insert("asset".into(), json!(asset.to_string()));
        }
        _ => {
            out.insert(
                "assetcommitment".into(),
                json!(commitment_hex(&output.asset, output.asset.is_null())),
            );
        }
    }
    out.insert(
        "commitmentnonce".into(),
        json!(commitment_hex(&output.nonce, output.nonce.is_null())),
    );
    out
}

/// Whether the nonce's bytes are a valid public key (Elements' `commitmentnonce_fully_valid`).
fn nonce_is_valid_pubkey(nonce: &Nonce) -> bool {
    match nonce {
        Nonce::Confidential(_) => secp256k1::PublicKey::from_slice(&serialize(nonce)).is_ok(),
        _ => false,
    }
}

fn output_json(index: usize, output: &TxOut) -> Value {
    let mut out = output_amount_fields(output, true);
    out.insert(
        "commitmentnonce_fully_valid".into(),
        json!(nonce_is_valid_pubkey(&output.nonce)),
    );
    out.insert("n".into(), json!(index));
    out.insert(
        "scriptPubKey".into(),
        script_pubkey_json(&output.script_pubkey),
    );
    Value::Object(out)
}

/// `TxToUniv`: the transaction's fields, and `hex` (the serialized transaction) when `include_hex`.
pub fn tx_json(tx: &Transaction, include_hex: bool) -> Map<String, Value> {
    let mut out = Map::new();
    let wtxid = tx.wtxid().to_string();
    out.insert("txid".into(), json!(tx.txid().to_string()));
    out.insert("hash".into(), json!(wtxid));
    out.insert("wtxid".into(), json!(wtxid));
    out.insert(
        "withash".into(),
        json!(reversed_hex(chain::ledger::witness_only_hash(tx))),
    );
    out.insert("version".into(), json!(tx.version));
    out.insert("size".into(), json!(tx.size()));
    out.insert("vsize".into(), json!(tx.vsize()));
    out.insert("weight".into(), json!(tx.weight()));
    out.insert("locktime".into(), json!(tx.lock_time.to_consensus_u32()));
    let vin: Vec<Value> = tx.input.iter().map(|input| input_json(tx, input)).collect();
    out.insert("vin".into(), Value::Array(vin));
    let vout: Vec<Value> = tx
        .output
        .iter()
        .enumerate()
        .map(|(index, output)| output_json(index, output))
        .collect();
    out.insert("vout".into(), Value::Array(vout));
    let mut fees: BTreeMap<String, u64> = BTreeMap::new();
    for output in tx.output.iter().filter(|o| o.is_fee()) {
        if let (Some(asset), Some(value)) = (output.asset.explicit(), output.value.explicit()) {
            let entry = fees.entry(asset.to_string()).or_insert(0);
            *entry = entry.saturating_add(value);
        }
    }
    let fee: Map<String, Value> = fees
        .into_iter()
        .map(|(asset, value)| (asset, amount_json(value)))
        .collect();
    out.insert("fee".into(), Value::Object(fee));
    if include_hex {
        out.insert("hex".into(), json!(hex::encode(serialize(tx))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_coins() {
        assert_eq!(amount_json(100_000), json!(0.001));
        assert_eq!(amount_json(0), json!(0.0));
        assert_eq!(amount_json(2_100_000_000_000_000), json!(21_000_000.0));
        assert_eq!(amount_json(1), json!(0.00000001));
        assert_eq!(amount_json(123_456_789).to_string(), "1.23456789");
    }

    #[test]
    fn matches_elements_bitcoin_tx_vector() {
        // Elements test/util/data/txcreatemultisig4_elements.{hex,json} (elements-tx output)
        let hex_tx = "01000000000001010000000000000000000000000000000000000000000000000000000000000000010000000005f5e1000017a9146edf12858999f0dae74f9c692e6694ee3621b2ac8700000000";
        let tx: Transaction =
            elements::encode::deserialize(&hex::decode(hex_tx).expect("hex")).expect("tx");
        let json = Value::Object(tx_json(&tx, true));
        assert_eq!(
            json["txid"],
            json!("95b2c6399f5624a7171d20ba4c7227874128e0addd9bf36a4aa9576dd8098226")
        );
        assert_eq!(json["hash"], json["txid"]);
        assert_eq!(
            json["withash"],
            json!("d0d3b17552f63780c06e5558483412d8384702cd777404f52a8a9680304fe582")
        );
        assert_eq!(json["version"], json!(1));
        assert_eq!(json["size"], json!(78));
        assert_eq!(json["vsize"], json!(78));
        assert_eq!(json["weight"], json!(312));
        assert_eq!(json["locktime"], json!(0));
        assert_eq!(json["vin"], json!([]));
        let out = &json["vout"][0];
        assert_eq!(out["value"], json!(1.0));
        assert_eq!(out["asset"], json!("00".repeat(32)));
        assert_eq!(out["commitmentnonce"], json!(""));
        assert_eq!(out["commitmentnonce_fully_valid"], json!(false));
        assert_eq!(out["n"], json!(0));
        assert_eq!(
            out["scriptPubKey"]["asm"],
            json!("OP_HASH160 6edf12858999f0dae74f9c692e6694ee3621b2ac OP_EQUAL")
        );
        assert_eq!(out["scriptPubKey"]["type"], json!("scripthash"));
        assert_eq!(json["fee"], json!({}));
        assert_eq!(json["hex"], json!(hex_tx));
        // the same file's descriptor, with its (mainnet) address
        assert_eq!(
            super::super::scriptjson::descriptor_checksum(
                "addr(3BoFUz1StqcNcgUTZE5cC1eFhuYFzj3fGH)"
            )
            .as_deref(),
            Some("466tx6fn")
        );
    }

    #[test]
    fn rangeproof_header_is_parsed_like_secp256k1_zkp() {
        // exponent 0, mantissa 52 bits (byte 51), min value 1000
        let mut proof = vec![0x40 | 0x20, 51];
        proof.extend_from_slice(&1000u64.to_be_bytes());
        proof.resize(100, 0);
        assert_eq!(
            rangeproof_info(&proof),
            Some((0, 52, 1000, (u64::MAX >> 12) + 1000))
        );
        // exact value proof: no range, min only
        let mut exact = vec![0x20];
        exact.extend_from_slice(&7u64.to_be_bytes());
        exact.resize(65, 0);
        assert_eq!(rangeproof_info(&exact), Some((-1, 0, 7, 7)));
        assert_eq!(rangeproof_info(&[0x80; 70]), None);
        assert_eq!(rangeproof_info(&[0x40; 10]), None);
    }
}
