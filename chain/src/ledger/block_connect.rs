//! Whole-block ledger rules: the coinbase, fees, the witness commitment, transactions applied in order with no
//! double spend, and the resulting [`BlockDelta`].
//!
//! # Witness commitment (verified against Elements, `ElementsProject/elements` @7110a84)
//!
//! Elements does **not** commit to Bitcoin-style wtxids. In Elements mode `BlockWitnessMerkleRoot`
//! (`src/consensus/merkle.cpp`) is the *fast* Merkle root (`ComputeFastMerkleRoot`: SHA256 midstates of
//! left||right, no padding or finalisation) over `CTransaction::GetWitnessOnlyHash()` of **every** transaction,
//! the coinbase included (`src/primitives/transaction.cpp`):
//! `fast_root([fast_root(input witness hashes), fast_root(output witness hashes)])`, where an input's witness hash
//! is `fast_root([H(issuance amount rangeproof), H(inflation keys rangeproof), H(script witness stack),
//! H(peg-in witness stack)])` (an input with a null prevout, i.e. the coinbase's, counts as an empty witness) and
//! an output's is `fast_root([H(surjection proof), H(rangeproof)])`; H = SHA256d of the field's serialization
//! (`src/primitives/txwitness.cpp`). rust-elements' `Transaction::wtxid` (SHA256d of the whole serialization) is
//! Elements' `GetWitnessHash`, used for relay, not for the block commitment, so it is not used here.
//! `CheckWitnessMalleation` (`src/validation.cpp`): the commitment is the last coinbase output whose script is at
//! least 38 bytes starting `6a 24 aa 21 a9 ed`; if present, the coinbase input's witness must be exactly one
//! 32-byte item (the reserved value) and bytes 6..38 must equal SHA256d(witness root || reserved value); if absent,
//! no transaction may carry witness data. The real Elements block in `tests/data/functionary_dynafed_block.hex`
//! checks against this (see `tests/ledger_vectors.rs`).

use super::{
    check_transaction, validate_transaction, IssuanceRecord, LedgerContext, OverlayView,
    PeginValidator, PegoutRecord, TxRejection, Utxo, UtxoView, MAX_MONEY,
};
use elements::confidential::{Asset, Nonce, Value};
use elements::encode::{Encodable, VarInt};
use elements::fast_merkle_root;
use elements::hashes::{sha256d, HashEngine};
use elements::{Block, OutPoint, Transaction, TxIn, TxInWitness, TxOut, TxOutWitness, Txid};
use std::collections::{HashMap, HashSet};

/// First bytes of a witness commitment output script: `OP_RETURN`, push 36, the BIP141 tag `aa21a9ed`.
pub const WITNESS_COMMITMENT_PREFIX: [u8; 6] = [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];

/// Shortest witness commitment script (prefix + 32-byte commitment).
pub const MINIMUM_WITNESS_COMMITMENT: usize = 38;

/// What connecting a block changes, for the store to write atomically with the block.
///
/// Outputs created and spent within the same block appear in neither list, so the delta applies directly to the
/// UTXO set at the parent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockDelta {
    /// Outpoints of the parent's UTXO set spent by the block.
    pub spent: Vec<OutPoint>,
    /// New UTXOs (spendable outputs, coinbase outputs flagged), in block order.
    pub created: Vec<(OutPoint, Utxo)>,
    /// Peg-out outputs of the block, in block order.
    pub pegouts: Vec<PegoutRecord>,
    /// Issuances and reissuances of the block, in block order.
    pub issuances: Vec<IssuanceRecord>,
    /// Total fees of the block's transactions, in the policy asset.
    pub fees: u64,
    /// Txids of all the block's transactions, coinbase first.
    pub txids: Vec<Txid>,
}

/// Why a block is refused by the ledger rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockLedgerError {
    /// A transaction of the block is invalid.
    #[error("transaction {index} ({txid}) of the block is invalid: {rejection}")]
    Tx {
        /// Position in the block (0 = coinbase).
        index: usize,
        /// Its txid.
        txid: Txid,
        /// Why.
        rejection: TxRejection,
    },
    /// A block-level rule is broken.
    #[error("{reason}: {detail}")]
    Block {
        /// Elements' reject reason (e.g. "bad-cb-amount", "bad-witness-merkle-match").
        reason: &'static str,
        /// What exactly is wrong.
        detail: String,
    },
}

