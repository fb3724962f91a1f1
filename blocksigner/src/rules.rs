//! # Block-signing protocol, version 2
//!
//! This module is the single place where the consensus rules are written down (as these doc comments) and
//! decided (as the small pure functions below). [`crate::Consensus`] only moves data between them and the
//! wire. `docs/PROTOCOL.md` is derived from this text.
//!
//! ## Notation
//!
//! * `n` members, indexed by the position of their block-signing key in `FederationParams::sorted_keys()`;
//!   `m` = `FederationParams::threshold()`. Safety below needs `m > n/2` (any two sets of `m` members
//!   overlap in at least one member).
//! * `tip` = the last final block a member has stored; `h = tip.height + 1` is the height being decided.
//! * Every member has two keys: a block-signing key (secp256k1, in the HSM) and a p2p identity key
//!   (ed25519). The transport only authenticates that a message came from *some* member (its gossip author
//!   is unsigned); `from` is the member index the transport reports. Every rule below that attributes a
//!   message to a member checks that member's own signature in the message (see "Properties").
//!
//! ## Slots and proposers
//!
//! * R1. Time is cut into slots of `interval_ms`: `round = now_ms / interval_ms` ([`round_at`]), using each
//!   member's wall clock. Clocks are assumed to agree within one slot.
//! * R2. The proposer of round `r` is member `r mod n` ([`proposer_of`]). An offline proposer costs its
//!   slot: nobody proposes in that round and the next round's proposer tries.
//! * R3. On every tick whose round differs from the previous tick's, a member broadcasts
//!   `Status { height: tip.height, tip_hash }` (so lagging peers notice) and, if it already holds its own
//!   block signature for height `h`, re-broadcasts that `BlockSignature` (so dropped signatures are repaired).
//! * R4. When a member is the proposer of the current round and has not proposed in this round yet (at most
//!   one proposal per slot, even if the tip advances within the slot):
//!   - if it is LOCKED on a block `X` at `h` (see R9) it re-proposes `X` unchanged (if it does not hold `X`,
//!     for example after a restart, it skips the slot);
//!   - otherwise it builds `chain::build_block(params, tip, time)` with
//!     `time = max(tip.time, round_start_ms / 1000)` ([`proposal_time`]).
//!
//!   It broadcasts `Proposal { height: h, round, block, proposed_at_ms, signature }`, where `signature` is
//!   ed25519 by its p2p key over [`proposal_signing_bytes`]:
//!   `"functionary/proposal/v1" || genesis_hash(32) || height(u32 LE) || round(u64 LE) || block_hash(32) ||
//!   proposed_at_ms(u64 LE)` (a re-proposal of a locked block is signed afresh for the new round), and
//!   processes it itself as if it had received it.
//!
//! ## Proposals
//!
//! * R5. A proposal from `from` is accepted only if:
//!   `from == proposer_of(round)`; `|round - current_round| <= 1`
//!   ([`round_in_window`], the clock-skew tolerance); the signature verifies (strict ed25519) under
//!   `p2p_keys[proposer_of(round)]` (a bad or foreign signature, or one over another height, round, block or
//!   `proposed_at_ms`, is rejected as misbehaviour, `BadProposalSignature`); `height == h` (a higher height means the sender is ahead: R14, R16; a lower height is stale
//!   and silently ignored); the block's height equals the message height; the block's parent is our tip;
//!   `chain::validate_proposal(params, tip, block)` passes; and the proposer has not already proposed a
//!   *different* block in the same round (equivocation is rejected; an identical duplicate is ignored). An
//!   accepted block is kept, by hash, until the height is decided (at most [`MAX_BLOCKS_PER_HEIGHT`]; the
//!   oldest unlocked one is dropped first).
//!
//! ## Precommits
//!
//! * R6. A member precommits block `X` in round `r` at `h` ([`may_precommit`]) iff it holds `X` from an
//!   accepted proposal of round `r`, and
//!   - it is not locked, or it is locked on `X`; and
//!   - it has not precommitted in any round higher than `r` at `h`; and
//!   - it has not precommitted a different block in round `r`.
//!
//!   It broadcasts `Precommit { height, round, block_hash, member, signature }` where `signature` is
//!   ed25519 by its p2p key over [`precommit_signing_bytes`]:
//!   `"functionary/precommit/v1" || genesis_hash(32) || height(u32 LE) || round(u64 LE) || block_hash(32)`,
//!   and counts it itself.
//! * R7. A received precommit counts only if `member < n`, `member == from`, the signature verifies (strict
//!   ed25519) under `p2p_keys[member]`, `height == h`, and its round is not more than one round in the
//!   future nor older than [`VOTE_WINDOW_ROUNDS`] rounds. Precommits are counted per `(round, block_hash)`
//!   as sets of distinct members; a member's second precommit for a different block in the same round is
//!   rejected as equivocation and not counted.
//! * R8. A precommit certificate for `X` is `m` counted precommits for `X` in one round.
//!
//! ## Block signatures
//!
//! * R9. When a member holds a certificate for `X` and holds block `X`, it asks its signer for a block
//!   signature (`SignBlock { h, X }`), once per height (again only after a signer failure, R10), provided
//!   [`may_request_signature`]:
//!   it has not signed, nor asked to sign, a different block at `h`, nor anything at a higher height. From
//!   that moment it is LOCKED on `X` for height `h`: it precommits only `X` and re-proposes only `X`.
//!   The signer itself (HSM guard with a durable journal) independently refuses a second hash at a height and
//!   any lower height; a restarted member is given the journal's last `(height, hash)` and starts locked on it
//!   when that height is `h`, even if it does not hold that block (then a re-proposal of the same hash by
//!   someone else is the only thing it precommits).
//! * R10. If the signer refuses (`SignFailed`), the member stays locked; a later certificate for the same
//!   block may retry.
//! * R11. A signature returned by the signer is broadcast as `BlockSignature { height, block_hash, member,
//!   signature }` (DER + 0x01) and counted. A received `BlockSignature` counts only if `member < n`,
//!   `member == from`, `height == h`, and `chain::verify_member_signature` accepts it against the header of
//!   the block with that hash. Signatures for a block not yet held are buffered (bounded,
//!   [`MAX_PENDING_SIGNATURES_PER_MEMBER`] per member) and checked when the block arrives.
//!
//! ## Finality
//!
//! * R12. With `m` valid signatures from distinct members on `X` (and `X` held), a member assembles the
//!   signblock witness (`chain::attach_signatures`, signatures in key order), checks the result with
//!   `chain::validate_final_block`, stores it, advances its tip to `X` and clears all per-height state (lock,
//!   votes, proposals, signatures). It broadcasts `FinalBlock` only if it is the proposer of the round in
//!   which it first accepted `X` ([`broadcasts_final_block`]: `proposer_of(round) == me`); the others only
//!   store it. (One announcement per block instead of `n`; members that hold the same block from different
//!   first rounds may both announce it, and if that proposer did not finalise from signatures nobody does.)
//!   Members that missed signatures catch up from that `FinalBlock` or through `Status` -> fetch (R14).
//! * R13. A received `FinalBlock` at height `h` that passes `chain::validate_final_block(params, tip, block)`
//!   is stored and becomes the tip (it is not re-broadcast: gossip relays it). A `FinalBlock` above `h` means
//!   the sender is ahead (R14). One at our tip height with another hash is rejected as a conflict.
//!   Members may store the same block with different (equally valid) witnesses when they assembled it from
//!   different sets of `m` signatures: a block's identity is its hash, which does not cover the witness.
//!
//! ## Catch-up
//!
//! * R14. Evidence that a peer is ahead (a `Status` with `height > tip.height`, or any consensus message for a
//!   height above `h`) triggers `FetchBlocks { from: that peer, start_height: h, count }` with
//!   `count <= FETCH_BATCH` ([`fetch_count`]), asking the peer that claimed the highest tip. At most one fetch
//!   is outstanding; another is allowed when the answer arrives or after [`FETCH_TIMEOUT_INTERVALS`] slots
//!   (re-checked at every new slot). A peer whose answer made no progress is forgotten as "ahead" until it
//!   reports again. A `Status` at our tip height with another hash is reported (`ConflictingTip`).
//! * R15. Fetched blocks are checked in order with `chain::validate_final_block` against the running tip; the
//!   valid prefix is stored, the first invalid block stops the batch and is reported as the peer's fault.
//!   Blocks at or below our tip are skipped (one at our tip height with a different hash is reported as a
//!   conflict). If the batch made progress and the peer is still known to be ahead, the next batch is fetched.
//! * R16. Messages for height `h + 1` that arrive before `h` is final are buffered (bounded,
//!   [`MAX_FUTURE_MESSAGES_PER_MEMBER`] per member) and replayed once the tip advances.
//!
//! ## Messages and encoding
//!
//! * `Proposal { height, round, block (unsigned), proposed_at_ms, signature: [u8; 64] }`, `Precommit { height, round, block_hash,
//!   member: u16, signature: [u8; 64] }`, `BlockSignature { height, block_hash, member: u16, signature:
//!   DER + 0x01 }`, `FinalBlock(block with witness)`, `Status { height, tip_hash }`.
//! * Bytes: one version byte (`2`), then a postcard envelope (variant tag, fields in the order above, hashes as
//!   32 raw bytes in internal byte order, the proposal and precommit signatures as two 32-byte halves each); blocks inside are
//!   length-prefixed `elements` consensus encodings. At most [`crate::MAX_MESSAGE_BYTES`]; decoding rejects
//!   trailing bytes, undecodable blocks and block signatures longer than 73 bytes (see `codec.rs`).
//!
//! ## Failure handling
//!
//! * R17. Anything invalid is ignored and reported (`Rejected { from, reason }`); nothing is fatal and
//!   nothing panics.
//!
//! ## Properties and known limitations
//!
//! * Safety (no two different final blocks at one height) rests on R9 plus `m > n/2`: a final block needs `m`
//!   signatures, every honest signer signs at most one hash per height, so two final blocks at one height
//!   need `2m - n >= 1` members to sign twice. It does not depend on clocks or on the network.
//! * Authentication: the transport authenticates only that a message came from a member; each message's author
//!   is proven by its own signature (proposal, precommit: ed25519 p2p key; block signature: block key; final
//!   block: m-of-n proof; status: unauthenticated, only ever triggers a fetch that is verified).
//! * Liveness needs `m` members online, clocks within about one slot, and messages of a round delivered within
//!   the round.
//! * **Known limitation (split locks):** locks are never released. If members lock on different blocks at
//!   the same height (possible when precommits of two rounds are delivered unevenly) and neither block can
//!   still gather `m` signatures, the height stalls until an operator intervenes. In the simulator with 20%
//!   message loss, 10% duplication and up to 400 ms of jitter on 1 s slots (3-of-4), 2 of 50 runs ended in
//!   such a 2-2 split; every other run resumed once the network healed. Issue 3 replaces R6/R9 with
//!   Tendermint-style lock-change rules (polka-based unlocking); these rules are isolated here so they can
//!   change without touching the state machine's plumbing.

