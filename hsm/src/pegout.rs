//! The Bitcoin peg-out transaction policy: pure, no IO, no clock (the caller passes the time).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

use bitcoin::hashes::Hash;
use bitcoin::script::Instruction;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction};

/// Most inputs a peg-out transaction may have (bounds the work and the journal record).
pub const MAX_TX_INPUTS: usize = 1000;
/// Most outputs a peg-out transaction may have.
pub const MAX_TX_OUTPUTS: usize = 1000;

/// A coin of the federation's peg wallet that a transaction input spends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederationCoin {
    /// The coin.
    pub outpoint: OutPoint,
    /// Its value (committed to by the BIP143 sighash: a wrong value gives a signature the network rejects).
    pub value: Amount,
    /// The P2WSH witness script (must contain the peg-wallet public key).
    pub witness_script: ScriptBuf,
}

/// A peg-out the node validated from a final sidechain block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedPegout {
    /// Unique id (e.g. sidechain txid and output index hashed); each id is paid at most once, ever.
    pub id: [u8; 32],
    /// Destination script_pubkey.
    pub script_pubkey: ScriptBuf,
    /// Exact amount to pay.
    pub amount: Amount,
}

/// Everything the peg-out policy needs to judge one unsigned transaction.
#[derive(Clone, Debug)]
pub struct PegoutRequest {
    /// The unsigned transaction.
    pub tx: Transaction,
    /// The federation coins the inputs spend (any order; one per input).
    pub coins: Vec<FederationCoin>,
    /// The peg-outs the node validated from final sidechain blocks.
    pub validated_pegouts: Vec<ValidatedPegout>,
    /// The current federation change script_pubkey.
    pub change_script: ScriptBuf,
}

/// Configured bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PegoutLimits {
    /// Largest absolute fee.
    pub max_fee: Amount,
    /// Largest fee rate in sat/vB, measured on a lower bound of the signed transaction's vsize (strict).
    pub max_feerate_sat_per_vb: u64,
    /// Most peg-out value (change excluded) signed within any `window_ms`.
    pub max_pegout_per_window: Amount,
    /// The rolling rate-limit window (24 h by default).
    pub window_ms: u64,
}

impl PegoutLimits {
    /// The default window: 24 hours.
    pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;
}

/// Why the peg-out policy refuses. Names the offending input or output by index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PegoutRefusal {
    /// No inputs, or no outputs.
    Empty,
    /// Too many inputs or outputs.
    TooLarge {
        /// Inputs.
        inputs: usize,
        /// Outputs.
        outputs: usize,
    },
    /// An input spends a coin that is not in the given federation coins.
    UnknownInput {
        /// Input index.
        index: usize,
        /// The outpoint it spends.
        outpoint: OutPoint,
    },
    /// Two inputs spend the same outpoint.
    DuplicateInput {
        /// Input index of the second one.
        index: usize,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// The coin's witness script does not contain the peg-wallet key.
    NotOurCoin {
        /// Input index.
        index: usize,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// An output is neither a validated peg-out (exact script and amount, unpaid) nor change.
    UnvalidatedOutput {
        /// Output index.
        index: usize,
        /// Its script_pubkey (hex).
        script_pubkey: String,
        /// Its amount.
        amount: Amount,
    },
    /// An output matches only peg-outs that were already paid (by an earlier transaction or earlier in this one).
    PegoutAlreadyPaid {
        /// Output index.
        index: usize,
        /// The id of the (first) matching peg-out.
        id: [u8; 32],
    },
    /// Outputs spend more than the inputs bring, or a sum overflows.
    OutputsExceedInputs {
        /// Sum of the inputs.
        inputs: Amount,
        /// Sum of the outputs.
        outputs: Amount,
    },
    /// The absolute fee is above the bound.
    FeeTooHigh {
        /// The fee.
        fee: Amount,
        /// The bound.
        max: Amount,
    },
    /// The fee rate is above the bound.
    FeerateTooHigh {
        /// Fee rate in sat/vB (rounded up).
        feerate_sat_per_vb: u64,
        /// The bound.
        max: u64,
    },
    /// Signing would take the peg-outs signed within the window above the limit (an operator override lifts this).
    RateLimit {
        /// Peg-out value of this transaction.
        requested: Amount,
        /// Peg-out value already signed within the window.
        used: Amount,
        /// The limit.
        limit: Amount,
        /// The window in milliseconds.
        window_ms: u64,
    },
    /// The sighash of an input could not be computed.
    Sighash {
        /// Input index.
        index: usize,
        /// Why.
        reason: String,
    },
}

impl PegoutRefusal {
    /// A short stable name (scenario files and logs).
    pub fn kind(&self) -> &'static str {
        match self {
            PegoutRefusal::Empty => "empty",
            PegoutRefusal::TooLarge { .. } => "too_large",
            PegoutRefusal::UnknownInput { .. } => "unknown_input",
            PegoutRefusal::DuplicateInput { .. } => "duplicate_input",
            PegoutRefusal::NotOurCoin { .. } => "not_our_coin",
            PegoutRefusal::UnvalidatedOutput { .. } => "unvalidated_output",
            PegoutRefusal::PegoutAlreadyPaid { .. } => "already_paid",
            PegoutRefusal::OutputsExceedInputs { .. } => "outputs_exceed_inputs",
            PegoutRefusal::FeeTooHigh { .. } => "fee",
            PegoutRefusal::FeerateTooHigh { .. } => "feerate",
            PegoutRefusal::RateLimit { .. } => "rate_limit",
            PegoutRefusal::Sighash { .. } => "sighash",
        }
    }
}