impl BlockLedgerError {
    /// Elements' short reject reason.
    pub fn reason(&self) -> &'static str {
        match self {
            BlockLedgerError::Tx { rejection, .. } => rejection.reason(),
            BlockLedgerError::Block { reason, .. } => reason,
        }
    }

    /// True if the UTXO set could not be read: not the block's fault, it must not be marked invalid.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            BlockLedgerError::Tx {
                rejection: TxRejection::Lookup(_),
                ..
            }
        )
    }
}

fn block_error(reason: &'static str, detail: impl Into<String>) -> BlockLedgerError {
    BlockLedgerError::Block {
        reason,
        detail: detail.into(),
    }
}

/// Validates `block`'s transactions against `view` (the UTXO set at its parent) and returns what it changes.
///
/// Rules: the first transaction and only it is a coinbase ("bad-cb-missing", "bad-cb-multiple"); no two
/// transactions share a txid ("bad-txns-duplicate"); the witness commitment (module docs;
/// "bad-witness-nonce-size", "bad-witness-merkle-match", "unexpected-witness"); transactions validate in order
/// ([`validate_transaction`]) over an overlay of the earlier ones, so a transaction may spend an output created
/// earlier in the block, and an output spent twice is a [`TxRejection::DoubleSpend`]
/// ("bad-txns-inputs-missingorspent"); total fees at most MAX_MONEY ("bad-block-total-fee-outofrange"); the
/// coinbase's outputs are explicit policy asset ("bad-cb-asset"), without witness ("bad-cb-witness"), zero-valued
/// only if unspendable ("bad-cb-amount"), pay non-zero amounts only to [`LedgerContext::fee_script`]
/// ("bad-cb-payee"), and add up to at most the fees ("bad-cb-amount"): the federation mints nothing.
pub fn connect_block(
    ctx: &LedgerContext,
    view: &impl UtxoView,
    pegins: &dyn PeginValidator,
    block: &Block,
) -> Result<BlockDelta, BlockLedgerError> {
    let coinbase = block
        .txdata
        .first()
        .ok_or_else(|| block_error("bad-cb-missing", "the block has no transactions"))?;
    if !coinbase.is_coinbase() {
        return Err(block_error(
            "bad-cb-missing",
            "the first transaction is not a coinbase",
        ));
    }
    if let Some(index) = block.txdata.iter().skip(1).position(|tx| tx.is_coinbase()) {
        return Err(block_error(
            "bad-cb-multiple",
            format!("transaction {} is a second coinbase", index + 1),
        ));
    }
    let txids: Vec<Txid> = block.txdata.iter().map(Transaction::txid).collect();
    let mut unique = HashSet::with_capacity(txids.len());
    for (index, txid) in txids.iter().enumerate() {
        if !unique.insert(*txid) {
            return Err(block_error(
                "bad-txns-duplicate",
                format!("transaction {index} repeats txid {txid}"),
            ));
        }
    }
    let coinbase_txid = txids.first().copied().unwrap_or_else(|| coinbase.txid());
    check_transaction(coinbase).map_err(|rejection| BlockLedgerError::Tx {
        index: 0,
        txid: coinbase_txid,
        rejection,
    })?;
    check_witness_commitment(block)?;

    let mut overlay = OverlayView::new(view);
    let mut spenders: HashMap<OutPoint, Txid> = HashMap::new();
    let mut created: Vec<(OutPoint, Utxo)> = Vec::new();
    let mut created_here: HashMap<OutPoint, usize> = HashMap::new();
    let mut consumed_here: HashSet<usize> = HashSet::new();
    let mut spent: Vec<OutPoint> = Vec::new();
    let mut delta = BlockDelta::default();

    for (vout, out) in (0u32..).zip(&coinbase.output) {
        if out.script_pubkey.is_provably_unspendable() {
            continue;
        }
        let outpoint = OutPoint::new(coinbase_txid, vout);
        let utxo = Utxo {
            txout: out.clone(),
            height: ctx.height,
            time: ctx.block_time,
            is_coinbase: true,
        };
        overlay.create(outpoint, utxo.clone());
        created_here.insert(outpoint, created.len());
        created.push((outpoint, utxo));
    }

    let mut fees: u64 = 0;
    for (index, (tx, txid)) in block.txdata.iter().zip(&txids).enumerate().skip(1) {
        let tx_error = |rejection| BlockLedgerError::Tx {
            index,
            txid: *txid,
            rejection,
        };
        for (input_index, input) in tx.input.iter().enumerate() {
            if input.is_pegin {
                continue;
            }
            if let Some(by) = spenders.get(&input.previous_output) {
                return Err(tx_error(TxRejection::DoubleSpend {
                    reason: "bad-txns-inputs-missingorspent",
                    input: input_index,
                    outpoint: input.previous_output.to_string(),
                    spent_by: by.to_string(),
                }));
            }
        }
        let validated = validate_transaction(ctx, &overlay, pegins, tx).map_err(tx_error)?;
        for (outpoint, _) in &validated.spent {
            overlay.spend(*outpoint);
            spenders.insert(*outpoint, *txid);
            match created_here.get(outpoint) {
                Some(position) => {
                    consumed_here.insert(*position);
                }
                None => spent.push(*outpoint),
            }
        }
        for (outpoint, utxo) in validated.created {
            overlay.create(outpoint, utxo.clone());
            created_here.insert(outpoint, created.len());
            created.push((outpoint, utxo));
        }
        fees = fees
            .checked_add(validated.fee)
            .filter(|f| *f <= MAX_MONEY)
            .ok_or_else(|| {
                block_error(
                    "bad-block-total-fee-outofrange",
                    format!("fees exceed MAX_MONEY at transaction {index}"),
                )
            })?;
        delta.pegouts.extend(validated.pegouts);
        delta.issuances.extend(validated.issuances);
    }

    check_coinbase_outputs(ctx, coinbase, fees)?;

    delta.spent = spent;
    delta.created = created
        .into_iter()
        .enumerate()
        .filter(|(position, _)| !consumed_here.contains(position))
        .map(|(_, entry)| entry)
        .collect();
    delta.fees = fees;
    delta.txids = txids;
    Ok(delta)
}

