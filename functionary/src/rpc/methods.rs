//! The RPC methods, with Elements' names and result shapes, over the daemon's [`RpcContext`].

use std::time::Instant;

use elements::{Block, BlockHash, BlockHeader};
use serde_json::{json, Value};

use super::blockjson::{block_fields, header_fields, script_asm, ChainPosition};
use super::faults::store_fault;
use super::jsonrpc::{MethodDispatcher, RpcFault, INVALID_ADDRESS_OR_KEY, METHOD_NOT_FOUND};
use super::params::{param_hash, param_int, param_verbosity};
use super::txjson::tx_json;
use super::{mempool_methods, sidechain_methods, tx_methods, utxo_methods, RpcContext};

/// One method: its name, parameter names and help text.
struct MethodSpec {
    name: &'static str,
    params: &'static [&'static str],
    help: &'static str,
    run: fn(&Methods, &[Value]) -> Result<Value, RpcFault>,
}

const METHODS: &[MethodSpec] = &[
    MethodSpec {
        name: "getblockchaininfo",
        params: &[],
        help: "getblockchaininfo\nReturns an object containing various state info regarding blockchain processing.",
        run: Methods::getblockchaininfo,
    },
    MethodSpec {
        name: "getblockcount",
        params: &[],
        help: "getblockcount\nReturns the height of the most-work fully-validated chain.",
        run: Methods::getblockcount,
    },
    MethodSpec {
        name: "getbestblockhash",
        params: &[],
        help: "getbestblockhash\nReturns the hash of the best (tip) block in the most-work fully-validated chain.",
        run: Methods::getbestblockhash,
    },
    MethodSpec {
        name: "getblockhash",
        params: &["height"],
        help: "getblockhash height\nReturns hash of block in best-block-chain at height provided.",
        run: Methods::getblockhash,
    },
    MethodSpec {
        name: "getblock",
        params: &["blockhash", "verbosity"],
        help: "getblock \"blockhash\" ( verbosity )\nIf verbosity is 0, returns a string that is serialized, hex-encoded \
               data for block 'hash'.\nIf verbosity is 1, returns an Object with information about block <hash>, \
               including the members that signed it (\"signers\").\nIf verbosity is 2, the transactions are \
               objects (as getrawtransaction).\nIf verbosity is 3, their inputs also carry \"prevout\".",
        run: Methods::getblock,
    },
    MethodSpec {
        name: "getblockheader",
        params: &["blockhash", "verbose"],
        help: "getblockheader \"blockhash\" ( verbose )\nIf verbose is false, returns a string that is serialized, \
               hex-encoded data for blockheader 'hash'.\nIf verbose is true, returns an Object with information about \
               blockheader <hash>.",
        run: Methods::getblockheader,
    },
    MethodSpec {
        name: "decoderawtransaction",
        params: &["hexstring", "iswitness"],
        help: "decoderawtransaction \"hexstring\" ( iswitness )\nReturn a JSON object representing the serialized, \
               hex-encoded transaction.",
        run: |m, p| tx_methods::decoderawtransaction(&m.ctx, p),
    },
    MethodSpec {
        name: "getrawtransaction",
        params: &["txid", "verbosity", "blockhash"],
        help: "getrawtransaction \"txid\" ( verbosity \"blockhash\" )\nReturn the raw transaction data, from the \
               mempool or the transaction index.\nIf verbosity is 0 or omitted, returns the serialized transaction as \
               a hex-encoded string.\nIf verbosity is 1, returns a JSON Object with information about the \
               transaction.\nIf verbosity is 2, its inputs also carry \"prevout\".",
        run: |m, p| tx_methods::getrawtransaction(&m.ctx, p),
    },
    MethodSpec {
        name: "sendrawtransaction",
        params: &["hexstring", "maxfeerate", "maxburnamount"],
        help: "sendrawtransaction \"hexstring\" ( maxfeerate maxburnamount )\nSubmit a raw transaction (serialized, \
               hex-encoded) to the mempool and relay it to the other members. Returns the txid.",
        run: |m, p| tx_methods::sendrawtransaction(&m.ctx, p),
    },
    MethodSpec {
        name: "testmempoolaccept",
        params: &["rawtxs", "maxfeerate"],
        help: "testmempoolaccept [\"rawtx\",...] ( maxfeerate )\nReturns result of mempool acceptance tests \
               indicating if raw transaction(s) (serialized, hex-encoded) would be accepted by mempool. Each \
               transaction is tested on its own (no package validation).",
        run: |m, p| tx_methods::testmempoolaccept(&m.ctx, p),
    },
    MethodSpec {
        name: "getrawmempool",
        params: &["verbose", "mempool_sequence"],
        help: "getrawmempool ( verbose )\nReturns all transaction ids in memory pool as a json array of string \
               transaction ids, or with verbose an object of entries.",
        run: |m, p| mempool_methods::getrawmempool(&m.ctx, p),
    },
    MethodSpec {
        name: "getmempoolinfo",
        params: &[],
        help: "getmempoolinfo\nReturns details on the active state of the TX memory pool.",
        run: |m, p| mempool_methods::getmempoolinfo(&m.ctx, p),
    },
    MethodSpec {
        name: "gettxout",
        params: &["txid", "n", "include_mempool"],
        help: "gettxout \"txid\" n ( include_mempool )\nReturns details about an unspent transaction output, or \
               null.",
        run: |m, p| utxo_methods::gettxout(&m.ctx, p),
    },
    MethodSpec {
        name: "gettxoutsetinfo",
        params: &["hash_type", "hash_or_height", "use_index"],
        help: "gettxoutsetinfo ( \"hash_type\" )\nReturns statistics about the unspent transaction output set \
               (hash_type: hash_serialized_3 or none).",
        run: |m, p| utxo_methods::gettxoutsetinfo(&m.ctx, p),
    },
    MethodSpec {
        name: "getsidechaininfo",
        params: &[],
        help: "getsidechaininfo\nReturns an object containing various state info regarding sidechain \
               functionality.",
        run: |m, p| sidechain_methods::getsidechaininfo(&m.ctx, p),
    },
    MethodSpec {
        name: "getpeerinfo",
        params: &[],
        help: "getpeerinfo\nReturns data about each connected federation peer as a json array of objects.",
        run: Methods::getpeerinfo,
    },
    MethodSpec {
        name: "getfederationinfo",
        params: &[],
        help: "getfederationinfo\nReturns the federation's configuration (config hash, members, peer ids, block \
               interval) and the consensus state (\"consensus\").",
        run: Methods::getfederationinfo,
    },
    MethodSpec {
        name: "uptime",
        params: &[],
        help: "uptime\nReturns the total uptime of the server in seconds.",
        run: Methods::uptime,
    },
    MethodSpec {
        name: "help",
        params: &["command"],
        help: "help ( \"command\" )\nList all commands, or get help for a specified command.",
        run: Methods::help,
    },
    MethodSpec {
        name: "stop",
        params: &[],
        help: "stop\nRequest a graceful shutdown of Functionary.",
        run: Methods::stop,
    },
];