impl fmt::Display for PegoutRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refusing to sign peg-out transaction: ")?;
        match self {
            PegoutRefusal::Empty => write!(f, "it has no inputs or no outputs"),
            PegoutRefusal::TooLarge { inputs, outputs } => write!(
                f,
                "{inputs} inputs / {outputs} outputs (at most {MAX_TX_INPUTS} / {MAX_TX_OUTPUTS})"
            ),
            PegoutRefusal::UnknownInput { index, outpoint } => {
                write!(f, "input {index} spends {outpoint}, which is not a known federation coin")
            }
            PegoutRefusal::DuplicateInput { index, outpoint } => {
                write!(f, "input {index} spends {outpoint} a second time")
            }
            PegoutRefusal::NotOurCoin { index, outpoint } => write!(
                f,
                "input {index} spends {outpoint}, whose witness script does not contain the peg-wallet key"
            ),
            PegoutRefusal::UnvalidatedOutput {
                index,
                script_pubkey,
                amount,
            } => write!(
                f,
                "output {index} pays {amount} to script {script_pubkey}, which is neither a validated peg-out nor the federation change script"
            ),
            PegoutRefusal::PegoutAlreadyPaid { index, id } => write!(
                f,
                "output {index} pays peg-out {} which was already paid",
                hex::encode(id)
            ),
            PegoutRefusal::OutputsExceedInputs { inputs, outputs } => {
                write!(f, "outputs ({outputs}) exceed inputs ({inputs})")
            }
            PegoutRefusal::FeeTooHigh { fee, max } => write!(f, "fee {fee} is above the maximum {max}"),
            PegoutRefusal::FeerateTooHigh {
                feerate_sat_per_vb,
                max,
            } => write!(
                f,
                "fee rate {feerate_sat_per_vb} sat/vB is above the maximum {max} sat/vB"
            ),
            PegoutRefusal::RateLimit {
                requested,
                used,
                limit,
                window_ms,
            } => write!(
                f,
                "rate limit: {requested} of peg-outs on top of {used} already signed in the last {} s exceeds {limit} (an operator override can lift this)",
                window_ms / 1000
            ),
            PegoutRefusal::Sighash { index, reason } => {
                write!(f, "cannot compute the sighash of input {index}: {reason}")
            }
        }
    }
}

impl std::error::Error for PegoutRefusal {}

/// What the policy approved: what to sign and what to remember.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PegoutApproval {
    /// Txid (raw byte order).
    pub txid: [u8; 32],
    /// The BIP143 P2WSH SIGHASH_ALL digest of each input, in input order.
    pub sighashes: Vec<[u8; 32]>,
    /// Ids of the peg-outs paid.
    pub pegout_ids: Vec<[u8; 32]>,
    /// Sum of the peg-out outputs.
    pub pegout_total: Amount,
    /// The fee.
    pub fee: Amount,
    /// True when the rate limit alone would have refused and an operator override lifted it.
    pub overridden: bool,
    /// True when this exact transaction (same txid and sighashes) was approved before: signing it again pays
    /// nothing new (crash between journal and signature).
    pub resign: bool,
}

/// Peg-out rules plus the state they need (paid peg-out ids, recent peg-out value, approved transactions).
#[derive(Clone, Debug)]
pub struct PegoutPolicy {
    limits: PegoutLimits,
    paid: HashSet<[u8; 32]>,
    window: VecDeque<(u64, u64)>,
    approved: HashMap<[u8; 32], Vec<[u8; 32]>>,
}

impl PegoutPolicy {
    /// A policy with nothing paid yet.
    pub fn new(limits: PegoutLimits) -> Self {
        PegoutPolicy {
            limits,
            paid: HashSet::new(),
            window: VecDeque::new(),
            approved: HashMap::new(),
        }
    }

    /// The configured limits.
    pub fn limits(&self) -> PegoutLimits {
        self.limits
    }

