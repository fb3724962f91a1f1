//! Transaction methods: `decoderawtransaction`, `getrawtransaction`, `sendrawtransaction`, `testmempoolaccept`
//! (Elements master @7110a84 `rpc/rawtransaction.cpp`, `rpc/mempool.cpp`, `node/transaction.cpp`).

use elements::{BlockHash, OutPoint, Transaction, Txid};
use serde_json::{json, Map, Value};

use super::faults::{
    rejection_fault, rejection_text, store_fault, DESERIALIZATION_ERROR,
    VERIFY_ALREADY_IN_UTXO_SET, VERIFY_ERROR,
};
use super::jsonrpc::{RpcFault, INVALID_ADDRESS_OR_KEY};
use super::params::{
    param_amount, param_bool, param_hash, param_hash_opt, param_str, param_verbosity,
};
use super::scriptjson::script_pubkey_json;
use super::txjson::{amount_json, tx_json};
use super::RpcContext;

/// `DEFAULT_MAX_RAW_TX_FEE_RATE`: 0.10 coin per 1000 vbytes, in satoshis.
const DEFAULT_MAX_FEE_RATE: u64 = 10_000_000;
/// Fee rates of a whole coin per kvB or more are refused as a parameter (`ParseFeeRate`).
const MAX_ACCEPTED_FEE_RATE: u64 = 100_000_000;
/// `MAX_PACKAGE_COUNT`: at most this many transactions in one `testmempoolaccept`.
const MAX_PACKAGE_COUNT: usize = 25;
/// Largest script that can ever be spent (`MAX_SCRIPT_SIZE`).
const MAX_SCRIPT_SIZE: usize = 10_000;

/// Hex → transaction; `None` for bad hex, bytes that do not decode, or trailing bytes.
pub fn decode_transaction(text: &str) -> Option<Transaction> {
    let bytes = hex::decode(text.trim()).ok()?;
    elements::encode::deserialize(&bytes).ok()
}

/// `decoderawtransaction "hexstring" ( iswitness )`. `iswitness` is accepted and ignored: Elements transactions
/// always carry the witness flag byte, so there is one decoding.
pub fn decoderawtransaction(_ctx: &RpcContext, params: &[Value]) -> Result<Value, RpcFault> {
    let text = param_str(params, 0, "hexstring")?;
    param_bool(params, 1, "iswitness", true)?;
    let tx = decode_transaction(text)
        .ok_or_else(|| RpcFault::new(DESERIALIZATION_ERROR, "TX decode failed"))?;
    Ok(Value::Object(tx_json(&tx, false)))
}

/// Confirmation fields of a transaction in a stored block: `blockhash`, `confirmations`, `time`, `blocktime`.
fn confirmed_fields(
    ctx: &RpcContext,
    out: &mut Map<String, Value>,
    height: u32,
    block: &BlockHash,
) -> Result<(), RpcFault> {
    let (tip, _) = ctx.store.tip().map_err(store_fault)?;
    out.insert("blockhash".into(), json!(block.to_string()));
    out.insert(
        "confirmations".into(),
        json!(i64::from(tip) - i64::from(height) + 1),
    );
    if let Some(header) = ctx.store.header(block).map_err(store_fault)? {
        out.insert("time".into(), json!(header.time));
        out.insert("blocktime".into(), json!(header.time));
    }
    Ok(())
}

/// The `prevout` object of verbosity 2/3 (`generated`, `height`, `value`, `scriptPubKey`), read from the
/// transaction index (we keep every transaction, so no undo data is needed). `None` for coinbase and peg-in
/// inputs and for a previous transaction that is not confirmed.
pub fn prevout_json(ctx: &RpcContext, outpoint: &OutPoint) -> Result<Option<Value>, RpcFault> {
    let Some((prev, height, _)) = ctx.store.transaction(&outpoint.txid).map_err(store_fault)?
    else {
        return Ok(None);
    };
    let Some(output) = usize::try_from(outpoint.vout)
        .ok()
        .and_then(|i| prev.output.get(i))
    else {
        return Ok(None);
    };
    let value = match output.value.explicit() {
        Some(value) => amount_json(value),
        None => json!("<confidential>"),
    };
    Ok(Some(json!({
        "generated": prev.is_coinbase() && height > 0,
        "height": height,
        "value": value,
        "scriptPubKey": script_pubkey_json(&output.script_pubkey),
    })))
}