/// Domain separator of precommit signatures (R6).
pub const PRECOMMIT_DOMAIN: &[u8] = b"functionary/precommit/v1";

/// Domain separator of proposal signatures (R4).
pub const PROPOSAL_DOMAIN: &[u8] = b"functionary/proposal/v1";

/// Accepted distance between a proposal's round and our current round (R5).
pub const CLOCK_SKEW_ROUNDS: u64 = 1;

/// How many past rounds of precommits are kept at a height (R7).
pub const VOTE_WINDOW_ROUNDS: u64 = 8;

/// Largest number of blocks one fetch asks for (R14).
pub const FETCH_BATCH: u32 = 500;

/// Slots after which an unanswered fetch no longer blocks a new one (R14).
pub const FETCH_TIMEOUT_INTERVALS: u64 = 3;

/// Buffered block signatures (for blocks not yet held) kept per member (R11).
pub const MAX_PENDING_SIGNATURES_PER_MEMBER: usize = 4;

/// Buffered next-height messages kept per member (R16).
pub const MAX_FUTURE_MESSAGES_PER_MEMBER: usize = 8;

/// Blocks kept per height (accepted proposals); the oldest unlocked one is dropped beyond this.
pub const MAX_BLOCKS_PER_HEIGHT: usize = 32;

