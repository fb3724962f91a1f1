//! Absolute lock time (`IsFinalTx`) and BIP68 relative sequence locks (`CalculateSequenceLocks` /
//! `EvaluateSequenceLocks`), as Elements applies them (`src/consensus/tx_verify.cpp`).
//!
//! One deliberate difference: a time-based sequence lock counts from the **block time of the block that created
//! the spent coin** ([`Utxo::time`]), where Elements counts from the median time past of the block before it. We do
//! not keep a median time per block; the coin's block time is at least that median in a chain whose block times
//! increase (ours: the proposer stamps each block later than its parent), so locks here end no earlier than in
//! Elements. Absolute time locks and the end of sequence locks are compared with
//! [`LedgerContext::lock_time_cutoff`] (BIP113 median time past), as in Elements.

use super::{LedgerContext, TxRejection, Utxo};
use elements::Transaction;

/// Lock times below this are block heights, from it on Unix times (Bitcoin's `LOCKTIME_THRESHOLD`).
pub const LOCKTIME_THRESHOLD: u32 = 500_000_000;

/// Sequence bit that disables the relative lock of an input (BIP68).
pub const SEQUENCE_LOCKTIME_DISABLE_FLAG: u32 = 1 << 31;

/// Sequence bit that makes the relative lock time-based, in units of 512 seconds (BIP68).
pub const SEQUENCE_LOCKTIME_TYPE_FLAG: u32 = 1 << 22;

/// Bits of the sequence that hold the relative lock value (BIP68).
pub const SEQUENCE_LOCKTIME_MASK: u32 = 0x0000_ffff;

/// Time-based relative locks count in units of 2^9 = 512 seconds (BIP68).
pub const SEQUENCE_LOCKTIME_GRANULARITY: u32 = 9;

/// `IsFinalTx`: the transaction's lock time is 0, or below `height` (height locks) / `cutoff` (time locks), or every
/// input's sequence is final (0xffffffff). Otherwise "bad-txns-nonfinal".
pub fn check_final(tx: &Transaction, height: u32, cutoff: u32) -> Result<(), TxRejection> {
    let lock_time = tx.lock_time.to_consensus_u32();
    if lock_time == 0 {
        return Ok(());
    }
    let (limit, unit) = if lock_time < LOCKTIME_THRESHOLD {
        (height, "height")
    } else {
        (cutoff, "time")
    };
    if lock_time < limit {
        return Ok(());
    }
    if tx.input.iter().all(|input| input.sequence.is_final()) {
        return Ok(());
    }
    Err(TxRejection::NotFinal {
        reason: "bad-txns-nonfinal",
        detail: format!("lock time {lock_time} is not below the block's {unit} {limit} and not every input sequence is final"),
    })
}

/// BIP68 sequence locks for transactions of version >= 2 (the version read as a signed 32-bit number, as Elements
/// does). `coins[i]` is the coin input `i` spends, `None` for a peg-in input (no relative lock applies). A height
/// lock of n blocks on a coin created at height h is satisfied from height h + n; a time lock of n·512 s on a coin of
/// block time t from a block whose [`LedgerContext::lock_time_cutoff`] exceeds t + n·512 - 1. Failure:
/// "non-BIP68-final".
pub fn check_sequence_locks(
    ctx: &LedgerContext,
    tx: &Transaction,
    coins: &[Option<&Utxo>],
) -> Result<(), TxRejection> {
    if (tx.version as i32) < 2 {
        return Ok(());
    }
    let mut min_height: i64 = -1;
    let mut min_time: i64 = -1;
    let mut height_input = 0usize;
    let mut time_input = 0usize;
    for (index, input) in tx.input.iter().enumerate() {
        let Some(Some(coin)) = coins.get(index) else {
            continue;
        };
        let sequence = input.sequence.to_consensus_u32();
        if sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG != 0 {
            continue;
        }
        let value = i64::from(sequence & SEQUENCE_LOCKTIME_MASK);
        if sequence & SEQUENCE_LOCKTIME_TYPE_FLAG != 0 {
            let until = i64::from(coin.time) + (value << SEQUENCE_LOCKTIME_GRANULARITY) - 1;
            if until > min_time {
                min_time = until;
                time_input = index;
            }
        } else {
            let until = i64::from(coin.height) + value - 1;
            if until > min_height {
                min_height = until;
                height_input = index;
            }
        }
    }
    if min_height >= i64::from(ctx.height) {
        return Err(TxRejection::NotFinal {
            reason: "non-BIP68-final",
            detail: format!(
                "input {height_input} is height-locked until after height {min_height}; the block is at height {}",
                ctx.height
            ),
        });
    }
    if min_time >= i64::from(ctx.lock_time_cutoff) {
        return Err(TxRejection::NotFinal {
            reason: "non-BIP68-final",
            detail: format!(
                "input {time_input} is time-locked until after time {min_time}; the block's lock time cutoff is {}",
                ctx.lock_time_cutoff
            ),
        });
    }
    Ok(())
}