/// Adds `prevout` to every input of a confirmed transaction's JSON that has one.
pub fn add_prevouts(
    ctx: &RpcContext,
    tx: &Transaction,
    out: &mut Map<String, Value>,
) -> Result<(), RpcFault> {
    if tx.is_coinbase() {
        return Ok(());
    }
    let Some(Value::Array(vin)) = out.get_mut("vin") else {
        return Ok(());
    };
    for (input, entry) in tx.input.iter().zip(vin.iter_mut()) {
        if input.is_pegin {
            continue;
        }
        if let (Some(prevout), Value::Object(entry)) =
            (prevout_json(ctx, &input.previous_output)?, entry)
        {
            entry.insert("prevout".into(), prevout);
        }
    }
    Ok(())
}

/// `getrawtransaction "txid" ( verbosity "blockhash" )`: the mempool first, then the transaction index (every
/// confirmed transaction is indexed). Verbosity 0: hex; 1: `TxToUniv` plus `hex`, `blockhash`, `confirmations`,
/// `time`, `blocktime`; 2: also each input's `prevout` (confirmed transactions only, as elementsd).
pub fn getrawtransaction(ctx: &RpcContext, params: &[Value]) -> Result<Value, RpcFault> {
    let txid: Txid = param_hash(params, 0, "txid")?;
    let verbosity = param_verbosity(params, 1, "verbosity", 0, 2)?;
    let in_block: Option<BlockHash> = param_hash_opt(params, 2, "blockhash")?;
    let not_found = |what: &str| {
        RpcFault::new(
            INVALID_ADDRESS_OR_KEY,
            format!("{what}. Use gettransaction for wallet transactions."),
        )
    };
    let (tx, confirmed) = match in_block {
        Some(block_hash) => {
            let block = ctx
                .store
                .block(&block_hash)
                .map_err(store_fault)?
                .ok_or_else(|| RpcFault::new(INVALID_ADDRESS_OR_KEY, "Block hash not found"))?;
            let tx = block
                .txdata
                .into_iter()
                .find(|tx| tx.txid() == txid)
                .ok_or_else(|| not_found("No such transaction found in the provided block"))?;
            (tx, Some((block.header.height, block_hash)))
        }
        None => match ctx.ledger.mempool_transaction(&txid) {
            Some(tx) => (tx, None),
            None => match ctx.store.transaction(&txid).map_err(store_fault)? {
                Some((tx, height, block_hash)) => (tx, Some((height, block_hash))),
                None => return Err(not_found("No such mempool or blockchain transaction")),
            },
        },
    };
    if verbosity == 0 {
        return Ok(json!(hex::encode(elements::encode::serialize(&tx))));
    }
    let mut out = Map::new();
    if in_block.is_some() {
        // only main-chain blocks are stored
        out.insert("in_active_chain".into(), json!(true));
    }
    out.extend(tx_json(&tx, true));
    if let Some((height, block_hash)) = confirmed {
        confirmed_fields(ctx, &mut out, height, &block_hash)?;
        if verbosity == 2 {
            add_prevouts(ctx, &tx, &mut out)?;
        }
    }
    Ok(Value::Object(out))
}

/// `ceil(rate * vsize / 1000)`, Core's `CFeeRate::GetFee`.
fn fee_at_rate(rate_per_kvb: u64, vsize: usize) -> u64 {
    let vsize = u64::try_from(vsize).unwrap_or(u64::MAX);
    rate_per_kvb.saturating_mul(vsize).div_ceil(1000)
}

/// The `maxfeerate` parameter in satoshis per 1000 vbytes (0 = no limit).
fn param_max_fee_rate(params: &[Value], index: usize) -> Result<u64, RpcFault> {
    let rate = param_amount(params, index, "maxfeerate", DEFAULT_MAX_FEE_RATE)?;
    if rate >= MAX_ACCEPTED_FEE_RATE {
        return Err(RpcFault::invalid_parameter(
            "maxfeerate: fee rates larger than or equal to 1BTC/kvB are not accepted",
        ));
    }
    Ok(rate)
}