/// The slot number at wall-clock time `now_ms` (R1).
pub fn round_at(now_ms: u64, interval_ms: u64) -> u64 {
    now_ms / interval_ms.max(1)
}

/// When round `round` starts, in unix milliseconds (saturating).
pub fn round_start_ms(round: u64, interval_ms: u64) -> u64 {
    round.saturating_mul(interval_ms.max(1))
}

/// The member that proposes in round `round` among `member_count` members (R2).
pub fn proposer_of(round: u64, member_count: usize) -> usize {
    let n = u64::try_from(member_count.max(1)).unwrap_or(u64::MAX);
    // The remainder is < member_count, so it fits in usize.
    usize::try_from(round % n).unwrap_or(0)
}

/// The block time a proposer uses in round `round` (R4): never before the parent's time.
pub fn proposal_time(tip_time: u32, round_start_ms: u64) -> u32 {
    let slot_seconds = u32::try_from(round_start_ms / 1000).unwrap_or(u32::MAX);
    tip_time.max(slot_seconds)
}

/// Whether a proposal of round `round` is close enough to our current round (R5).
pub fn round_in_window(round: u64, current_round: u64) -> bool {
    round.abs_diff(current_round) <= CLOCK_SKEW_ROUNDS
}

/// Whether a precommit of round `round` is worth counting at our current round (R7).
pub fn precommit_round_in_window(round: u64, current_round: u64) -> bool {
    round <= current_round.saturating_add(CLOCK_SKEW_ROUNDS)
        && round.saturating_add(VOTE_WINDOW_ROUNDS) >= current_round
}

