//! UTXO set methods: `gettxout`, `gettxoutsetinfo` (Elements master @7110a84 `rpc/blockchain.cpp`,
//! `kernel/coinstats.cpp`).

use std::collections::HashSet;

use elements::hashes::{sha256d, HashEngine};
use elements::{OutPoint, Txid};
use serde_json::{json, Map, Value};

use super::faults::store_fault;
use super::jsonrpc::RpcFault;
use super::params::{param_bool, param_hash, param_str, param_vout};
use super::scriptjson::script_pubkey_json;
use super::txjson::{amount_json, output_amount_fields};
use super::RpcContext;
use crate::storage::layout::StoredUtxo;

/// `gettxout "txid" n ( include_mempool )`: the unspent output, or JSON null when it does not exist or is
/// spent. With `include_mempool` (the default) an output spent by a mempool transaction is null and an output
/// created by one is returned with 0 confirmations.
pub fn gettxout(ctx: &RpcContext, params: &[Value]) -> Result<Value, RpcFault> {
    let txid: Txid = param_hash(params, 0, "txid")?;
    let vout = param_vout(params, 1, "n")?;
    let include_mempool = param_bool(params, 2, "include_mempool", true)?;
    let outpoint = OutPoint::new(txid, vout);
    let (tip_height, tip_hash) = ctx.store.tip().map_err(store_fault)?;
    let found = if include_mempool {
        if ctx.ledger.mempool_spender(&outpoint).is_some() {
            None
        } else if let Some(output) = ctx.ledger.mempool_output(&outpoint) {
            Some((output, 0, false))
        } else {
            ctx.store.utxo(&outpoint).map_err(store_fault)?.map(|utxo| {
                let confirmations = i64::from(tip_height) - i64::from(utxo.height) + 1;
                (utxo.txout, confirmations, utxo.is_coinbase)
            })
        }
    } else {
        ctx.store.utxo(&outpoint).map_err(store_fault)?.map(|utxo| {
            let confirmations = i64::from(tip_height) - i64::from(utxo.height) + 1;
            (utxo.txout, confirmations, utxo.is_coinbase)
        })
    };
    let Some((output, confirmations, coinbase)) = found else {
        return Ok(Value::Null);
    };
    let mut out = Map::new();
    out.insert("bestblock".into(), json!(tip_hash.to_string()));
    out.insert("confirmations".into(), json!(confirmations));
    out.extend(output_amount_fields(&output, false));
    out.insert(
        "scriptPubKey".into(),
        script_pubkey_json(&output.script_pubkey),
    );
    out.insert("coinbase".into(), json!(coinbase));
    Ok(Value::Object(out))
}

/// Totals of one pass over the UTXO set.
#[derive(Default)]
struct SetTotals {
    txouts: u64,
    bogosize: u64,
    total_amount: u64,
    transactions: HashSet<Txid>,
    hash: Option<sha256d::HashEngine>,
    bad_entries: u64,
}

impl SetTotals {
    fn add(&mut self, outpoint: &OutPoint, stored: &[u8]) {
        let Ok(coin) = postcard::from_bytes::<StoredUtxo>(stored) else {
            self.bad_entries += 1;
            return;
        };
        let Ok(output) = elements::encode::deserialize::<elements::TxOut>(&coin.txout) else {
            self.bad_entries += 1;
            return;
        };
        self.txouts += 1;
        self.transactions.insert(outpoint.txid);
        // Core's GetBogoSize: txid 32 + vout 4 + height/coinbase 4 + amount 8 + script length 2 + script
        self.bogosize += 50 + output.script_pubkey.len() as u64;
        if let Some(value) = output.value.explicit() {
            self.total_amount = self.total_amount.saturating_add(value);
        }
        if let Some(engine) = self.hash.as_mut() {
            // Core's TxOutSer: outpoint, (height << 1) | coinbase, the output (without its witness)
            engine.input(&outpoint.txid.to_byte_array());
            engine.input(&outpoint.vout.to_le_bytes());
            engine.input(&((coin.height << 1) | u32::from(coin.is_coinbase)).to_le_bytes());
            engine.input(&coin.txout);
        }
    }
}

/// `gettxoutsetinfo ( "hash_type" hash_or_height use_index )`: `height`, `bestblock`, `txouts`, `bogosize`,
/// `hash_serialized_3`, `total_amount`, `transactions`, `disk_size`, from one pass over the set.
///
/// - `hash_serialized_3` is computed as elementsd computes it (SHA256d over every coin in (txid, vout) order:
///   outpoint, `height << 1 | coinbase`, the consensus-encoded output), so the same UTXO set gives the same hash.
///   Genesis outputs count as non-coinbase here (they are spendable at once in our ledger). `hash_type`
///   `"none"` skips it; `"muhash"` is refused (`-8`): MuHash3072 is not implemented.
/// - `total_amount` is, as in elementsd, the sum of the explicit output values of every asset (confidential
///   values are not counted).
/// - `disk_size` is the size of the whole block store directory (blocks, indexes and UTXO set together).
/// - There is no coinstats index: `hash_or_height` is refused as elementsd refuses it without the index.
pub fn gettxoutsetinfo(ctx: &RpcContext, params: &[Value]) -> Result<Value, RpcFault> {
    let hash_type = match params.first() {
        None | Some(Value::Null) => "hash_serialized_3",
        Some(_) => param_str(params, 0, "hash_type")?,
    };
    let with_hash = match hash_type {
        "hash_serialized_3" => true,
        "none" => false,
        "muhash" => return Err(RpcFault::invalid_parameter(
            "hash_type 'muhash' is not supported by this node; use 'hash_serialized_3' or 'none'",
        )),
        other => {
            return Err(RpcFault::invalid_parameter(format!(
                "hash_type '{other}' is not valid. Valid options: hash_serialized_3, muhash, none"
            )))
        }
    };
    if !matches!(params.get(1), None | Some(Value::Null)) {
        return Err(RpcFault::invalid_parameter(
            "Querying specific block heights requires coinstatsindex",
        ));
    }
    param_bool(params, 2, "use_index", true)?;
    // the set and the tip are read separately: retry if a block was stored in between
    for _ in 0..3 {
        let before = ctx.store.tip().map_err(store_fault)?;
        let mut totals = SetTotals {
            hash: with_hash.then(sha256d::Hash::engine),
            ..SetTotals::default()
        };
        ctx.store
            .for_each_utxo(|outpoint, stored| totals.add(outpoint, stored))
            .map_err(store_fault)?;
        let after = ctx.store.tip().map_err(store_fault)?;
        if before != after {
            continue;
        }
        if totals.bad_entries > 0 {
            return Err(store_fault(format!(
                "{} UTXO entries do not decode",
                totals.bad_entries
            )));
        }
        let (height, best) = after;
        let mut out = Map::new();
        out.insert("height".into(), json!(height));
        out.insert("bestblock".into(), json!(best.to_string()));
        out.insert("txouts".into(), json!(totals.txouts));
        out.insert("bogosize".into(), json!(totals.bogosize));
        if let Some(engine) = totals.hash {
            let mut bytes = sha256d::Hash::from_engine(engine).to_byte_array();
            bytes.reverse();
            out.insert("hash_serialized_3".into(), json!(hex::encode(bytes)));
        }
        out.insert("total_amount".into(), amount_json(totals.total_amount));
        out.insert("transactions".into(), json!(totals.transactions.len()));
        out.insert("disk_size".into(), json!(ctx.store.size_on_disk()));
        return Ok(Value::Object(out));
    }
    Err(RpcFault::misc(
        "the chain kept moving while the UTXO set was read; try again",
    ))
}
