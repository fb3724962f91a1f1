//! Block validation: the proposal rules (everything but the proof) and final blocks (plus the m-of-n proof).

use crate::build::{height_push, BLOCK_VERSION};
use crate::error::{BlockError, ProofError};
use crate::merkle::merkle_root;
use crate::params::FederationParams;
use crate::proof::verify_dynafed;
use elements::confidential::{Asset, Value};
use elements::{BlockExtData, BlockHeader};

/// Largest block weight accepted (Elements' and Bitcoin's `MAX_BLOCK_WEIGHT`).
pub const MAX_BLOCK_WEIGHT: usize = 4_000_000;
/// Coinbase scriptSig length bounds (consensus `bad-cb-length`).
const COINBASE_SCRIPT_SIG_LEN: std::ops::RangeInclusive<usize> = 2..=100;

/// Everything about a proposed (unsigned) child of `parent` except the proof: header version [`BLOCK_VERSION`]
/// with dynafed params, prev hash, height = parent+1, time >= parent.time, current == compact_params(), proposed
/// Null, witness empty, the first transaction and only the first is the coinbase, merkle root matches txdata,
/// weight <= [`MAX_BLOCK_WEIGHT`].
///
/// The coinbase must have one null-prevout input (no peg-in, no issuance) whose scriptSig (2..=100 bytes)
/// starts with the minimal push of the block height, and only outputs of explicit values in the policy asset.
/// These are the header and shape rules; what the transactions do to the UTXO set (inputs, amounts, scripts,
/// fees claimed by the coinbase, the witness commitment) is checked by [`crate::ledger::connect_block`].
pub fn validate_proposal(
    params: &FederationParams,
    parent: &BlockHeader,
    block: &elements::Block,
) -> Result<(), BlockError> {
    check_block_except_witness(params, parent, block)?;
    let items = witness_len(&block.header);
    if items != 0 {
        return Err(BlockError::WitnessNotEmpty { items });
    }
    Ok(())
}

/// [`validate_proposal`]'s rules but with a signed witness, plus the full dynafed header proof (Elements rules,
/// see [`crate::proof::verify_dynafed_proof`]) against [`FederationParams::signblockscript`].
/// Returns the member indexes that signed, in key order.
pub fn validate_final_block(
    params: &FederationParams,
    parent: &BlockHeader,
    block: &elements::Block,
) -> Result<Vec<usize>, BlockError> {
    check_block_except_witness(params, parent, block)?;
    Ok(block_signers(params, &block.header)?)
}

/// Member indexes (in key order) that signed a stored header, with the same proof check as
/// [`validate_final_block`]. The genesis header is not signed: it yields [`ProofError::EmptyWitness`].
pub fn block_signers(
    params: &FederationParams,
    header: &BlockHeader,
) -> Result<Vec<usize>, ProofError> {
    let keys = verify_dynafed(header, params.signblockscript(), Some(params))?;
    keys.iter()
        .map(|key| {
            params
                .member_index(key)
                .ok_or_else(|| ProofError::UnknownSigner {
                    key: hex::encode(key.serialize()),
                })
        })
        .collect()
}

/// Number of items in a dynafed header's signblock witness (0 for legacy headers).
fn witness_len(header: &BlockHeader) -> usize {
    match &header.ext {
        BlockExtData::Dynafed {
            signblock_witness, ..
        } => signblock_witness.len(),
        BlockExtData::Proof { .. } => 0,
    }
}