/// The methods, bound to the daemon's context.
pub struct Methods {
    ctx: RpcContext,
    started: Instant,
}

impl MethodDispatcher for Methods {
    fn call(&self, method: &str, params: &[Value]) -> Result<Value, RpcFault> {
        let spec =
            find(method).ok_or_else(|| RpcFault::new(METHOD_NOT_FOUND, "Method not found"))?;
        if params.len() > spec.params.len() {
            return Err(RpcFault::misc(format!(
                "{} takes at most {} parameters, got {}\n{}",
                spec.name,
                spec.params.len(),
                params.len(),
                spec.help
            )));
        }
        (spec.run)(self, params)
    }

    fn param_names(&self, method: &str) -> Option<&'static [&'static str]> {
        find(method).map(|spec| spec.params)
    }
}

fn find(method: &str) -> Option<&'static MethodSpec> {
    METHODS.iter().find(|spec| spec.name == method)
}

fn block_not_found() -> RpcFault {
    RpcFault::new(INVALID_ADDRESS_OR_KEY, "Block not found")
}

impl Methods {
    /// Binds the methods to `ctx`; `uptime` counts from now.
    pub fn new(ctx: RpcContext) -> Self {
        Self {
            ctx,
            started: Instant::now(),
        }
    }

    fn tip(&self) -> Result<(u32, BlockHash), RpcFault> {
        self.ctx.store.tip().map_err(store_fault)
    }