    /// Whether peg-out `id` was paid by an approved transaction.
    pub fn is_paid(&self, id: &[u8; 32]) -> bool {
        self.paid.contains(id)
    }

    /// Peg-out value approved within the window ending at `now_ms` (records from the "future", e.g. after the clock
    /// went back, count too).
    pub fn used_in_window(&self, now_ms: u64) -> Amount {
        let start = now_ms.saturating_sub(self.limits.window_ms);
        let sat = self
            .window
            .iter()
            .filter(|(t, _)| *t > start)
            .fold(0u64, |acc, (_, sat)| acc.saturating_add(*sat));
        Amount::from_sat(sat)
    }

    /// Records an approved (or overridden) transaction: its peg-outs are paid, its value counts in the window.
    pub fn record(
        &mut self,
        approval_txid: [u8; 32],
        sighashes: &[[u8; 32]],
        pegout_ids: &[[u8; 32]],
        pegout_sat: u64,
        unix_ms: u64,
    ) {
        self.paid.extend(pegout_ids.iter().copied());
        if !self.approved.contains_key(&approval_txid) {
            self.window.push_back((unix_ms, pegout_sat));
        }
        self.approved.insert(approval_txid, sighashes.to_vec());
    }

    /// Judges `req` at time `now_ms` for a peg-wallet key `our_key`; `override_rate_limit` lifts the rate limit only.
    pub fn assess(
        &self,
        req: &PegoutRequest,
        our_key: &secp256k1::PublicKey,
        now_ms: u64,
        override_rate_limit: bool,
    ) -> Result<PegoutApproval, PegoutRefusal> {
        let tx = &req.tx;
        if tx.input.is_empty() || tx.output.is_empty() {
            return Err(PegoutRefusal::Empty);
        }
        if tx.input.len() > MAX_TX_INPUTS || tx.output.len() > MAX_TX_OUTPUTS {
            return Err(PegoutRefusal::TooLarge {
                inputs: tx.input.len(),
                outputs: tx.output.len(),
            });
        }
        // Inputs: each a known federation coin holding our key, spent once.
        let our_key_bytes = our_key.serialize();
        let mut spent = HashSet::new();
        let mut coins = Vec::with_capacity(tx.input.len());
        for (index, input) in tx.input.iter().enumerate() {
            let outpoint = input.previous_output;
            let Some(coin) = req.coins.iter().find(|c| c.outpoint == outpoint) else {
                return Err(PegoutRefusal::UnknownInput { index, outpoint });
            };
            if !spent.insert(outpoint) {
                return Err(PegoutRefusal::DuplicateInput { index, outpoint });
            }
            if !script_has_push(&coin.witness_script, &our_key_bytes) {
                return Err(PegoutRefusal::NotOurCoin { index, outpoint });
            }
            coins.push(coin);
        }
        let sighashes = sighashes(tx, &coins)?;
        let txid = tx.compute_txid().to_byte_array();
        if self.approved.get(&txid) == Some(&sighashes) {
            return Ok(PegoutApproval {
                txid,
                sighashes,
                pegout_ids: Vec::new(),
                pegout_total: Amount::ZERO,
                fee: Amount::ZERO,
                overridden: false,
                resign: true,
            });
        }
        // Outputs: validated unpaid peg-outs (each at most once) or change.
        let mut used_ids: HashSet<[u8; 32]> = HashSet::new();
        let mut pegout_ids = Vec::new();
        let mut pegout_total = Amount::ZERO;
        let mut output_total = Amount::ZERO;
        for (index, output) in tx.output.iter().enumerate() {
            output_total = output_total.checked_add(output.value).ok_or(
                PegoutRefusal::OutputsExceedInputs {
                    inputs: Amount::ZERO,
                    outputs: Amount::MAX,
                },
            )?;
            let candidates: Vec<&ValidatedPegout> = req
                .validated_pegouts
                .iter()
                .filter(|p| p.script_pubkey == output.script_pubkey && p.amount == output.value)
                .collect();
            if let Some(p) = candidates
                .iter()
                .find(|p| !self.paid.contains(&p.id) && !used_ids.contains(&p.id))
            {
                used_ids.insert(p.id);
                pegout_ids.push(p.id);
                pegout_total = pegout_total.checked_add(p.amount).unwrap_or(Amount::MAX);
                continue;
            }
            if output.script_pubkey == req.change_script {
                continue;
            }
            if let Some(p) = candidates.first() {
                return Err(PegoutRefusal::PegoutAlreadyPaid { index, id: p.id });
            }
            return Err(PegoutRefusal::UnvalidatedOutput {
                index,
                script_pubkey: hex::encode(output.script_pubkey.as_bytes()),
                amount: output.value,
            });
        }
        // Fee.
        let input_total = coins
            .iter()
            .try_fold(Amount::ZERO, |acc, c| acc.checked_add(c.value))
            .ok_or(PegoutRefusal::OutputsExceedInputs {
                inputs: Amount::MAX,
                outputs: output_total,
            })?;
        let fee =
            input_total
                .checked_sub(output_total)
                .ok_or(PegoutRefusal::OutputsExceedInputs {
                    inputs: input_total,
                    outputs: output_total,
                })?;
        if fee > self.limits.max_fee {
            return Err(PegoutRefusal::FeeTooHigh {
                fee,
                max: self.limits.max_fee,
            });
        }
        let vsize = vsize_lower_bound(tx, &coins);
        let feerate = fee.to_sat().div_ceil(vsize.max(1));
        if feerate > self.limits.max_feerate_sat_per_vb {
            return Err(PegoutRefusal::FeerateTooHigh {
                feerate_sat_per_vb: feerate,
                max: self.limits.max_feerate_sat_per_vb,
            });
        }
        // Rate limit.
        let used = self.used_in_window(now_ms);
        let over = used
            .checked_add(pegout_total)
            .is_none_or(|total| total > self.limits.max_pegout_per_window);
        if over && !override_rate_limit {
            return Err(PegoutRefusal::RateLimit {
                requested: pegout_total,
                used,
                limit: self.limits.max_pegout_per_window,
                window_ms: self.limits.window_ms,
            });
        }
        Ok(PegoutApproval {
            txid,
            sighashes,
            pegout_ids,
            pegout_total,
            fee,
            overridden: over,
            resign: false,
        })
    }
}