/// The coinbase output rules of [`connect_block`] (Elements' `VerifyCoinbaseAmount` with our fee-only subsidy and
/// mandatory fee script).
pub fn check_coinbase_outputs(
    ctx: &LedgerContext,
    coinbase: &Transaction,
    fees: u64,
) -> Result<(), BlockLedgerError> {
    let mut total: u64 = 0;
    for (index, out) in coinbase.output.iter().enumerate() {
        if !out.witness.is_empty() {
            return Err(block_error(
                "bad-cb-witness",
                format!("coinbase output {index} carries proofs"),
            ));
        }
        let (asset, value) = match (out.asset, out.value) {
            (Asset::Explicit(asset), Value::Explicit(value)) => (asset, value),
            _ => {
                return Err(block_error(
                    "bad-cb-asset",
                    format!("coinbase output {index} is not explicit"),
                ))
            }
        };
        if asset != ctx.policy_asset {
            return Err(block_error(
                "bad-cb-asset",
                format!(
                    "coinbase output {index} pays {asset}, not the policy asset {}",
                    ctx.policy_asset
                ),
            ));
        }
        if value == 0 {
            if !out.script_pubkey.is_provably_unspendable() {
                return Err(block_error(
                    "bad-cb-amount",
                    format!("coinbase output {index} is a spendable output of value 0"),
                ));
            }
            continue;
        }
        if out.script_pubkey != ctx.fee_script {
            return Err(block_error(
                "bad-cb-payee",
                format!("coinbase output {index} pays {value} to a script other than the federation's fee script"),
            ));
        }
        total = total
            .checked_add(value)
            .filter(|t| *t <= MAX_MONEY)
            .ok_or_else(|| {
                block_error(
                    "bad-cb-amount",
                    format!("coinbase outputs exceed MAX_MONEY at output {index}"),
                )
            })?;
    }
    if total > fees {
        return Err(block_error(
            "bad-cb-amount",
            format!("coinbase pays {total}, more than the block's fees {fees}"),
        ));
    }
    Ok(())
}

