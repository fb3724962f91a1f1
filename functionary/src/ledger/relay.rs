//! Transaction relay between members, on the same direct broadcast streams as consensus messages.
//!
//! A relay frame is the byte [`TX_RELAY_TAG`] followed by a postcard `Vec<Vec<u8>>` of consensus-encoded
//! transactions. The tag can never start a consensus message (those start with their wire version, a small number),
//! so the daemon tells the two apart by the first byte. Every member sends its newly accepted transactions to every
//! other member directly; nothing is re-relayed (a member that missed one still has the sender propose it).
//! Frames are bounded ([`MAX_RELAY_TRANSACTIONS`], [`MAX_RELAY_BYTES`]) and sent at most every
//! [`RELAY_INTERVAL_MS`], so relay cannot crowd consensus messages out of the bounded send queues.

use elements::Transaction;

/// First byte of a relay frame.
pub const TX_RELAY_TAG: u8 = 0xF1;
// A consensus message starts with its wire version: the tag must never be one.
const _: () = assert!(TX_RELAY_TAG > blocksigner::WIRE_VERSION);

/// Most transactions in one frame.
pub const MAX_RELAY_TRANSACTIONS: usize = 1_000;
/// Most transaction bytes in one frame.
pub const MAX_RELAY_BYTES: usize = 1024 * 1024;
/// Least time between two relay frames of one member.
pub const RELAY_INTERVAL_MS: u64 = 100;

/// Why a relay frame was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RelayDecodeError {
    /// Not a relay frame.
    #[error("not a transaction relay frame")]
    NotRelay,
    /// The list does not decode.
    #[error("transaction relay frame does not decode: {0}")]
    Malformed(String),
    /// Too many transactions or bytes.
    #[error("transaction relay frame too large: {count} transactions, {bytes} bytes")]
    TooLarge {
        /// Transactions.
        count: usize,
        /// Bytes.
        bytes: usize,
    },
    /// A transaction does not decode.
    #[error("transaction {index} of the relay frame does not decode: {reason}")]
    BadTransaction {
        /// Its position.
        index: usize,
        /// The decoder's message.
        reason: String,
    },
}

/// Whether `bytes` is a relay frame.
pub fn is_relay_frame(bytes: &[u8]) -> bool {
    bytes.first() == Some(&TX_RELAY_TAG)
}

/// Encodes transactions into one frame (the caller keeps batches within the limits).
pub fn encode_relay_frame(transactions: &[Transaction]) -> Vec<u8> {
    let raw: Vec<Vec<u8>> = transactions
        .iter()
        .map(elements::encode::serialize)
        .collect();
    let mut frame = vec![TX_RELAY_TAG];
    // A Vec of byte vectors always encodes.
    frame.extend(postcard::to_allocvec(&raw).unwrap_or_default());
    frame
}

/// Decodes a relay frame; never panics on hostile bytes.
pub fn decode_relay_frame(bytes: &[u8]) -> Result<Vec<Transaction>, RelayDecodeError> {
    let Some((&TX_RELAY_TAG, body)) = bytes.split_first() else {
        return Err(RelayDecodeError::NotRelay);
    };
    if body.len() > MAX_RELAY_BYTES + 16 * MAX_RELAY_TRANSACTIONS {
        return Err(RelayDecodeError::TooLarge {
            count: 0,
            bytes: body.len(),
        });
    }
    let raw: Vec<Vec<u8>> =
        postcard::from_bytes(body).map_err(|e| RelayDecodeError::Malformed(e.to_string()))?;
    let bytes: usize = raw.iter().map(Vec::len).sum();
    if raw.len() > MAX_RELAY_TRANSACTIONS || bytes > MAX_RELAY_BYTES {
        return Err(RelayDecodeError::TooLarge {
            count: raw.len(),
            bytes,
        });
    }
    raw.iter()
        .enumerate()
        .map(|(index, tx)| {
            elements::encode::deserialize(tx).map_err(|e| RelayDecodeError::BadTransaction {
                index,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Splits queued transactions into frames within the limits.
pub fn frames(transactions: Vec<Transaction>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    for tx in transactions {
        let size = tx.size();
        if size > MAX_RELAY_BYTES {
            continue;
        }
        if !batch.is_empty()
            && (batch.len() == MAX_RELAY_TRANSACTIONS || bytes + size > MAX_RELAY_BYTES)
        {
            frames.push(encode_relay_frame(&batch));
            batch.clear();
            bytes = 0;
        }
        bytes += size;
        batch.push(tx);
    }
    if !batch.is_empty() {
        frames.push(encode_relay_frame(&batch));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_frames_never_panic_and_are_refused() {
        assert_eq!(decode_relay_frame(&[]), Err(RelayDecodeError::NotRelay));
        assert_eq!(
            decode_relay_frame(&[3, 1, 2]),
            Err(RelayDecodeError::NotRelay)
        );
        assert!(matches!(
            decode_relay_frame(&[TX_RELAY_TAG, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(RelayDecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_relay_frame(&[TX_RELAY_TAG, 1, 3, 1, 2, 3]),
            Err(RelayDecodeError::BadTransaction { index: 0, .. })
        ));
        for len in 0..64u8 {
            let mut frame = vec![TX_RELAY_TAG];
            frame.extend((0..len).map(|i| i.wrapping_mul(37)));
            let _ = decode_relay_frame(&frame);
        }
    }

    #[test]
    fn consensus_messages_are_never_relay_frames() {
        assert!(!is_relay_frame(&[blocksigner::WIRE_VERSION]));
    }
}
