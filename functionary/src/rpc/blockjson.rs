//! Elements-shaped JSON for block headers and blocks (`getblock`, `getblockheader`), as Elements'
//! `blockheaderToJSON` / `blockToJSON` / `dynaParamsToJSON`, plus our `signers` field.

use elements::dynafed;
use elements::{Block, BlockExtData, BlockHash, BlockHeader};
use serde_json::{json, Map, Value};

/// Where a block sits in our chain: facts the header alone does not carry.
pub struct ChainPosition {
    /// Block height.
    pub height: u32,
    /// `tip - height + 1` for blocks on the best chain, `-1` otherwise.
    pub confirmations: i64,
    /// Median time of the block and up to 10 ancestors.
    pub median_time: u32,
    /// The next block on the best chain, if any.
    pub next: Option<BlockHash>,
    /// Number of transactions (from the stored block).
    pub n_tx: usize,
}

/// Fields shared by `getblockheader` and `getblock` verbosity 1.
pub fn header_fields(header: &BlockHeader, position: &ChainPosition) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("hash".into(), json!(header.block_hash().to_string()));
    out.insert("confirmations".into(), json!(position.confirmations));
    out.insert("height".into(), json!(position.height));
    out.insert("version".into(), json!(header.version));
    out.insert(
        "versionHex".into(),
        json!(format!("{:08x}", header.version)),
    );
    out.insert("merkleroot".into(), json!(header.merkle_root.to_string()));
    out.insert("time".into(), json!(header.time));
    out.insert("mediantime".into(), json!(position.median_time));
    out.insert("nTx".into(), json!(position.n_tx));
    if position.height > 0 {
        out.insert(
            "previousblockhash".into(),
            json!(header.prev_blockhash.to_string()),
        );
    }
    if let Some(next) = position.next {
        out.insert("nextblockhash".into(), json!(next.to_string()));
    }
    match &header.ext {
        BlockExtData::Proof {
            challenge,
            solution,
        } => {
            out.insert("signblock_witness_asm".into(), json!(script_asm(solution)));
            out.insert(
                "signblock_witness_hex".into(),
                json!(hex::encode(solution.as_bytes())),
            );
            out.insert(
                "signblock_challenge".into(),
                json!(hex::encode(challenge.as_bytes())),
            );
        }
        BlockExtData::Dynafed {
            current,
            proposed,
            signblock_witness,
        } => {
            let items: Vec<Value> = signblock_witness
                .iter()
                .map(|item| json!(hex::encode(item)))
                .collect();
            out.insert("signblock_witness_hex".into(), Value::Array(items));
            out.insert(
                "dynamic_parameters".into(),
                json!({ "current": params_entry(current), "proposed": params_entry(proposed) }),
            );
        }
    }
    out
}

/// `getblock` verbosity 1 (without `signers`, which the caller adds).
pub fn block_fields(block: &Block, position: &ChainPosition) -> Map<String, Value> {
    let mut out = header_fields(&block.header, position);
    let stripped_size = elements::encode::serialize(&without_witnesses(block)).len();
    out.insert("strippedsize".into(), json!(stripped_size));
    out.insert("size".into(), json!(block.size()));
    out.insert("weight".into(), json!(block.weight()));
    let txids: Vec<Value> = block
        .txdata
        .iter()
        .map(|tx| json!(tx.txid().to_string()))
        .collect();
    out.insert("tx".into(), Value::Array(txids));
    out
}

/// A script in Core's `ScriptToAsmStr` form (as Elements prints `*_asm` fields): pushes of at most 4 bytes as
/// decimal numbers, longer pushes as hex, `OP_1`..`OP_16` as `1`..`16`, other opcodes by name.
pub fn script_asm(script: &elements::Script) -> String {
    use elements::opcodes::all;
    use elements::script::Instruction;
    let mut parts = Vec::new();
    for instruction in script.instructions() {
        match instruction {
            Ok(Instruction::PushBytes(data)) if data.len() <= 4 => {
                parts.push(script_num(data).to_string())
            }
            Ok(Instruction::PushBytes(data)) => parts.push(hex::encode(data)),
            Ok(Instruction::Op(op)) => {
                let code = op.into_u8();
                parts.push(if op == all::OP_PUSHNUM_NEG1 {
                    "-1".to_string()
                } else if (all::OP_PUSHNUM_1.into_u8()..=all::OP_PUSHNUM_16.into_u8())
                    .contains(&code)
                {
                    (code - all::OP_PUSHNUM_1.into_u8() + 1).to_string()
                } else if op == all::OP_CLTV {
                    "OP_CHECKLOCKTIMEVERIFY".to_string()
                } else if op == all::OP_CSV {
                    "OP_CHECKSEQUENCEVERIFY".to_string()
                } else {
                    op.to_string()
                });
            }
            Err(_) => {
                parts.push("[error]".to_string());
                break;
            }
        }
    }
    parts.join(" ")
}