/// True if `script` has the witness commitment shape (at least 38 bytes starting [`WITNESS_COMMITMENT_PREFIX`]).
pub fn is_witness_commitment(script: &elements::Script) -> bool {
    let bytes = script.as_bytes();
    bytes.len() >= MINIMUM_WITNESS_COMMITMENT && bytes.starts_with(&WITNESS_COMMITMENT_PREFIX)
}

fn sha256d_of(parts: impl FnOnce(&mut sha256d::HashEngine)) -> [u8; 32] {
    let mut engine = sha256d::Hash::engine();
    parts(&mut engine);
    sha256d::Hash::from_engine(engine).to_byte_array()
}

fn write_bytes(engine: &mut sha256d::HashEngine, bytes: &[u8]) {
    // Writing into a hash engine cannot fail.
    let _ = VarInt(bytes.len() as u64).consensus_encode(&mut *engine);
    engine.input(bytes);
}

fn midstate_bytes(leaves: &[[u8; 32]]) -> [u8; 32] {
    *fast_merkle_root(leaves).as_parts().0
}

fn input_witness_hash(input: &TxIn) -> [u8; 32] {
    let empty = TxInWitness::default();
    let witness = if input.previous_output.is_null() {
        &empty
    } else {
        &input.witness
    };
    let amount = sha256d_of(|e| write_bytes(e, &witness.amount_rangeproof.to_vec()));
    let keys = sha256d_of(|e| write_bytes(e, &witness.inflation_keys_rangeproof.to_vec()));
    let stack = sha256d_of(|e| {
        let _ = VarInt(witness.script_witness.len() as u64).consensus_encode(&mut *e);
        for item in witness.script_witness.iter() {
            write_bytes(e, item);
        }
    });
    let pegin = sha256d_of(|e| {
        let _ = witness.pegin_witness.consensus_encode(&mut *e);
    });
    midstate_bytes(&[amount, keys, stack, pegin])
}

fn output_witness_hash(witness: &TxOutWitness) -> [u8; 32] {
    let surjection = sha256d_of(|e| write_bytes(e, &witness.surjection_proof.to_vec()));
    let range = sha256d_of(|e| write_bytes(e, &witness.rangeproof.to_vec()));
    midstate_bytes(&[surjection, range])
}

/// Elements' `CTransaction::GetWitnessOnlyHash` (module docs).
pub fn witness_only_hash(tx: &Transaction) -> [u8; 32] {
    let inputs: Vec<[u8; 32]> = tx.input.iter().map(input_witness_hash).collect();
    let outputs: Vec<[u8; 32]> = tx
        .output
        .iter()
        .map(|o| output_witness_hash(&o.witness))
        .collect();
    midstate_bytes(&[midstate_bytes(&inputs), midstate_bytes(&outputs)])
}

/// Elements' `BlockWitnessMerkleRoot`: fast Merkle root of every transaction's [`witness_only_hash`].
pub fn witness_merkle_root(txdata: &[Transaction]) -> [u8; 32] {
    let leaves: Vec<[u8; 32]> = txdata.iter().map(witness_only_hash).collect();
    midstate_bytes(&leaves)
}

/// The 32 committed bytes: SHA256d(witness root || reserved value).
pub fn witness_commitment(txdata: &[Transaction], reserved_value: &[u8]) -> [u8; 32] {
    let root = witness_merkle_root(txdata);
    sha256d_of(|e| {
        e.input(&root);
        e.input(reserved_value);
    })
}