/// elementsd's checks before submission that are not consensus: a burn above `maxburnamount` (an explicit value
/// sent to an unspendable script other than a peg-out to our parent chain) and an explicit value with a nonce
/// (an output the sender forgot to blind).
fn check_outputs_before_submit(tx: &Transaction, max_burn: u64) -> Result<(), RpcFault> {
    for output in &tx.output {
        let script = output.script_pubkey.as_bytes();
        let unspendable = script.first() == Some(&0x6a) || script.len() > MAX_SCRIPT_SIZE;
        let pegout_to_parent = chain::ledger::parse_pegout_script(&output.script_pubkey)
            .is_some_and(|p| p.parent_genesis == crate::ledger::REGTEST_GENESIS_INTERNAL);
        if unspendable && !pegout_to_parent && output.value.explicit().is_some_and(|v| v > max_burn)
        {
            return Err(RpcFault::new(
                VERIFY_ERROR,
                "Unspendable output exceeds maximum configured by user (maxburnamount)",
            ));
        }
    }
    for output in &tx.output {
        if !output.nonce.is_null() && output.value.is_explicit() {
            return Err(RpcFault::new(
                VERIFY_ERROR,
                "Transaction output has nonce, but is not blinded. Did you forget to call blindrawtransaction, or rawblindrawtransaction?",
            ));
        }
    }
    Ok(())
}

/// `sendrawtransaction "hexstring" ( maxfeerate maxburnamount )` → txid. As elementsd: a transaction with an
/// output still in the UTXO set is `-27`; one already in the mempool returns its txid again (no error); with a
/// `maxfeerate` the transaction is test-accepted first and a fee above it is `-25`; otherwise the ledger's
/// verdict maps through [`rejection_fault`].
pub fn sendrawtransaction(ctx: &RpcContext, params: &[Value]) -> Result<Value, RpcFault> {
    let text = param_str(params, 0, "hexstring")?;
    let tx = decode_transaction(text).ok_or_else(|| {
        RpcFault::new(
            DESERIALIZATION_ERROR,
            "TX decode failed. Make sure the tx has at least one input.",
        )
    })?;
    let max_fee_rate = param_max_fee_rate(params, 1)?;
    let max_burn = param_amount(params, 2, "maxburnamount", 0)?;
    check_outputs_before_submit(&tx, max_burn)?;
    let txid = tx.txid();
    for vout in 0..tx.output.len() {
        let outpoint = OutPoint::new(txid, u32::try_from(vout).unwrap_or(u32::MAX));
        if ctx.store.utxo(&outpoint).map_err(store_fault)?.is_some() {
            return Err(RpcFault::new(
                VERIFY_ALREADY_IN_UTXO_SET,
                "Transaction outputs already in utxo set",
            ));
        }
    }
    if ctx.ledger.mempool_transaction(&txid).is_some() {
        return Ok(json!(txid.to_string()));
    }
    if max_fee_rate > 0 {
        let info = match ctx.ledger.test_accept(&tx) {
            Ok(info) => info,
            Err(rejection) if is_already_in_mempool(&rejection) => {
                return Ok(json!(txid.to_string()))
            }
            Err(rejection) => return Err(submit_fault(&rejection)),
        };
        if info.fee > fee_at_rate(max_fee_rate, info.vsize) {
            return Err(RpcFault::new(
                VERIFY_ERROR,
                "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
            ));
        }
    }
    match ctx.ledger.submit(tx) {
        Ok(accepted) => {
            tracing::info!(target: "rpc", txid = %accepted.txid, fee = accepted.fee, vsize = accepted.vsize, "transaction accepted");
            Ok(json!(accepted.txid.to_string()))
        }
        Err(rejection) if is_already_in_mempool(&rejection) => Ok(json!(txid.to_string())),
        Err(rejection) => Err(submit_fault(&rejection)),
    }
}

/// The transaction entered the mempool between our check and the ledger's (elementsd returns the txid then).
fn is_already_in_mempool(rejection: &chain::ledger::TxRejection) -> bool {
    matches!(
        rejection,
        chain::ledger::TxRejection::AlreadyKnown {
            reason: "txn-already-in-mempool"
        }
    )
}

fn submit_fault(rejection: &chain::ledger::TxRejection) -> RpcFault {
    tracing::debug!(target: "rpc", reason = rejection.reason(), error = %rejection, "transaction refused");
    rejection_fault(rejection)
}