    fn header_of(&self, hash: &BlockHash) -> Result<BlockHeader, RpcFault> {
        self.ctx
            .store
            .header(hash)
            .map_err(store_fault)?
            .ok_or_else(block_not_found)
    }

    /// Median of the times of the block at `height` and up to 10 ancestors.
    fn median_time(&self, height: u32) -> Result<u32, RpcFault> {
        crate::ledger::TimeWindow::ending_at(&self.ctx.store, height)
            .map(|window| window.median())
            .map_err(store_fault)
    }

    fn position(&self, hash: &BlockHash, n_tx: usize) -> Result<ChainPosition, RpcFault> {
        let height = self
            .ctx
            .store
            .height_of(hash)
            .map_err(store_fault)?
            .ok_or_else(block_not_found)?;
        let (tip_height, _) = self.tip()?;
        let on_best_chain =
            self.ctx.store.block_hash_at(height).map_err(store_fault)? == Some(*hash);
        let confirmations = if on_best_chain {
            i64::from(tip_height) - i64::from(height) + 1
        } else {
            -1
        };
        let next = if on_best_chain {
            match height.checked_add(1) {
                Some(next_height) => self
                    .ctx
                    .store
                    .block_hash_at(next_height)
                    .map_err(store_fault)?,
                None => None,
            }
        } else {
            None
        };
        Ok(ChainPosition {
            height,
            confirmations,
            median_time: self.median_time(height)?,
            next,
            n_tx,
        })
    }

    fn signers_json(&self, header: &BlockHeader, height: u32) -> Value {
        if height == 0 {
            return json!([]);
        }
        match chain::block_signers(&self.ctx.params, header) {
            Ok(indexes) => {
                let keys = self.ctx.params.sorted_keys();
                let signers: Vec<Value> = indexes
                    .into_iter()
                    .map(|index| {
                        json!({
                            "index": index,
                            "name": self.ctx.member_names.get(index),
                            "pubkey": keys.get(index).map(|k| k.to_string()),
                        })
                    })
                    .collect();
                Value::Array(signers)
            }
            Err(e) => {
                tracing::warn!(target: "rpc", height, error = %e, "stored block's signers cannot be determined");
                json!([])
            }
        }
    }

    fn getblockchaininfo(&self, _params: &[Value]) -> Result<Value, RpcFault> {
        let (height, hash) = self.tip()?;
        let tip_header = self.header_of(&hash)?;
        let script = self.ctx.params.signblockscript();
        Ok(json!({
            "chain": self.ctx.params.chain_name(),
            "blocks": height,
            "headers": height,
            "bestblockhash": hash.to_string(),
            "time": tip_header.time,
            "mediantime": self.median_time(height)?,
            "verificationprogress": 1,
            "initialblockdownload": false,
            "size_on_disk": self.ctx.store.size_on_disk(),
            "pruned": false,
            "current_signblock_asm": script_asm(script),
            "current_signblock_hex": hex::encode(script.as_bytes()),
            "max_block_witness": self.ctx.params.signblock_witness_limit(),
            "warnings": "",
        }))
    }

    fn getblockcount(&self, _params: &[Value]) -> Result<Value, RpcFault> {
        Ok(json!(self.tip()?.0))
    }

    fn getbestblockhash(&self, _params: &[Value]) -> Result<Value, RpcFault> {
        Ok(json!(self.tip()?.1.to_string()))
    }

