//! Peg-out outputs: `OP_RETURN <32-byte parent genesis hash> <parent-chain scriptPubKey> [<push>...]` (Elements'
//! `CScript::IsPegoutScript`, `src/script/script.cpp`), burning the output's value on the sidechain so the
//! federation pays it out on the parent chain. With PAK the extra pushes are `<33-byte pubkey> <whitelist proof>`;
//! this module records them and does not check them (no PAK list yet).

use super::{LedgerContext, TxRejection};
use elements::confidential::{Asset, Value};
use elements::opcodes::all::OP_RETURN;
use elements::script::Instruction;
use elements::{AssetId, Script, TxOut, Txid};

/// A recognised peg-out output, as the peg-out process needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PegoutRecord {
    /// Transaction holding the output.
    pub txid: Txid,
    /// Output index.
    pub vout: u32,
    /// Asset burnt (the policy asset in a valid transaction).
    pub asset: AssetId,
    /// Amount to pay on the parent chain (explicit, > 0 in a valid transaction).
    pub value: u64,
    /// Parent chain genesis hash the output names, internal byte order (as pushed).
    pub parent_genesis: [u8; 32],
    /// The parent-chain scriptPubKey to pay.
    pub destination: bitcoin::ScriptBuf,
    /// Pushes after the destination: the PAK pubkey and whitelist proof when present.
    pub extra: Vec<Vec<u8>>,
}

/// The parts of a peg-out-shaped script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PegoutScript {
    /// The 32-byte first push (a genesis hash, internal order).
    pub parent_genesis: [u8; 32],
    /// The second push (the parent-chain scriptPubKey; may be empty).
    pub destination: Vec<u8>,
    /// Every further push.
    pub extra: Vec<Vec<u8>>,
}

/// Parses a peg-out-shaped script as Elements' `IsPegoutScript` does: `OP_RETURN`, a 32-byte push, a push, then
/// only pushes (a malformed trailing push ends the script, as Elements' `GetOp` loop does). `None` if the script does
/// not have that shape.
pub fn parse_pegout_script(script: &Script) -> Option<PegoutScript> {
    let mut instructions = script.instructions();
    match instructions.next()? {
        Ok(Instruction::Op(op)) if op == OP_RETURN => {}
        _ => return None,
    }
    let genesis = match instructions.next()? {
        Ok(Instruction::PushBytes(bytes)) => <[u8; 32]>::try_from(bytes).ok()?,
        _ => return None,
    };
    let destination = match instructions.next()? {
        Ok(Instruction::PushBytes(bytes)) => bytes.to_vec(),
        _ => return None,
    };
    let mut extra = Vec::new();
    for instruction in instructions {
        match instruction {
            Ok(Instruction::PushBytes(bytes)) => extra.push(bytes.to_vec()),
            Ok(Instruction::Op(_)) => return None,
            Err(_) => break,
        }
    }
    Some(PegoutScript {
        parent_genesis: genesis,
        destination,
        extra,
    })
}

/// The peg-out record of output `vout` of transaction `txid`, if the output is a peg-out with an explicit asset and
/// value (whatever genesis hash it names). Validity (our parent genesis, policy asset, value > 0) is
/// [`check_pegout_output`]'s job.
pub fn pegout_output(txid: Txid, vout: u32, out: &TxOut) -> Option<PegoutRecord> {
    let parsed = parse_pegout_script(&out.script_pubkey)?;
    let asset = out.asset.explicit()?;
    let value = out.value.explicit()?;
    Some(PegoutRecord {
        txid,
        vout,
        asset,
        value,
        parent_genesis: parsed.parent_genesis,
        destination: bitcoin::ScriptBuf::from(parsed.destination),
        extra: parsed.extra,
    })
}

/// The consensus rule on peg-out-shaped outputs of a (non-coinbase) transaction: the output must name
/// [`LedgerContext::parent_genesis_hash`] ("bad-txns-pegout-genesis"), carry an explicit asset and value
/// ("bad-txns-pegout-confidential") of the policy asset ("bad-txns-pegout-asset"), a value above zero
/// ("bad-txns-pegout-zero"), and a non-empty destination ("bad-txns-pegout-destination"). Returns the record of a
/// valid peg-out, `None` for an output that is not peg-out-shaped.
///
/// Consequence: any `OP_RETURN` output whose first push is 32 bytes followed by more pushes is a peg-out attempt and
/// must follow these rules; other data carriers must use another shape.
pub fn check_pegout_output(
    ctx: &LedgerContext,
    txid: Txid,
    vout: u32,
    out: &TxOut,
) -> Result<Option<PegoutRecord>, TxRejection> {
    let Some(parsed) = parse_pegout_script(&out.script_pubkey) else {
        return Ok(None);
    };
    let refuse = |reason: &'static str, detail: String| TxRejection::Structure {
        reason,
        detail: format!("peg-out output {vout}: {detail}"),
    };
    if parsed.parent_genesis != ctx.parent_genesis_hash {
        return Err(refuse(
            "bad-txns-pegout-genesis",
            format!(
                "names parent genesis {}, not ours {}",
                hex::encode(parsed.parent_genesis),
                hex::encode(ctx.parent_genesis_hash)
            ),
        ));
    }
    let (asset, value) = match (out.asset, out.value) {
        (Asset::Explicit(asset), Value::Explicit(value)) => (asset, value),
        _ => {
            return Err(refuse(
                "bad-txns-pegout-confidential",
                "asset and value must be explicit".into(),
            ))
        }
    };
    if asset != ctx.policy_asset {
        return Err(refuse(
            "bad-txns-pegout-asset",
            format!("asset {asset} is not the policy asset {}", ctx.policy_asset),
        ));
    }
    if value == 0 {
        return Err(refuse("bad-txns-pegout-zero", "value is zero".into()));
    }
    if parsed.destination.is_empty() {
        return Err(refuse(
            "bad-txns-pegout-destination",
            "the parent-chain destination script is empty".into(),
        ));
    }
    Ok(Some(PegoutRecord {
        txid,
        vout,
        asset,
        value,
        parent_genesis: parsed.parent_genesis,
        destination: bitcoin::ScriptBuf::from(parsed.destination),
        extra: parsed.extra,
    }))
}