/// Elements' `CheckWitnessMalleation` for a block (module docs).
pub fn check_witness_commitment(block: &Block) -> Result<(), BlockLedgerError> {
    let Some(coinbase) = block.txdata.first() else {
        return Err(block_error(
            "bad-cb-missing",
            "the block has no transactions",
        ));
    };
    let position = coinbase
        .output
        .iter()
        .rposition(|o| is_witness_commitment(&o.script_pubkey));
    if let Some(position) = position {
        let reserved = coinbase
            .input
            .first()
            .map(|i| &i.witness.script_witness)
            .filter(|w| w.len() == 1)
            .and_then(|w| w.get(0))
            .filter(|item| item.len() == 32)
            .ok_or_else(|| {
                block_error(
                    "bad-witness-nonce-size",
                    "the coinbase input witness must be exactly one 32-byte reserved value",
                )
            })?;
        let expected = witness_commitment(&block.txdata, reserved);
        let committed = coinbase
            .output
            .get(position)
            .and_then(|o| o.script_pubkey.as_bytes().get(6..38));
        if committed != Some(&expected[..]) {
            return Err(block_error(
                "bad-witness-merkle-match",
                format!(
                    "coinbase output {position} commits to {}, the block's witnesses give {}",
                    committed.map(hex::encode).unwrap_or_default(),
                    hex::encode(expected)
                ),
            ));
        }
        return Ok(());
    }
    if let Some(index) = block.txdata.iter().position(Transaction::has_witness) {
        return Err(block_error(
            "unexpected-witness",
            format!(
                "transaction {index} has witness data but the coinbase has no witness commitment"
            ),
        ));
    }
    Ok(())
}

/// Completes the coinbase of a block being built, before its merkle root is computed: removes any old witness
/// commitment, adds the fee output (`fees` of the policy asset to [`LedgerContext::fee_script`], only if
/// `fees > 0`), and, when any other transaction carries witness data, sets the coinbase input's witness to a zero
/// 32-byte reserved value and appends the witness commitment output (0 of the policy asset), as Elements'
/// `GenerateCoinbaseCommitment` does. A block without transactions is left unchanged.
pub fn finish_coinbase(block: &mut Block, ctx: &LedgerContext, fees: u64) {
    let needs_commitment = block.txdata.iter().skip(1).any(Transaction::has_witness);
    let Some(coinbase) = block.txdata.first_mut() else {
        return;
    };
    coinbase
        .output
        .retain(|o| !is_witness_commitment(&o.script_pubkey));
    if fees > 0 {
        coinbase.output.push(TxOut {
            asset: Asset::Explicit(ctx.policy_asset),
            value: Value::Explicit(fees),
            nonce: Nonce::Null,
            script_pubkey: ctx.fee_script.clone(),
            witness: TxOutWitness::default(),
        });
    }
    if !needs_commitment {
        if let Some(input) = coinbase.input.first_mut() {
            input.witness.script_witness = elements::Witness::new();
        }
        return;
    }
    let reserved = [0u8; 32];
    if let Some(input) = coinbase.input.first_mut() {
        input.witness.script_witness = elements::Witness::from_slice(&[reserved]);
    }
    // The commitment output's own witness is empty and its script is not hashed, so a placeholder output gives
    // the same witness root as the final one (Elements shims a blank output the same way).
    coinbase.output.push(TxOut {
        asset: Asset::Explicit(ctx.policy_asset),
        value: Value::Explicit(0),
        nonce: Nonce::Null,
        script_pubkey: elements::Script::new(),
        witness: TxOutWitness::default(),
    });
    let commitment = witness_commitment(&block.txdata, &reserved);
    let mut script = Vec::with_capacity(MINIMUM_WITNESS_COMMITMENT);
    script.extend_from_slice(&WITNESS_COMMITMENT_PREFIX);
    script.extend_from_slice(&commitment);
    if let Some(out) = block
        .txdata
        .first_mut()
        .and_then(|coinbase| coinbase.output.last_mut())
    {
        out.script_pubkey = elements::Script::from(script);
    }
}

/// What the genesis block contributes to the UTXO set: every spendable output of every genesis transaction
/// becomes a UTXO at height 0 with the header time and `is_coinbase` false (Elements lets genesis outputs be
/// spent, e.g. initial free coins on test chains). No validation; no fees.
pub fn genesis_delta(genesis: &Block) -> BlockDelta {
    let mut delta = BlockDelta::default();
    for tx in &genesis.txdata {
        let txid = tx.txid();
        delta.txids.push(txid);
        for (vout, out) in (0u32..).zip(&tx.output) {
            if out.script_pubkey.is_provably_unspendable() {
                continue;
            }
            delta.created.push((
                OutPoint::new(txid, vout),
                Utxo {
                    txout: out.clone(),
                    height: 0,
                    time: genesis.header.time,
                    is_coinbase: false,
                },
            ));
        }
    }
    delta
}