/// What a member has already done at the height being decided, as far as the precommit rule cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrecommitHistory<'a> {
    /// The block the member is locked on at this height (R9), if any.
    pub locked: Option<&'a elements::BlockHash>,
    /// The highest round in which the member precommitted at this height, if any.
    pub highest_round: Option<u64>,
    /// The block the member precommitted in the round being considered, if any.
    pub in_this_round: Option<&'a elements::BlockHash>,
}

/// The precommit rule R6: may a member with `history` precommit `block` in `round`?
///
/// Returns false also when the member already precommitted exactly this (round, block): a precommit is
/// sent once.
pub fn may_precommit(
    history: PrecommitHistory<'_>,
    round: u64,
    block: &elements::BlockHash,
) -> bool {
    let lock_allows = history.locked.is_none_or(|locked| locked == block);
    let not_past_round = history.highest_round.is_none_or(|highest| highest <= round);
    let not_yet_in_round = history.in_this_round.is_none();
    lock_allows && not_past_round && not_yet_in_round
}

/// Why a member may not ask its signer for a signature (R9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignRefusal {
    /// The member signed (or asked to sign) another block at this height.
    OtherBlockAtHeight,
    /// The member signed (or asked to sign) something at a higher height.
    HigherHeightSigned,
}

/// The signing rule R9: given the last `(height, hash)` the member signed or asked to sign, may it ask for a
/// signature on `block` at `height`?
pub fn may_request_signature(
    last_signed: Option<&(u32, elements::BlockHash)>,
    height: u32,
    block: &elements::BlockHash,
) -> Result<(), SignRefusal> {
    match last_signed {
        None => Ok(()),
        Some((signed_height, _)) if *signed_height < height => Ok(()),
        Some((signed_height, signed_hash)) if *signed_height == height => {
            if signed_hash == block {
                Ok(())
            } else {
                Err(SignRefusal::OtherBlockAtHeight)
            }
        }
        Some(_) => Err(SignRefusal::HigherHeightSigned),
    }
}

