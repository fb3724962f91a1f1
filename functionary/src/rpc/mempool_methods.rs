//! Mempool methods: `getrawmempool`, `getmempoolinfo` (Elements master @7110a84 `rpc/mempool.cpp`), over
//! [`super::ledger_source::LedgerRpcSource`].

use std::collections::{BTreeSet, HashSet, VecDeque};

use elements::Txid;
use serde_json::{json, Map, Value};

use super::jsonrpc::RpcFault;
use super::ledger_source::{LedgerRpcSource, MempoolEntryInfo};
use super::params::param_bool;
use super::txjson::amount_json;
use super::RpcContext;

/// Totals over a transaction and its in-mempool relatives in one direction (ancestors or descendants),
/// itself included.
#[derive(Default)]
struct Relatives {
    count: usize,
    vsize: usize,
    fee: u64,
}

/// Walks `depends` (ancestors) or `spent_by` (descendants) from `txid`, counting `txid` itself.
fn relatives(
    ledger: &dyn LedgerRpcSource,
    txid: &Txid,
    entry: &MempoolEntryInfo,
    ancestors: bool,
) -> Relatives {
    let mut totals = Relatives {
        count: 1,
        vsize: entry.vsize,
        fee: entry.fee,
    };
    let next = |e: &MempoolEntryInfo| -> Vec<Txid> {
        if ancestors {
            e.depends.clone()
        } else {
            e.spent_by.clone()
        }
    };
    let mut seen: HashSet<Txid> = HashSet::from([*txid]);
    let mut queue: VecDeque<Txid> = next(entry).into();
    while let Some(other) = queue.pop_front() {
        if !seen.insert(other) {
            continue;
        }
        let Some(other_entry) = ledger.mempool_entry(&other) else {
            continue;
        };
        totals.count += 1;
        totals.vsize = totals.vsize.saturating_add(other_entry.vsize);
        totals.fee = totals.fee.saturating_add(other_entry.fee);
        queue.extend(next(&other_entry));
    }
    totals
}

/// One `getrawmempool true` / `getmempoolentry` object, as elementsd's `entryToJSON`, except `height` (the
/// mempool does not record the tip height at entry) and with `modified` fees equal to base fees (no
/// `prioritisetransaction`). `bip125-replaceable` is false: the mempool never replaces (first seen wins).
/// `unbroadcast` is false: a transaction is sent to the connected members when it is admitted.
fn entry_json(ledger: &dyn LedgerRpcSource, txid: &Txid, entry: &MempoolEntryInfo) -> Value {
    let ancestors = relatives(ledger, txid, entry, true);
    let descendants = relatives(ledger, txid, entry, false);
    let wtxid = ledger
        .mempool_transaction(txid)
        .map(|tx| tx.wtxid().to_string());
    let depends: BTreeSet<String> = entry.depends.iter().map(Txid::to_string).collect();
    let spent_by: Vec<String> = entry.spent_by.iter().map(Txid::to_string).collect();
    let mut out = Map::new();
    out.insert("vsize".into(), json!(entry.vsize));
    out.insert("weight".into(), json!(entry.weight));
    out.insert("time".into(), json!(entry.time_ms / 1000));
    out.insert("descendantcount".into(), json!(descendants.count));
    out.insert("descendantsize".into(), json!(descendants.vsize));
    out.insert("ancestorcount".into(), json!(ancestors.count));
    out.insert("ancestorsize".into(), json!(ancestors.vsize));
    if let Some(wtxid) = wtxid {
        out.insert("wtxid".into(), json!(wtxid));
    }
    out.insert(
        "fees".into(),
        json!({
            "base": amount_json(entry.fee),
            "modified": amount_json(entry.fee),
            "ancestor": amount_json(ancestors.fee),
            "descendant": amount_json(descendants.fee),
        }),
    );
    out.insert("depends".into(), json!(depends));
    out.insert("spentby".into(), json!(spent_by));
    out.insert("bip125-replaceable".into(), json!(false));
    out.insert("unbroadcast".into(), json!(false));
    Value::Object(out)
}

/// `getrawmempool ( verbose mempool_sequence )`: txids (highest fee rate first), or with `verbose` an object
/// txid → entry. `mempool_sequence` is not kept by our mempool: asking for it is `-8`.
pub fn getrawmempool(ctx: &RpcContext, params: &[Value]) -> Result<Value, RpcFault> {
    let verbose = param_bool(params, 0, "verbose", false)?;
    let sequence = param_bool(params, 1, "mempool_sequence", false)?;
    if verbose && sequence {
        return Err(RpcFault::invalid_parameter(
            "Verbose results cannot contain mempool sequence values.",
        ));
    }
    if sequence {
        return Err(RpcFault::invalid_parameter(
            "mempool_sequence is not supported: this mempool keeps no sequence number",
        ));
    }
    let txids = ctx.ledger.mempool_txids();
    if !verbose {
        let list: Vec<String> = txids.iter().map(Txid::to_string).collect();
        return Ok(json!(list));
    }
    let mut out = Map::new();
    for txid in &txids {
        // a transaction may leave the mempool between the two calls
        if let Some(entry) = ctx.ledger.mempool_entry(txid) {
            out.insert(
                txid.to_string(),
                entry_json(ctx.ledger.as_ref(), txid, &entry),
            );
        }
    }
    Ok(Value::Object(out))
}

/// `getmempoolinfo`: elementsd's fields; fee rates in coins per 1000 vbytes. `usage` is the sum of weights
/// (our memory measure) and `maxmempool` its cap. `unbroadcastcount` is 0 (transactions are relayed at
/// admission) and `fullrbf` false (no replacement at all). `incrementalrelayfee` is left out: the mempool has
/// no replacement, so no increment.
pub fn getmempoolinfo(ctx: &RpcContext, _params: &[Value]) -> Result<Value, RpcFault> {
    let summary = ctx.ledger.mempool_summary();
    Ok(json!({
        "loaded": true,
        "size": summary.size,
        "bytes": summary.bytes,
        "usage": summary.usage,
        "total_fee": amount_json(summary.total_fee),
        "maxmempool": summary.max_usage,
        "mempoolminfee": amount_json(summary.min_fee_rate.max(summary.min_relay_fee_rate)),
        "minrelaytxfee": amount_json(summary.min_relay_fee_rate),
        "unbroadcastcount": 0,
        "fullrbf": false,
    }))
}
