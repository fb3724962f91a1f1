//! Contextual transaction validation against a UTXO view: what Elements checks in `CheckTxInputs`,
//! `VerifyAmounts`, lock time and sequence locks, and script verification, for a transaction that is not a
//! coinbase.

use super::{
    check_final, check_pegout_output, check_sequence_locks, check_transaction, issuance_records,
    verify_amounts_with_issuances, IssuanceRecord, LedgerContext, PegoutRecord, TxRejection, Utxo,
    UtxoView,
};
use elements::{OutPoint, Transaction, TxOut, Txid};

/// Decides peg-in inputs (filled by the peg-in work: checks the claim against the parent chain and the
/// fedpegscript). Returns the output the peg-in input "spends" (explicit policy asset, the claimed value, the claim
/// script), or why it is refused.
pub trait PeginValidator {
    /// Validates the peg-in claim of input `input` of `tx`.
    fn claim(&self, tx: &Transaction, input: usize) -> Result<TxOut, TxRejection>;
}

/// Refuses every peg-in ("bad-pegin-unsupported"): peg-ins are not built yet.
#[derive(Clone, Copy, Debug, Default)]
pub struct RefusePegins;

impl PeginValidator for RefusePegins {
    fn claim(&self, _tx: &Transaction, input: usize) -> Result<TxOut, TxRejection> {
        Err(TxRejection::Structure {
            reason: "bad-pegin-unsupported",
            detail: format!("input {input} is a peg-in; peg-ins are not supported yet"),
        })
    }
}

/// A transaction that passed [`validate_transaction`], with what it changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedTx {
    /// Its txid.
    pub txid: Txid,
    /// Fee paid, in the policy asset.
    pub fee: u64,
    /// Weight (BIP141-style, witness included).
    pub weight: usize,
    /// Virtual size, `ceil(weight / 4)`.
    pub vsize: usize,
    /// The UTXOs it spends (peg-in inputs spend none and are not listed), in input order.
    pub spent: Vec<(OutPoint, Utxo)>,
    /// The spendable outputs it creates: not fee outputs, not `OP_RETURN` (peg-outs included), not provably
    /// unspendable. Height and time are the context's block's.
    pub created: Vec<(OutPoint, Utxo)>,
    /// Its peg-out outputs.
    pub pegouts: Vec<PegoutRecord>,
    /// Its issuances and reissuances.
    pub issuances: Vec<IssuanceRecord>,
}

/// Validates a non-coinbase transaction against `view`, in order from cheap to expensive:
/// 1. [`check_transaction`]; a coinbase is refused ("coinbase");
/// 2. issuance rules ([`super::issuance_record`]);
/// 3. every input exists in `view` ([`TxRejection::MissingInput`]); peg-in inputs are decided by `pegins`;
/// 4. coinbase maturity ([`LedgerContext::coinbase_maturity`], [`TxRejection::ImmatureCoinbase`]);
/// 5. lock time ([`check_final`]) and BIP68 sequence locks ([`check_sequence_locks`]);
/// 6. peg-out outputs ([`check_pegout_output`]);
/// 7. amounts, fee, proofs ([`super::verify_amounts`]);
/// 8. input scripts ([`super::verify_input_scripts`]; a transaction already verified against the same spent outputs is
///    not verified again, see `proof_cache.rs`).
///
/// Double spends inside a block or against the mempool are the caller's (the view reports a spent output as
/// missing).
pub fn validate_transaction(
    ctx: &LedgerContext,
    view: &impl UtxoView,
    pegins: &dyn PeginValidator,
    tx: &Transaction,
) -> Result<ValidatedTx, TxRejection> {
    check_transaction(tx)?;
    if tx.is_coinbase() {
        return Err(TxRejection::Structure {
            reason: "coinbase",
            detail: "a coinbase transaction is only valid as the first transaction of a block"
                .into(),
        });
    }
    let issuances = issuance_records(tx)?;

    let mut spent_txouts: Vec<TxOut> = Vec::with_capacity(tx.input.len());
    let mut coins: Vec<Option<Utxo>> = Vec::with_capacity(tx.input.len());
    for (index, input) in tx.input.iter().enumerate() {
        if input.is_pegin {
            spent_txouts.push(pegins.claim(tx, index)?);
            coins.push(None);
            continue;
        }
        let Some(coin) = view.utxo(&input.previous_output)? else {
            return Err(TxRejection::MissingInput {
                input: index,
                outpoint: input.previous_output.to_string(),
            });
        };
        if coin.is_coinbase && ctx.height.saturating_sub(coin.height) < ctx.coinbase_maturity {
            return Err(TxRejection::ImmatureCoinbase {
                input: index,
                coin_height: coin.height,
                height: ctx.height,
            });
        }
        spent_txouts.push(coin.txout.clone());
        coins.push(Some(coin));
    }

    check_final(tx, ctx.height, ctx.lock_time_cutoff)?;
    let coin_refs: Vec<Option<&Utxo>> = coins.iter().map(Option::as_ref).collect();
    check_sequence_locks(ctx, tx, &coin_refs)?;

    let txid = tx.txid();
    let mut pegouts = Vec::new();
    let mut created = Vec::new();
    for (vout, out) in (0u32..).zip(&tx.output) {
        if let Some(record) = check_pegout_output(ctx, txid, vout, out)? {
            pegouts.push(record);
        }
        if !out.script_pubkey.is_provably_unspendable() {
            created.push((
                OutPoint::new(txid, vout),
                Utxo {
                    txout: out.clone(),
                    height: ctx.height,
                    time: ctx.block_time,
                    is_coinbase: false,
                },
            ));
        }
    }

    let fee = verify_amounts_with_issuances(ctx, tx, &spent_txouts, &issuances)?;
    super::proof_cache::verify_input_scripts_cached(ctx, tx, &spent_txouts)?;

    let spent = tx
        .input
        .iter()
        .zip(coins)
        .filter_map(|(input, coin)| coin.map(|c| (input.previous_output, c)))
        .collect();
    let weight = tx.weight();
    Ok(ValidatedTx {
        txid,
        fee,
        weight,
        vsize: weight.div_ceil(4),
        spent,
        created,
        pegouts,
        issuances,
    })
}