/// True when `script` pushes exactly `data` somewhere.
fn script_has_push(script: &ScriptBuf, data: &[u8]) -> bool {
    script
        .instructions()
        .any(|i| matches!(i, Ok(Instruction::PushBytes(p)) if p.as_bytes() == data))
}

/// BIP143 P2WSH SIGHASH_ALL digests of every input.
fn sighashes(tx: &Transaction, coins: &[&FederationCoin]) -> Result<Vec<[u8; 32]>, PegoutRefusal> {
    let mut cache = SighashCache::new(tx);
    coins
        .iter()
        .enumerate()
        .map(|(index, coin)| {
            cache
                .p2wsh_signature_hash(
                    index,
                    &coin.witness_script,
                    coin.value,
                    EcdsaSighashType::All,
                )
                .map(|h| h.to_byte_array())
                .map_err(|e| PegoutRefusal::Sighash {
                    index,
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// A lower bound of the signed transaction's vsize: the unsigned weight, the segwit marker and flag, and each
/// input's witness script (signatures are not counted, so the fee rate is never underestimated).
fn vsize_lower_bound(tx: &Transaction, coins: &[&FederationCoin]) -> u64 {
    let witness: u64 = coins
        .iter()
        .map(|c| c.witness_script.len() as u64 + 1)
        .sum();
    (tx.weight().to_wu() + 2 + witness).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> PegoutLimits {
        PegoutLimits {
            max_fee: Amount::from_sat(10_000),
            max_feerate_sat_per_vb: 50,
            max_pegout_per_window: Amount::from_sat(100),
            window_ms: 1_000,
        }
    }

    #[test]
    fn the_window_rolls_and_counts_each_transaction_once() {
        let mut p = PegoutPolicy::new(limits());
        p.record([1; 32], &[], &[[9; 32]], 60, 10_000);
        p.record([1; 32], &[], &[[9; 32]], 60, 10_500); // the same tx again (re-sign): not counted twice
        p.record([2; 32], &[], &[[8; 32]], 30, 10_400);
        assert_eq!(p.used_in_window(10_999), Amount::from_sat(90));
        assert_eq!(p.used_in_window(11_000), Amount::from_sat(30)); // t=10_000 is out at exactly one window
        assert_eq!(p.used_in_window(11_400), Amount::ZERO);
        assert_eq!(p.used_in_window(0), Amount::from_sat(90)); // clock went back: future records still count
        assert!(p.is_paid(&[9; 32]) && p.is_paid(&[8; 32]) && !p.is_paid(&[7; 32]));
    }

    #[test]
    fn key_pushes_are_found_only_as_whole_pushes() {
        let key = [2u8; 33];
        let with = bitcoin::script::Builder::new()
            .push_int(1)
            .push_slice(key)
            .push_int(1)
            .into_script();
        assert!(script_has_push(&with, &key));
        let mut longer = [2u8; 34];
        longer[33] = 0;
        let without = bitcoin::script::Builder::new()
            .push_slice(longer)
            .into_script();
        assert!(!script_has_push(&without, &key));
    }
}