    fn getblockhash(&self, params: &[Value]) -> Result<Value, RpcFault> {
        let height = param_int(params, 0, "height")?;
        let (tip_height, _) = self.tip()?;
        let out_of_range = || RpcFault::invalid_parameter("Block height out of range");
        let height = u32::try_from(height).map_err(|_| out_of_range())?;
        if height > tip_height {
            return Err(out_of_range());
        }
        let hash = self
            .ctx
            .store
            .block_hash_at(height)
            .map_err(store_fault)?
            .ok_or_else(out_of_range)?;
        Ok(json!(hash.to_string()))
    }

    fn getblock(&self, params: &[Value]) -> Result<Value, RpcFault> {
        let hash: BlockHash = param_hash(params, 0, "blockhash")?;
        let verbosity = param_verbosity(params, 1, "verbosity", 1, 3)?;
        let block: Block = self
            .ctx
            .store
            .block(&hash)
            .map_err(store_fault)?
            .ok_or_else(block_not_found)?;
        if verbosity == 0 {
            return Ok(json!(hex::encode(elements::encode::serialize(&block))));
        }
        let position = self.position(&hash, block.txdata.len())?;
        let mut out = block_fields(&block, &position);
        if verbosity >= 2 {
            let mut txs = Vec::with_capacity(block.txdata.len());
            for tx in &block.txdata {
                let mut entry = tx_json(tx, true);
                if verbosity == 3 {
                    tx_methods::add_prevouts(&self.ctx, tx, &mut entry)?;
                }
                txs.push(Value::Object(entry));
            }
            out.insert("tx".into(), Value::Array(txs));
        }
        out.insert(
            "signers".into(),
            self.signers_json(&block.header, position.height),
        );
        Ok(Value::Object(out))
    }

    fn getblockheader(&self, params: &[Value]) -> Result<Value, RpcFault> {
        let hash: BlockHash = param_hash(params, 0, "blockhash")?;
        let verbose = match params.get(1) {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(RpcFault::invalid_parameter(format!(
                    "verbose must be a boolean (true or false), got {other}"
                )))
            }
        };
        if !verbose {
            let header = self.header_of(&hash)?;
            return Ok(json!(hex::encode(elements::encode::serialize(&header))));
        }
        let block: Block = self
            .ctx
            .store
            .block(&hash)
            .map_err(store_fault)?
            .ok_or_else(block_not_found)?;
        let position = self.position(&hash, block.txdata.len())?;
        Ok(Value::Object(header_fields(&block.header, &position)))
    }

    fn getpeerinfo(&self, _params: &[Value]) -> Result<Value, RpcFault> {
        Ok(self.ctx.status.peer_info())
    }

    fn getfederationinfo(&self, _params: &[Value]) -> Result<Value, RpcFault> {
        let consensus = self.ctx.status.consensus_info();
        Ok(match self.ctx.federation_info.clone() {
            Value::Object(mut info) => {
                info.insert("consensus".into(), consensus);
                Value::Object(info)
            }
            Value::Null => json!({ "consensus": consensus }),
            other => json!({ "federation": other, "consensus": consensus }),
        })
    }

    fn uptime(&self, _params: &[Value]) -> Result<Value, RpcFault> {
        Ok(json!(self.started.elapsed().as_secs()))
    }

    fn help(&self, params: &[Value]) -> Result<Value, RpcFault> {
        match params.first() {
            None | Some(Value::Null) => {
                let mut lines = vec!["== Functionary ==".to_string()];
                lines.extend(
                    METHODS
                        .iter()
                        .filter_map(|spec| spec.help.lines().next().map(str::to_string)),
                );
                Ok(json!(lines.join("\n")))
            }
            Some(Value::String(name)) => Ok(json!(match find(name) {
                Some(spec) => spec.help.to_string(),
                None => format!("help: unknown command: {name}"),
            })),
            Some(other) => Err(RpcFault::invalid_parameter(format!(
                "command must be a string, got {other}"
            ))),
        }
    }

    fn stop(&self, _params: &[Value]) -> Result<Value, RpcFault> {
        tracing::info!(target: "rpc", "stop requested over rpc");
        self.ctx.shutdown.send_replace(true);
        Ok(json!("Functionary stopping"))
    }
}