/// The bytes a precommit signature covers (R6).
pub fn precommit_signing_bytes(
    genesis_hash: &elements::BlockHash,
    height: u32,
    round: u64,
    block_hash: &elements::BlockHash,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(PRECOMMIT_DOMAIN.len() + 32 + 4 + 8 + 32);
    bytes.extend_from_slice(PRECOMMIT_DOMAIN);
    bytes.extend_from_slice(genesis_hash.as_byte_array());
    bytes.extend_from_slice(&height.to_le_bytes());
    bytes.extend_from_slice(&round.to_le_bytes());
    bytes.extend_from_slice(block_hash.as_byte_array());
    bytes
}

/// The bytes a proposal signature covers (R4).
pub fn proposal_signing_bytes(
    genesis_hash: &elements::BlockHash,
    height: u32,
    round: u64,
    block_hash: &elements::BlockHash,
    proposed_at_ms: u64,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(PROPOSAL_DOMAIN.len() + 32 + 4 + 8 + 32 + 8);
    bytes.extend_from_slice(PROPOSAL_DOMAIN);
    bytes.extend_from_slice(genesis_hash.as_byte_array());
    bytes.extend_from_slice(&height.to_le_bytes());
    bytes.extend_from_slice(&round.to_le_bytes());
    bytes.extend_from_slice(block_hash.as_byte_array());
    bytes.extend_from_slice(&proposed_at_ms.to_le_bytes());
    bytes
}

/// Whether a member that finalised a block from its own collected signatures broadcasts it (R12): only the
/// proposer of the round in which it accepted the block.
pub fn broadcasts_final_block(me: usize, accepted_round: u64, member_count: usize) -> bool {
    proposer_of(accepted_round, member_count) == me
}