/// `testmempoolaccept ["rawtx",...] ( maxfeerate )` → one result per transaction, in order:
/// `{txid, wtxid, allowed, vsize, fees: {base, effective-feerate, effective-includes}}` or `{txid, wtxid,
/// allowed: false, reject-reason[, reject-details]}` (`"missing-inputs"` without details, as elementsd). A fee
/// above `maxfeerate` is `"max-fee-exceeded"` and leaves the later entries with only `txid` and `wtxid`.
///
/// Difference from elementsd: several transactions are not validated as a package; each is tested alone against
/// the tip and the mempool, so a child of another listed (unsubmitted) transaction reports `missing-inputs`.
pub fn testmempoolaccept(ctx: &RpcContext, params: &[Value]) -> Result<Value, RpcFault> {
    let raw = match params.first() {
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(RpcFault::invalid_parameter(format!(
                "rawtxs must be an array of hex strings, got {other}"
            )))
        }
        None => return Err(RpcFault::invalid_parameter("rawtxs is required")),
    };
    if raw.is_empty() || raw.len() > MAX_PACKAGE_COUNT {
        return Err(RpcFault::invalid_parameter(format!(
            "Array must contain between 1 and {MAX_PACKAGE_COUNT} transactions."
        )));
    }
    let max_fee_rate = param_max_fee_rate(params, 1)?;
    let mut txs = Vec::with_capacity(raw.len());
    for item in raw {
        let Value::String(text) = item else {
            return Err(RpcFault::invalid_parameter(format!(
                "rawtxs must hold hex strings, got {item}"
            )));
        };
        let tx = decode_transaction(text).ok_or_else(|| {
            RpcFault::new(
                DESERIALIZATION_ERROR,
                format!("TX decode failed: {text} Make sure the tx has at least one input."),
            )
        })?;
        txs.push(tx);
    }
    let mut results = Vec::with_capacity(txs.len());
    let mut exit_early = false;
    for tx in &txs {
        let mut entry = Map::new();
        let wtxid = tx.wtxid().to_string();
        entry.insert("txid".into(), json!(tx.txid().to_string()));
        entry.insert("wtxid".into(), json!(wtxid));
        if exit_early {
            results.push(Value::Object(entry));
            continue;
        }
        match ctx.ledger.test_accept(tx) {
            Ok(info) => {
                if max_fee_rate > 0 && info.fee > fee_at_rate(max_fee_rate, info.vsize) {
                    entry.insert("allowed".into(), json!(false));
                    entry.insert("reject-reason".into(), json!("max-fee-exceeded"));
                    exit_early = true;
                } else {
                    let vsize = u64::try_from(info.vsize).unwrap_or(u64::MAX).max(1);
                    let rate = info.fee.saturating_mul(1000) / vsize;
                    entry.insert("allowed".into(), json!(true));
                    entry.insert("vsize".into(), json!(info.vsize));
                    entry.insert(
                        "fees".into(),
                        json!({
                            "base": amount_json(info.fee),
                            "effective-feerate": amount_json(rate),
                            "effective-includes": [wtxid],
                        }),
                    );
                }
            }
            Err(rejection) => {
                entry.insert("allowed".into(), json!(false));
                if rejection.class() == chain::ledger::RejectionClass::MissingInputs {
                    entry.insert("reject-reason".into(), json!("missing-inputs"));
                } else {
                    entry.insert("reject-reason".into(), json!(rejection.reason()));
                    entry.insert("reject-details".into(), json!(rejection_text(&rejection)));
                }
            }
        }
        results.push(Value::Object(entry));
    }
    Ok(Value::Array(results))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_refuses_bad_hex_and_trailing_bytes() {
        assert!(decode_transaction("zz").is_none());
        assert!(decode_transaction("").is_none());
        assert!(decode_transaction("0200000000").is_none());
        let tx = Transaction {
            version: 2,
            lock_time: elements::LockTime::ZERO,
            input: vec![],
            output: vec![elements::TxOut::new_fee(5, elements::AssetId::LIQUID_BTC)],
        };
        let text = hex::encode(elements::encode::serialize(&tx));
        assert_eq!(decode_transaction(&text), Some(tx));
        assert!(decode_transaction(&format!("{text}00")).is_none());
    }

    #[test]
    fn fee_at_rate_rounds_up() {
        assert_eq!(fee_at_rate(1000, 141), 141);
        assert_eq!(fee_at_rate(1500, 141), 212);
        assert_eq!(fee_at_rate(0, 141), 0);
    }

    #[test]
    fn parent_genesis_is_bitcoin_regtest() {
        let mut display = crate::ledger::REGTEST_GENESIS_INTERNAL;
        display.reverse();
        assert_eq!(
            hex::encode(display),
            "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
        );
    }
}
