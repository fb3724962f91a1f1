//! The RPC methods, with Elements' names and result shapes, over the daemon's [`RpcContext`].

use std::str::FromStr;
use std::time::Instant;

use elements::{Block, BlockHash, BlockHeader};
use serde_json::{json, Value};

use super::blockjson::{block_fields, header_fields, script_asm, ChainPosition};
use super::jsonrpc::{MethodDispatcher, RpcFault, INVALID_ADDRESS_OR_KEY, METHOD_NOT_FOUND};
use super::RpcContext;

/// Number of blocks (the block and its ancestors) whose median time is `mediantime`, as Core.
const MEDIAN_TIME_SPAN: u32 = 11;

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
               including the members that signed it (\"signers\").",
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

fn store_fault(error: impl std::fmt::Display) -> RpcFault {
    tracing::error!(target: "rpc", error = %error, "block store error");
    RpcFault::misc(format!("block store error: {error}"))
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
        let first = height.saturating_sub(MEDIAN_TIME_SPAN - 1);
        let mut times = Vec::with_capacity(MEDIAN_TIME_SPAN as usize);
        for h in first..=height {
            let Some(hash) = self.ctx.store.block_hash_at(h).map_err(store_fault)? else {
                continue;
            };
            if let Some(header) = self.ctx.store.header(&hash).map_err(store_fault)? {
                times.push(header.time);
            }
        }
        times.sort_unstable();
        Ok(times.get(times.len() / 2).copied().unwrap_or(0))
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
        let height = param_height(params, 0, "height")?;
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
        let hash = param_hash(params, 0, "blockhash")?;
        let verbosity = param_verbosity(params, 1)?;
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
        out.insert(
            "signers".into(),
            self.signers_json(&block.header, position.height),
        );
        Ok(Value::Object(out))
    }

    fn getblockheader(&self, params: &[Value]) -> Result<Value, RpcFault> {
        let hash = param_hash(params, 0, "blockhash")?;
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

/// A required block hash in display (reversed hex) order.
fn param_hash(params: &[Value], index: usize, name: &str) -> Result<BlockHash, RpcFault> {
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
    BlockHash::from_str(text).map_err(|e| {
        RpcFault::invalid_parameter(format!("{name} is not a block hash ('{text}'): {e}"))
    })
}

/// A required integer height.
fn param_height(params: &[Value], index: usize, name: &str) -> Result<i64, RpcFault> {
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

/// `getblock`'s optional verbosity: 0 or 1 (a boolean is accepted as Core does); default 1.
fn param_verbosity(params: &[Value], index: usize) -> Result<u8, RpcFault> {
    match params.get(index) {
        None | Some(Value::Null) => Ok(1),
        Some(Value::Bool(b)) => Ok(u8::from(*b)),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(0) => Ok(0),
            Some(1) => Ok(1),
            _ => Err(RpcFault::invalid_parameter(format!(
                "verbosity must be 0 or 1, got {n}"
            ))),
        },
        Some(other) => Err(RpcFault::invalid_parameter(format!(
            "verbosity must be 0 or 1, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_params_are_display_order_and_errors_name_the_parameter() {
        let display = "1466275836220db2944ca059a3a10ef6fd2ea684b0688d2c379296888a206003";
        let hash = param_hash(&[json!(display)], 0, "blockhash").expect("valid hash");
        assert_eq!(hash.to_string(), display);
        for bad in [json!("abc"), json!("zz".repeat(32)), json!(5)] {
            let fault = param_hash(&[bad], 0, "blockhash").expect_err("invalid");
            assert_eq!(fault.code, -8);
            assert!(fault.message.contains("blockhash"), "{}", fault.message);
        }
        assert!(param_hash(&[], 0, "blockhash").is_err());
    }

    #[test]
    fn verbosity_and_height_params() {
        assert_eq!(param_verbosity(&[], 0), Ok(1));
        assert_eq!(param_verbosity(&[json!(0)], 0), Ok(0));
        assert_eq!(param_verbosity(&[json!(false)], 0), Ok(0));
        assert_eq!(param_verbosity(&[json!(3)], 0).map_err(|f| f.code), Err(-8));
        assert_eq!(param_height(&[json!(4)], 0, "height"), Ok(4));
        let fault = param_height(&[json!("x")], 0, "height").expect_err("not a number");
        assert!(fault.message.contains("height"));
    }
}