/// How many blocks to ask for when our tip is at `tip_height` and a peer is at `peer_height` (R14).
pub fn fetch_count(tip_height: u32, peer_height: u32) -> u32 {
    peer_height.saturating_sub(tip_height).clamp(1, FETCH_BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(byte: u8) -> elements::BlockHash {
        elements::BlockHash::from_byte_array([byte; 32])
    }

    #[test]
    fn rounds_and_proposers() {
        assert_eq!(round_at(0, 1000), 0);
        assert_eq!(round_at(1999, 1000), 1);
        assert_eq!(round_at(5, 0), 5, "interval 0 is treated as 1");
        assert_eq!(proposer_of(7, 4), 3);
        assert_eq!(proposer_of(8, 4), 0);
        assert_eq!(proposer_of(8, 0), 0);
        assert_eq!(round_start_ms(3, 1000), 3000);
        assert_eq!(round_start_ms(u64::MAX, 1000), u64::MAX);
    }

    #[test]
    fn proposal_time_never_before_parent() {
        assert_eq!(proposal_time(100, 50_000), 100);
        assert_eq!(proposal_time(100, 200_999), 200);
        assert_eq!(proposal_time(0, u64::MAX), u32::MAX);
    }

    #[test]
    fn round_windows() {
        assert!(round_in_window(10, 10));
        assert!(round_in_window(9, 10));
        assert!(round_in_window(11, 10));
        assert!(!round_in_window(12, 10));
        assert!(!round_in_window(8, 10));
        assert!(precommit_round_in_window(11, 10));
        assert!(!precommit_round_in_window(12, 10));
        assert!(precommit_round_in_window(2, 10));
        assert!(!precommit_round_in_window(1, 10));
    }

    #[test]
    fn precommit_rule() {
        let x = hash(1);
        let y = hash(2);
        let fresh = PrecommitHistory {
            locked: None,
            highest_round: None,
            in_this_round: None,
        };
        assert!(may_precommit(fresh, 5, &x));
        let locked = PrecommitHistory {
            locked: Some(&x),
            ..fresh
        };
        assert!(may_precommit(locked, 5, &x));
        assert!(!may_precommit(locked, 5, &y), "locked on x: only x");
        let later = PrecommitHistory {
            highest_round: Some(6),
            ..fresh
        };
        assert!(!may_precommit(later, 5, &x), "never back to an older round");
        let same_round = PrecommitHistory {
            highest_round: Some(5),
            in_this_round: Some(&x),
            ..fresh
        };
        assert!(!may_precommit(same_round, 5, &y), "one block per round");
        assert!(
            !may_precommit(same_round, 5, &x),
            "a precommit is sent once"
        );
        let next_round = PrecommitHistory {
            highest_round: Some(5),
            ..fresh
        };
        assert!(
            may_precommit(next_round, 6, &y),
            "unlocked members may move on in a new round"
        );
    }

    #[test]
    fn signing_rule() {
        let x = hash(1);
        let y = hash(2);
        assert_eq!(may_request_signature(None, 5, &x), Ok(()));
        assert_eq!(may_request_signature(Some(&(4, y)), 5, &x), Ok(()));
        assert_eq!(may_request_signature(Some(&(5, x)), 5, &x), Ok(()));
        assert_eq!(
            may_request_signature(Some(&(5, y)), 5, &x),
            Err(SignRefusal::OtherBlockAtHeight)
        );
        assert_eq!(
            may_request_signature(Some(&(6, x)), 5, &x),
            Err(SignRefusal::HigherHeightSigned)
        );
    }

    #[test]
    fn precommit_bytes_layout() {
        let bytes = precommit_signing_bytes(&hash(9), 0x0102_0304, 0x0a0b, &hash(7));
        assert_eq!(bytes.len(), 24 + 32 + 4 + 8 + 32);
        assert_eq!(&bytes[..24], PRECOMMIT_DOMAIN);
        assert_eq!(&bytes[24..56], &[9u8; 32]);
        assert_eq!(&bytes[56..60], &[4, 3, 2, 1]);
        assert_eq!(&bytes[60..68], &[0x0b, 0x0a, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[68..], &[7u8; 32]);
    }

    #[test]
    fn proposal_bytes_layout() {
        let bytes = proposal_signing_bytes(&hash(9), 0x0102_0304, 0x0a0b, &hash(7), 0x0c0d);
        assert_eq!(bytes.len(), 23 + 32 + 4 + 8 + 32 + 8);
        assert_eq!(&bytes[..23], PROPOSAL_DOMAIN);
        assert_eq!(&bytes[23..55], &[9u8; 32]);
        assert_eq!(&bytes[55..59], &[4, 3, 2, 1]);
        assert_eq!(&bytes[59..67], &[0x0b, 0x0a, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[67..99], &[7u8; 32]);
        assert_eq!(&bytes[99..], &[0x0d, 0x0c, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn only_the_accepting_rounds_proposer_broadcasts_final_blocks() {
        assert!(broadcasts_final_block(3, 7, 4));
        assert!(!broadcasts_final_block(2, 7, 4));
        assert!(broadcasts_final_block(0, 8, 4));
    }

    #[test]
    fn fetch_counts() {
        assert_eq!(fetch_count(10, 11), 1);
        assert_eq!(fetch_count(10, 2000), FETCH_BATCH);
        assert_eq!(fetch_count(10, 5), 1);
    }
}
