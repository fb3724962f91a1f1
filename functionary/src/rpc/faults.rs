//! bitcoind/elementsd error codes of the ledger methods and the mapping of a transaction's rejection to them
//! (Elements master @7110a84: `rpc/protocol.h`, `node/transaction.cpp` `BroadcastTransaction`/`HandleATMPError`,
//! `rpc/util.cpp` `RPCErrorFromTransactionError`).

use chain::ledger::{RejectionClass, TxRejection};

use super::jsonrpc::RpcFault;

/// `RPC_DESERIALIZATION_ERROR`: bad hex, undecodable bytes.
pub const DESERIALIZATION_ERROR: i64 = -22;
/// `RPC_VERIFY_ERROR` (= `RPC_TRANSACTION_ERROR`): missing inputs, fee above `maxfeerate`, burn above
/// `maxburnamount`.
pub const VERIFY_ERROR: i64 = -25;
/// `RPC_VERIFY_REJECTED` (= `RPC_TRANSACTION_REJECTED`): refused by consensus or policy.
pub const VERIFY_REJECTED: i64 = -26;
/// `RPC_VERIFY_ALREADY_IN_UTXO_SET` (formerly `RPC_VERIFY_ALREADY_IN_CHAIN`).
pub const VERIFY_ALREADY_IN_UTXO_SET: i64 = -27;
/// `RPC_INTERNAL_ERROR`: "should only be used for genuine errors in bitcoind (for example datadir corruption)".
pub const INTERNAL_ERROR: i64 = -32603;

/// A block store failure (`-1`, as the chain methods report them).
pub fn store_fault(error: impl std::fmt::Display) -> RpcFault {
    tracing::error!(target: "rpc", error = %error, "block store error");
    RpcFault::misc(format!("block store error: {error}"))
}

/// Core's `TxValidationState::ToString`: `"reason, detail"` (or just the reason). Our rejections print
/// `"reason: detail"`; a rejection whose text does not start that way is shown whole.
pub fn rejection_text(rejection: &TxRejection) -> String {
    let reason = rejection.reason();
    let full = rejection.to_string();
    match full
        .strip_prefix(reason)
        .and_then(|rest| rest.strip_prefix(':'))
    {
        Some(detail) if !detail.trim().is_empty() => format!("{reason}, {}", detail.trim()),
        Some(_) => reason.to_string(),
        None if full == reason => full,
        None => full,
    }
}

/// The RPC error of a refused transaction, by [`TxRejection::class`]:
/// - missing inputs → `-25` (`TransactionError::MISSING_INPUTS` → `RPC_TRANSACTION_ERROR`);
/// - invalid, conflict → `-26` (`MEMPOOL_REJECTED` → `RPC_TRANSACTION_REJECTED`);
/// - already known → `-27`;
/// - internal (the UTXO set could not be read) → `-32603` `RPC_INTERNAL_ERROR`: elementsd has no such case (it
///   aborts when its coins database cannot be read), and protocol.h reserves `-32603` for "genuine errors in
///   bitcoind (for example datadir corruption)", which is what a failed UTXO read is; it also keeps the failure
///   apart from `-25`/`-26`, which tell the client its transaction is bad.
///
/// The message is [`rejection_text`] (`"reason, detail"`), as elementsd's `err_string`.
pub fn rejection_fault(rejection: &TxRejection) -> RpcFault {
    let code = match rejection.class() {
        RejectionClass::MissingInputs => VERIFY_ERROR,
        RejectionClass::Invalid | RejectionClass::Conflict => VERIFY_REJECTED,
        RejectionClass::AlreadyKnown => VERIFY_ALREADY_IN_UTXO_SET,
        RejectionClass::Internal => {
            tracing::error!(target: "rpc", error = %rejection, "transaction check could not read the UTXO set");
            INTERNAL_ERROR
        }
    };
    RpcFault::new(code, rejection_text(rejection))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_text_is_reason_comma_detail() {
        let missing = TxRejection::MissingInput {
            input: 0,
            outpoint: "ab:1".into(),
        };
        assert_eq!(
            rejection_text(&missing),
            "bad-txns-inputs-missingorspent, input 0 spends ab:1, which is not in the UTXO set"
        );
        let known = TxRejection::AlreadyKnown {
            reason: "txn-already-in-mempool",
        };
        assert_eq!(rejection_text(&known), "txn-already-in-mempool");
        let script = TxRejection::Script {
            input: 1,
            detail: "bad signature".into(),
        };
        assert_eq!(
            rejection_text(&script),
            "mandatory-script-verify-flag-failed (input 1): bad signature"
        );
        assert_eq!(rejection_fault(&missing).code, -25);
        assert_eq!(rejection_fault(&script).code, -26);
        assert_eq!(rejection_fault(&known).code, -27);
    }
}
