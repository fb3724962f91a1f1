//! Why a transaction is refused. Each variant maps to the reject reason string Elements/Bitcoin Core uses (so RPC
//! users see familiar messages) and to the class of error the RPC layer turns into an error code.

/// The RPC error class of a rejection (elementsd's codes: -25 verify error, -26 verify rejected, -27 already in
/// chain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionClass {
    /// Inputs missing or already spent, unknown prevouts (RPC_VERIFY_ERROR, -25).
    MissingInputs,
    /// Consensus or policy rule broken (RPC_VERIFY_REJECTED, -26).
    Invalid,
    /// Conflicts with a transaction in the mempool (-26, "txn-mempool-conflict").
    Conflict,
    /// Already in the chain or mempool (RPC_VERIFY_ALREADY_IN_CHAIN, -27).
    AlreadyKnown,
    /// The UTXO set could not be read: not the transaction's fault (RPC_INTERNAL_ERROR, -32603).
    Internal,
}

/// Why a transaction is invalid. Messages say what was wrong and where (input/output index).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxRejection {
    /// A structural rule (empty inputs/outputs, size, duplicate inputs, null prevout, coinbase shape, value range,
    /// unsupported feature such as a peg-in). `reason` is Elements' reject string (e.g. "bad-txns-vin-empty").
    #[error("{reason}: {detail}")]
    Structure {
        /// Elements' reject reason string.
        reason: &'static str,
        /// What exactly is wrong.
        detail: String,
    },
    /// An input's previous output does not exist or is spent.
    #[error("bad-txns-inputs-missingorspent: input {input} spends {outpoint}, which is not in the UTXO set")]
    MissingInput {
        /// Input index.
        input: usize,
        /// The outpoint, `txid:vout`.
        outpoint: String,
    },
    /// Two transactions (in a block, or a transaction and the mempool) spend the same output.
    #[error("{reason}: input {input} spends {outpoint}, already spent by {spent_by}")]
    DoubleSpend {
        /// "bad-txns-inputs-missingorspent" in blocks, "txn-mempool-conflict" against the mempool.
        reason: &'static str,
        /// Input index.
        input: usize,
        /// The outpoint, `txid:vout`.
        outpoint: String,
        /// Txid of the other spender.
        spent_by: String,
    },
    /// Value/asset rules: amounts out of range, inputs and outputs do not balance, a rangeproof or surjection
    /// proof is missing or invalid, fee not in the policy asset.
    #[error("{reason}: {detail}")]
    Amounts {
        /// Elements' reject reason (e.g. "bad-txns-in-ne-out", "bad-txns-fee-outofrange").
        reason: &'static str,
        /// What exactly is wrong.
        detail: String,
    },
    /// Issuance or reissuance rules.
    #[error("{reason}: input {input}: {detail}")]
    Issuance {
        /// Elements' reject reason (e.g. "bad-txns-issuance-amount").
        reason: &'static str,
        /// Input index.
        input: usize,
        /// What exactly is wrong.
        detail: String,
    },
    /// Lock time or sequence lock not satisfied yet.
    #[error("{reason}: {detail}")]
    NotFinal {
        /// "bad-txns-nonfinal" or "non-BIP68-final".
        reason: &'static str,
        /// What exactly is wrong.
        detail: String,
    },
    /// Coinbase output spent before maturity.
    #[error("bad-txns-premature-spend-of-coinbase: input {input} spends a coinbase output of height {coin_height} at height {height}")]
    ImmatureCoinbase {
        /// Input index.
        input: usize,
        /// Height of the coinbase.
        coin_height: u32,
        /// Height of the spending block.
        height: u32,
    },
    /// An input's script did not verify.
    #[error("mandatory-script-verify-flag-failed (input {input}): {detail}")]
    Script {
        /// Input index.
        input: usize,
        /// What the interpreter reported.
        detail: String,
    },
    /// Fee below the relay minimum (mempool only).
    #[error("min relay fee not met: fee {fee} sat < {required} sat for {vsize} vbytes")]
    FeeTooLow {
        /// Fee paid, in the policy asset.
        fee: u64,
        /// Fee required.
        required: u64,
        /// Virtual size.
        vsize: usize,
    },
    /// Mempool policy (size cap, too many ancestors, non-standard form).
    #[error("{reason}: {detail}")]
    Policy {
        /// Reject reason (e.g. "mempool full", "too-long-mempool-chain").
        reason: &'static str,
        /// What exactly is wrong.
        detail: String,
    },
    /// Already in the mempool or the chain.
    #[error("{reason}")]
    AlreadyKnown {
        /// "txn-already-in-mempool" or "txn-already-known".
        reason: &'static str,
    },
    /// The UTXO set could not be read.
    #[error(transparent)]
    Lookup(#[from] super::UtxoLookupError),
}

impl TxRejection {
    /// The RPC error class (see [`RejectionClass`]).
    pub fn class(&self) -> RejectionClass {
        match self {
            TxRejection::MissingInput { .. } => RejectionClass::MissingInputs,
            TxRejection::DoubleSpend { reason, .. } if *reason == "txn-mempool-conflict" => {
                RejectionClass::Conflict
            }
            TxRejection::AlreadyKnown { .. } => RejectionClass::AlreadyKnown,
            TxRejection::Lookup(_) => RejectionClass::Internal,
            _ => RejectionClass::Invalid,
        }
    }

    /// Elements' short reject reason string (the part before the colon in [`std::fmt::Display`]).
    pub fn reason(&self) -> &'static str {
        match self {
            TxRejection::Structure { reason, .. }
            | TxRejection::DoubleSpend { reason, .. }
            | TxRejection::Amounts { reason, .. }
            | TxRejection::Issuance { reason, .. }
            | TxRejection::NotFinal { reason, .. }
            | TxRejection::Policy { reason, .. }
            | TxRejection::AlreadyKnown { reason } => reason,
            TxRejection::MissingInput { .. } => "bad-txns-inputs-missingorspent",
            TxRejection::ImmatureCoinbase { .. } => "bad-txns-premature-spend-of-coinbase",
            TxRejection::Script { .. } => "mandatory-script-verify-flag-failed",
            TxRejection::FeeTooLow { .. } => "min relay fee not met",
            TxRejection::Lookup(_) => "utxo-lookup-failed",
        }
    }
}