/// Core's `CScriptNum` value of a push of at most 4 bytes (little-endian, sign bit in the last byte).
fn script_num(data: &[u8]) -> i64 {
    let mut value: i64 = 0;
    for (i, byte) in data.iter().enumerate() {
        value |= i64::from(*byte) << (8 * i);
    }
    match data.last() {
        Some(last) if last & 0x80 != 0 => -(value & !(0x80_i64 << (8 * (data.len() - 1)))),
        _ => value,
    }
}

fn without_witnesses(block: &Block) -> Block {
    let mut stripped = block.clone();
    for tx in &mut stripped.txdata {
        for input in &mut tx.input {
            input.witness = Default::default();
        }
        for output in &mut tx.output {
            output.witness = Default::default();
        }
    }
    stripped
}

/// One dynafed parameter entry as Elements' `paramEntryToJSON`: `type` (null/compact/full), then for non-null
/// entries `root`, `signblockscript`, `max_block_witness`, `extra_root`, and for full ones the fedpeg fields.
fn params_entry(params: &dynafed::Params) -> Value {
    let mut out = Map::new();
    let kind = match params {
        dynafed::Params::Null => "null",
        dynafed::Params::Compact { .. } => "compact",
        dynafed::Params::Full(_) => "full",
    };
    out.insert("type".into(), json!(kind));
    if !params.is_null() {
        out.insert("root".into(), json!(params.calculate_root().to_string()));
    }
    if let (Some(script), Some(limit)) =
        (params.signblockscript(), params.signblock_witness_limit())
    {
        out.insert(
            "signblockscript".into(),
            json!(hex::encode(script.as_bytes())),
        );
        out.insert("max_block_witness".into(), json!(limit));
    }
    let extra_root = match params {
        dynafed::Params::Null => None,
        dynafed::Params::Compact { elided_root, .. } => Some(*elided_root),
        dynafed::Params::Full(_) => params
            .clone()
            .into_compact()
            .and_then(|c| c.elided_root().copied()),
    };
    if let Some(root) = extra_root {
        out.insert("extra_root".into(), json!(root.to_string()));
    }
    if let (Some(program), Some(script), Some(extension)) = (
        params.fedpeg_program(),
        params.fedpegscript(),
        params.extension_space(),
    ) {
        out.insert(
            "fedpeg_program".into(),
            json!(hex::encode(program.as_bytes())),
        );
        out.insert("fedpegscript".into(), json!(hex::encode(script)));
        let items: Vec<Value> = extension.iter().map(|e| json!(hex::encode(e))).collect();
        out.insert("extension_space".into(), Value::Array(items));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asm_matches_core_format() {
        // 2-of-2 multisig with two (fake but well-formed) 33-byte keys, then a CSV branch and small numbers
        let k1 = [2u8; 33];
        let k2 = [3u8; 33];
        let script = elements::script::Builder::new()
            .push_opcode(elements::opcodes::all::OP_PUSHNUM_2)
            .push_slice(&k1)
            .push_slice(&k2)
            .push_opcode(elements::opcodes::all::OP_PUSHNUM_2)
            .push_opcode(elements::opcodes::all::OP_CHECKMULTISIG)
            .push_int(0)
            .push_int(4032)
            .push_opcode(elements::opcodes::all::OP_CSV)
            .push_int(-1)
            .push_slice(&[0x81])
            .into_script();
        assert_eq!(
            script_asm(&script),
            format!(
                "2 {} {} 2 OP_CHECKMULTISIG 0 4032 OP_CHECKSEQUENCEVERIFY -1 -1",
                hex::encode(k1),
                hex::encode(k2)
            )
        );
    }
}
