//! `getsidechaininfo` (Elements master @7110a84 `rpc/blockchain.cpp`).

use serde_json::{json, Value};

use super::jsonrpc::RpcFault;
use super::RpcContext;

/// Parent-chain confirmations a peg-in will need. PLACEHOLDER: peg-ins are refused by the ledger until the peg-in
/// issue lands, which will make this configurable. 100 is Liquid's consensus value (`pegin_min_depth` of
/// liquidv1); elementsd's default for custom chains is 8 (`DEFAULT_PEGIN_CONFIRMATION_DEPTH`).
pub const PEGIN_CONFIRMATION_DEPTH: u32 = 100;

/// The parent chain's proof-of-work limit (Bitcoin regtest's, elementsd's default `-con_parentpowlimit`).
const PARENT_POW_LIMIT: &str = "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

/// `getsidechaininfo`: `fedpegscript` (our genesis fedpegscript, [`chain::FEDPEGSCRIPT`]),
/// `current_fedpeg_programs`/`current_fedpegscripts` (the one in force), `pegged_asset` (the policy asset),
/// `min_peg_diff`, `parent_blockhash` (Bitcoin regtest genesis, the parent our peg-outs name),
/// `parent_chain_has_pow`, `pegin_confirmation_depth` ([`PEGIN_CONFIRMATION_DEPTH`], a placeholder),
/// `enforce_pak` (false: no PAK list). elementsd 23's `addr_prefixes` is gone from elementsd master and not
/// printed.
pub fn getsidechaininfo(ctx: &RpcContext, _params: &[Value]) -> Result<Value, RpcFault> {
    let fedpegscript = hex::encode(chain::FEDPEGSCRIPT);
    let programs: Vec<String> = ctx
        .params
        .full_params()
        .fedpeg_program()
        .map(|program| hex::encode(program.as_bytes()))
        .into_iter()
        .collect();
    let mut parent = crate::ledger::REGTEST_GENESIS_INTERNAL;
    parent.reverse();
    Ok(json!({
        "fedpegscript": fedpegscript,
        "current_fedpeg_programs": programs,
        "current_fedpegscripts": [fedpegscript],
        "pegged_asset": ctx.params.policy_asset().to_string(),
        "min_peg_diff": PARENT_POW_LIMIT,
        "parent_blockhash": hex::encode(parent),
        "parent_chain_has_pow": true,
        "enforce_pak": false,
        "pegin_confirmation_depth": PEGIN_CONFIRMATION_DEPTH,
    }))
}