/// The shared rules of proposals and final blocks.
fn check_block_except_witness(
    params: &FederationParams,
    parent: &BlockHeader,
    block: &elements::Block,
) -> Result<(), BlockError> {
    let header = &block.header;
    let BlockExtData::Dynafed {
        current, proposed, ..
    } = &header.ext
    else {
        return Err(BlockError::NotDynafed);
    };
    if header.version != BLOCK_VERSION {
        return Err(BlockError::WrongVersion {
            found: header.version,
            expected: BLOCK_VERSION,
        });
    }
    let parent_hash = parent.block_hash();
    if header.prev_blockhash != parent_hash {
        return Err(BlockError::WrongPrevHash {
            expected: parent_hash,
            found: header.prev_blockhash,
        });
    }
    let expected_height = parent
        .height
        .checked_add(1)
        .ok_or(BlockError::HeightOverflow {
            parent: parent.height,
        })?;
    if header.height != expected_height {
        return Err(BlockError::WrongHeight {
            expected: expected_height,
            found: header.height,
        });
    }
    if header.time < parent.time {
        return Err(BlockError::TimeBeforeParent {
            time: header.time,
            parent_time: parent.time,
        });
    }
    if current != params.compact_params_ref() {
        return Err(BlockError::WrongCurrentParams);
    }
    if !proposed.is_null() {
        return Err(BlockError::ProposedNotNull);
    }
    let Some(coinbase) = block.txdata.first() else {
        return Err(BlockError::NoTransactions);
    };
    if !coinbase.is_coinbase() {
        return Err(BlockError::FirstNotCoinbase);
    }
    if let Some(index) = block.txdata.iter().skip(1).position(|tx| tx.is_coinbase()) {
        return Err(BlockError::SecondCoinbase { index: index + 1 });
    }
    check_coinbase(params, coinbase, header.height)?;
    let computed = merkle_root(&block.txdata);
    if computed != header.merkle_root {
        return Err(BlockError::MerkleRootMismatch {
            computed,
            found: header.merkle_root,
        });
    }
    check_body_is_committed(block)?;
    let weight = block.weight();
    if weight > MAX_BLOCK_WEIGHT {
        return Err(BlockError::TooHeavy {
            weight,
            limit: MAX_BLOCK_WEIGHT,
        });
    }
    Ok(())
}

/// The block's bytes are the only ones its hash can have: no duplicated transaction (a list with duplicates can
/// share a merkle root with the list without them), the witness commitment matches every transaction's witness
/// data (Elements' `CheckWitnessMalleation`), and the coinbase carries no witness data beyond the commitment's
/// reserved value (Elements leaves the coinbase out of the witness hash).
fn check_body_is_committed(block: &elements::Block) -> Result<(), BlockError> {
    let mut seen = std::collections::HashSet::with_capacity(block.txdata.len());
    for tx in &block.txdata {
        let txid = tx.txid();
        if !seen.insert(txid) {
            return Err(BlockError::DuplicateTransaction { txid });
        }
    }
    if let Some(coinbase) = block.txdata.first() {
        for (index, input) in coinbase.input.iter().enumerate() {
            let witness = &input.witness;
            if witness.amount_rangeproof.as_ref().is_some()
                || witness.inflation_keys_rangeproof.as_ref().is_some()
                || !witness.pegin_witness.is_empty()
            {
                return Err(BlockError::UncommittedCoinbaseWitness {
                    detail: format!("coinbase input {index} has issuance or peg-in witness data"),
                });
            }
        }
        for (index, output) in coinbase.output.iter().enumerate() {
            if output.witness != elements::TxOutWitness::default() {
                return Err(BlockError::UncommittedCoinbaseWitness {
                    detail: format!("coinbase output {index} has a rangeproof or surjection proof"),
                });
            }
        }
    }
    crate::ledger::check_witness_commitment(block).map_err(|e| BlockError::WitnessCommitment {
        reason: e.to_string(),
    })
}

/// Our coinbase rules (documented at [`validate_proposal`]).
fn check_coinbase(
    params: &FederationParams,
    coinbase: &elements::Transaction,
    height: u32,
) -> Result<(), BlockError> {
    let invalid = |reason: String| BlockError::InvalidCoinbase { reason };
    let [input] = coinbase.input.as_slice() else {
        return Err(invalid(format!(
            "{} inputs; exactly 1 expected",
            coinbase.input.len()
        )));
    };
    if input.is_pegin || input.has_issuance() {
        return Err(invalid(
            "input is a peg-in or carries an issuance".to_string(),
        ));
    }
    let script_sig = input.script_sig.as_bytes();
    if !COINBASE_SCRIPT_SIG_LEN.contains(&script_sig.len()) {
        return Err(invalid(format!(
            "scriptSig is {} bytes; 2..=100 allowed",
            script_sig.len()
        )));
    }
    if !script_sig.starts_with(height_push(height).as_bytes()) {
        return Err(invalid(format!(
            "scriptSig does not start with the height {height}"
        )));
    }
    if coinbase.output.is_empty() {
        return Err(invalid("no outputs".to_string()));
    }
    let policy_asset = params.policy_asset();
    for (index, output) in coinbase.output.iter().enumerate() {
        if !matches!(output.value, Value::Explicit(_))
            || output.asset != Asset::Explicit(policy_asset)
        {
            return Err(invalid(format!(
                "output {index} is not an explicit value of the policy asset"
            )));
        }
    }
    Ok(())
}
