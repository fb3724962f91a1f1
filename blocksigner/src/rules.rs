//! # Block-signing protocol, version 3
//!
//! This module is the single place where the consensus rules are written down (as these doc comments) and
//! decided (as the small pure functions below). [`crate::Consensus`] moves data between them and the wire.
//! `docs/PROTOCOL.md` is derived from this text.
//!
//! The protocol is Tendermint's (Buchman, Kwon, Milosevic, "The latest gossip on BFT consensus", 2018) with
//! `m`-of-`n` quorums instead of `2f+1`-of-`3f+1`, followed by one extra, irrevocable step: the HSM signature.
//! Prevotes and precommits are cheap ed25519 votes by the members' p2p keys; a *commit certificate* (`m`
//! precommits for a block in one round) decides the block; only then does a member ask its HSM to sign the
//! block hash, and `m` HSM signatures make the block final in the Elements format.
//!
//! ## Notation
//!
//! * `n` members, indexed by the position of their block-signing key in `FederationParams::sorted_keys()`;
//!   `m` = the threshold, `m > n/2`. `tip` = the last final block; `h = tip.height + 1` is being decided.
//! * Every member has a block-signing key (secp256k1, in the HSM) and a p2p identity key (ed25519). The
//!   transport authenticates that a message came from *some* member; `from` is that member's index; every
//!   rule that attributes a message to a member checks that member's own signature in the message.
//! * `valid(v)`: `chain::validate_proposal(params, tip, v)` passes, the block's height is `h`, its parent is
//!   the tip, its time is not more than [`MAX_CLOCK_SKEW_MS`] ahead of our clock, and its transactions pass
//!   [`crate::BlockContent::validate`] (the daemon's: every transaction valid against this member's own UTXO set at
//!   the tip, no double spend, the coinbase claiming at most the fees, the witness commitment).
//!
//! ## Schedule, rounds, proposers
//!
//! * R1. A height starts when its parent becomes final at this member. Round 0 of height `h` is *scheduled*
//!   for the first slot boundary (a multiple of `interval_ms` since the unix epoch) after that moment
//!   ([`next_slot_start`]); a block's time is `max(tip.time, scheduled_start / 1000)` whatever round
//!   produces it ([`block_time`]), so blocks stay on the schedule, one per interval.
//! * R2. Rounds `r = 0, 1, 2, …` of a height are not tied to clocks. The proposer of `(h, r)` is member
//!   `(h + r) mod n` ([`proposer_of`]): the next member in key order at every new round and height.
//! * R3. Timeouts ([`round_timeout_ms`]): `T(r) = base · (min(1 + r, TIMEOUT_GROWTH_CAP) + g)`, where
//!   `base` is the federation's round timeout (much shorter than the interval) and `g` is the member's
//!   *lateness* ([`MAX_LATENESS`] at most): it grows by one whenever a round's proposal, or `m` prevotes
//!   for one block, reach the member after its own timeout already made it vote nil in that round (its
//!   timeouts are shorter than the network's delays: the partial-synchrony assumption says they
//!   must eventually exceed them), and halves whenever a height is decided in round 0. Timeouts only ever
//!   move a member to a later step or round; no timeout can make a member vote against its lock.
//!
//! ## A round (Tendermint, `m`-quorums)
//!
//! State per height: `round`, `step ∈ {propose, prevote, precommit}`, `locked = (round, block)?`,
//! `valid = (round, block)?`, and whether a decision (commit certificate) exists.
//!
//! * R4. **Start round `r`**: `round = r`, `step = propose`. If we are the proposer: at round 0 not before
//!   the scheduled start, we propose `valid.block` with `valid_round = valid.round` if we have one and hold
//!   the block, else a new block from [`crate::BlockContent::build`] (the daemon's: a mempool template by fee
//!   rate, validated like anyone else's) with no valid round; the
//!   proposal is signed with our p2p key ([`proposal_signing_bytes`]). Otherwise we arm the propose timeout
//!   at `max(now, scheduled_start) + T(r)`.
//! * R5. A proposal is accepted only from `proposer_of(h, r)`, with a valid signature, message height = block
//!   height, and at most one block per (proposer, round): a second, different one is equivocation and
//!   ignored. Blocks that are not `valid` are remembered as invalid (we prevote nil on them).
//! * R6. **Prevote** (once per round, at `step = propose`, for the current round's proposal `(v, vr)`):
//!   - `vr = none`: prevote `v` if `valid(v)` and (`locked` is none or `locked.block = v`); else nil;
//!   - `vr < r` and we hold `m` prevotes for `v` in round `vr` (counted, or carried by the proposal as its
//!     `polka`: `m` prevote signatures of distinct members): prevote `v` if `valid(v)` and
//!     (`locked.round ≤ vr` or `locked.block = v`); else nil. If `v` is the block we are locked on, we
//!     prevote it at once, polka or not.
//!
//!   `step = prevote`. On the propose timeout of the current round at `step = propose`: prevote nil.
//! * R7. At `step = prevote`, the first time we hold `m` prevotes of the current round for anything: arm
//!   the prevote timeout `now + T(r)`. When it fires at `step = prevote` in that round: precommit nil.
//! * R8. **Lock**: the first time, in the current round, we hold a `valid` proposal `v` of this round and
//!   `m` prevotes for `v` of this round, at `step ≥ prevote`: if `step = prevote`, set
//!   `locked = (r, v)`, precommit `v`, `step = precommit`; in any case `valid = (r, v)`.
//!   With `m` nil prevotes of the current round at `step = prevote`: precommit nil, `step = precommit`.
//! * R9. **Next round**: with `m` precommits of the current round for anything, arm the precommit timeout
//!   `now + T(r)`; when it fires in that round, start round `r + 1`. With `m` nil precommits of the current
//!   round, start round `r + 1` at once; so does the proposer of `r + 1` as soon as it holds `m` precommits of
//!   round `r` (its proposal is what the others need first when they arrive). With messages (proposal, prevote, precommit) of some round
//!   `r' > r` from [`skip_quorum`] = `n - m + 1` distinct members, start round `r'` (the largest such).
//!
//! Every vote is signed ([`vote_signing_bytes`]) and made durable (`Effect::Persist`, a synced write of
//! [`crate::ConsensusRecord`]: height, our last prevote and precommit with their signatures, the lock, the
//! decision) *before* it is broadcast, so a member that crashes and restarts never votes twice in one round
//! or against its lock.
//!
//! ## Decision, signature, finality
//!
//! * R10. **Decide**: `m` precommits for `v` from one round (any round), or a `Commit` message whose
//!   certificate verifies and whose block is `valid`, form a commit certificate. The first one decides the
//!   height at this member: it is persisted, and the member stops taking part in rounds at `h`.
//! * R11. **Sign**: a member that decided `v`, holds `v` (and `valid(v)`), and has not signed nor asked to
//!   sign another hash at `h` nor anything at a higher height ([`may_request_signature`]) asks its signer for
//!   a signature, handing it the certificate. The signer guard independently requires a certificate that
//!   verifies for exactly `(h, v)`, refuses a second hash at a height and any lower height, and makes its
//!   decision durable before the HSM signs.
//! * R12. A signature returned by our signer is broadcast as `BlockSignature` and counted; a received one
//!   counts if `member = from`, `height = h` and `chain::verify_member_signature` accepts it against the
//!   header of the block (buffered, bounded, while we do not hold the block).
//! * R13. **Final**: with `m` valid signatures on `v`, assemble the witness (`chain::attach_signatures`),
//!   check it with `chain::validate_final_block`, store it (synced), advance the tip. The proposer of the
//!   deciding round broadcasts `FinalBlock`. A received `FinalBlock` for `h` that passes
//!   `validate_final_block` is final too.
//! * R14. **Repair** (the network may lose messages): while `h` is not final, every `2 · T(round)` after the
//!   scheduled start (so never during a healthy round) a member re-broadcasts its current round's votes,
//!   its proposal if it is the current proposer, and, once decided, its `Commit` and its `BlockSignature`;
//!   it also relays every other member's vote it holds for the current and previous round (`VoteBundle`, each
//!   vote checked against its own author's key), because Tendermint's liveness needs every honest member to
//!   eventually see the votes any honest member saw, even when their author is gone.
//!
//! ## Catch-up
//!
//! * R15. Every slot a member broadcasts `Status { tip height, tip hash }`. Evidence that a peer is ahead
//!   (a `Status` above our tip, any message for a height above `h`, a `FinalBlock` above `h`) triggers one
//!   outstanding `FetchBlocks` (at most [`FETCH_BATCH`] blocks, retried after [`FETCH_TIMEOUT_INTERVALS`]
//!   slots); fetched blocks are checked in order with `validate_final_block`; the first invalid one stops
//!   the batch and is reported as the peer's misbehaviour (the daemon disconnects it and the next fetch
//!   asks another peer).
//! * R16. Messages for `h + 1` are buffered (bounded per member) and replayed when the tip advances.
//!
//! ## Bounds
//!
//! * **Safety** (never two final blocks at one height) holds while at most `2m - n - 1` members are
//!   Byzantine, under any delays, losses, duplication, reordering, crashes and clock skew: two final blocks
//!   at one height need `2m - n` members that signed both, and an honest member's signer signs one hash per
//!   height. Beyond that, Tendermint's locking makes commit certificates unique per height under the same
//!   bound (two certificates in rounds `r < r'` would need a polka in round `r'` by `m` members, `2m - n`
//!   of whom precommitted, hence locked on, the first block in round `r`), so honest members never sign
//!   different blocks at one height, which is what keeps them live.
//! * **Liveness** needs `m` honest members that are connected, clocks within [`MAX_CLOCK_SKEW_MS`] of each
//!   other, and message delays below `base` for long enough; Byzantine members up to `n - m` cannot stop it.
//!
//! ## Failure handling
//!
//! * R17. Anything invalid is ignored and reported (`Rejected { from, reason }`); nothing is fatal and
//!   nothing panics. Per-member memory is bounded: votes are kept only for rounds up to one above ours (a
//!   later round only counts towards R9's skip, one round per member).

use crate::message::VoteKind;

/// Domain separator of vote signatures.
pub const VOTE_DOMAIN: &[u8] = b"functionary/vote/v3";

/// Domain separator of proposal signatures.
pub const PROPOSAL_DOMAIN: &[u8] = b"functionary/proposal/v3";

/// How far a block's time may be ahead of our clock.
pub const MAX_CLOCK_SKEW_MS: u64 = 10_000;

/// Timeouts grow linearly with the round up to this factor of the base timeout (R3).
pub const TIMEOUT_GROWTH_CAP: u64 = 4;

/// Largest number of blocks one fetch asks for (R15).
pub const FETCH_BATCH: u32 = 500;

/// Slots after which an unanswered fetch no longer blocks a new one (R15).
pub const FETCH_TIMEOUT_INTERVALS: u64 = 3;

/// Buffered block signatures (for blocks not yet held) kept per member (R12).
pub const MAX_PENDING_SIGNATURES_PER_MEMBER: usize = 4;

/// Buffered next-height messages kept per member (R16).
pub const MAX_FUTURE_MESSAGES_PER_MEMBER: usize = 16;

/// Blocks kept per height (accepted proposals); the oldest one neither locked nor valid is dropped beyond.
pub const MAX_BLOCKS_PER_HEIGHT: usize = 32;

/// The first slot boundary strictly after `now_ms` (R1).
pub fn next_slot_start(now_ms: u64, interval_ms: u64) -> u64 {
    let interval = interval_ms.max(1);
    (now_ms / interval)
        .saturating_add(1)
        .saturating_mul(interval)
}

/// The slot number at wall-clock time `now_ms`.
pub fn slot_at(now_ms: u64, interval_ms: u64) -> u64 {
    now_ms / interval_ms.max(1)
}

/// The block time of every proposal at a height whose round 0 is scheduled at `scheduled_start_ms` (R1).
pub fn block_time(tip_time: u32, scheduled_start_ms: u64) -> u32 {
    let seconds = u32::try_from(scheduled_start_ms / 1000).unwrap_or(u32::MAX);
    tip_time.max(seconds)
}

/// The member that proposes in `(height, round)` among `member_count` members (R2).
pub fn proposer_of(height: u32, round: u32, member_count: usize) -> usize {
    let n = u64::try_from(member_count.max(1)).unwrap_or(u64::MAX);
    let turn = u64::from(height) + u64::from(round);
    // The remainder is < member_count, so it fits in usize.
    usize::try_from(turn % n).unwrap_or(0)
}

/// Largest lateness `g` (R3).
pub const MAX_LATENESS: u32 = 64;

/// The timeout of round `round` for a member whose lateness is `lateness` (R3).
pub fn round_timeout_ms(base_ms: u64, round: u32, lateness: u32) -> u64 {
    let factor =
        (u64::from(round) + 1).min(TIMEOUT_GROWTH_CAP) + u64::from(lateness.min(MAX_LATENESS));
    base_ms.max(1).saturating_mul(factor)
}

/// Distinct members seen in a later round that make us skip to it (R9): at least one of them is honest
/// while at most `n - m` members are Byzantine.
pub fn skip_quorum(member_count: usize, threshold: usize) -> usize {
    member_count.saturating_sub(threshold).saturating_add(1)
}

/// What the prevote rule R6 needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrevoteInput<'a> {
    /// The proposed block.
    pub block: &'a elements::BlockHash,
    /// Whether the block is `valid`.
    pub block_valid: bool,
    /// The proposal's valid round.
    pub valid_round: Option<u32>,
    /// The current round.
    pub round: u32,
    /// Whether we hold `m` prevotes for the block in `valid_round`.
    pub polka_in_valid_round: bool,
    /// Our lock.
    pub locked: Option<(u32, &'a elements::BlockHash)>,
}

/// The decision of R6: `Some(Some(v))` prevote `v`, `Some(None)` prevote nil, `None` not yet decidable
/// (a re-proposal whose polka we have not seen: wait for the prevotes or the propose timeout).
pub fn prevote_for(input: PrevoteInput<'_>) -> Option<Option<elements::BlockHash>> {
    match input.valid_round {
        None => {
            let lock_allows = input.locked.is_none_or(|(_, locked)| locked == input.block);
            Some((input.block_valid && lock_allows).then_some(*input.block))
        }
        Some(valid_round) if valid_round < input.round => {
            let ours = input
                .locked
                .is_some_and(|(_, locked)| locked == input.block);
            if ours && input.block_valid {
                return Some(Some(*input.block)); // our own lock: always safe to prevote
            }
            if !input.polka_in_valid_round {
                return None;
            }
            let lock_allows = input.locked.is_none_or(|(locked_round, locked)| {
                locked_round <= valid_round || locked == input.block
            });
            Some((input.block_valid && lock_allows).then_some(*input.block))
        }
        // A valid round that is not before the proposal's round is malformed: never prevote for it.
        Some(_) => Some(None),
    }
}

/// Why a member may not ask its signer for a signature (R11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignRefusal {
    /// The member signed (or asked to sign) another block at this height.
    OtherBlockAtHeight,
    /// The member signed (or asked to sign) something at a higher height.
    HigherHeightSigned,
}

/// The signing rule R11: given the last `(height, hash)` the member signed or asked to sign, may it ask for a
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

/// The bytes a vote signature covers:
/// `"functionary/vote/v3" || genesis_hash(32) || kind(1: prevote 1, precommit 2) || height(u32 LE) ||
/// round(u32 LE) || 0x00 (nil) or 0x01 || block_hash(32)`.
pub fn vote_signing_bytes(
    genesis_hash: &elements::BlockHash,
    kind: VoteKind,
    height: u32,
    round: u32,
    block_hash: Option<&elements::BlockHash>,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(VOTE_DOMAIN.len() + 32 + 1 + 4 + 4 + 1 + 32);
    bytes.extend_from_slice(VOTE_DOMAIN);
    bytes.extend_from_slice(genesis_hash.as_byte_array());
    bytes.push(kind.tag());
    bytes.extend_from_slice(&height.to_le_bytes());
    bytes.extend_from_slice(&round.to_le_bytes());
    match block_hash {
        None => bytes.push(0),
        Some(hash) => {
            bytes.push(1);
            bytes.extend_from_slice(hash.as_byte_array());
        }
    }
    bytes
}

/// The bytes a proposal signature covers:
/// `"functionary/proposal/v3" || genesis_hash(32) || height(u32 LE) || round(u32 LE) || valid_round
/// (0x00, or 0x01 || u32 LE) || block_hash(32) || proposed_at_ms(u64 LE)`.
pub fn proposal_signing_bytes(
    genesis_hash: &elements::BlockHash,
    height: u32,
    round: u32,
    valid_round: Option<u32>,
    block_hash: &elements::BlockHash,
    proposed_at_ms: u64,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(PROPOSAL_DOMAIN.len() + 32 + 4 + 4 + 5 + 32 + 8);
    bytes.extend_from_slice(PROPOSAL_DOMAIN);
    bytes.extend_from_slice(genesis_hash.as_byte_array());
    bytes.extend_from_slice(&height.to_le_bytes());
    bytes.extend_from_slice(&round.to_le_bytes());
    match valid_round {
        None => bytes.push(0),
        Some(round) => {
            bytes.push(1);
            bytes.extend_from_slice(&round.to_le_bytes());
        }
    }
    bytes.extend_from_slice(block_hash.as_byte_array());
    bytes.extend_from_slice(&proposed_at_ms.to_le_bytes());
    bytes
}

/// How many blocks to ask for when our tip is at `tip_height` and a peer is at `peer_height` (R15).
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
    fn schedule_and_proposers() {
        assert_eq!(next_slot_start(0, 1000), 1000);
        assert_eq!(next_slot_start(999, 1000), 1000);
        assert_eq!(next_slot_start(1000, 1000), 2000);
        assert_eq!(next_slot_start(u64::MAX, 1000), u64::MAX);
        assert_eq!(slot_at(1999, 1000), 1);
        assert_eq!(proposer_of(7, 0, 4), 3);
        assert_eq!(proposer_of(7, 1, 4), 0);
        assert_eq!(
            proposer_of(u32::MAX, u32::MAX, 15),
            ((2u64 * u64::from(u32::MAX)) % 15) as usize
        );
        assert_eq!(proposer_of(3, 0, 0), 0);
        assert_eq!(block_time(100, 50_000), 100);
        assert_eq!(block_time(100, 200_999), 200);
        assert_eq!(block_time(0, u64::MAX), u32::MAX);
    }

    #[test]
    fn timeouts_grow_and_cap() {
        assert_eq!(round_timeout_ms(100, 0, 0), 100);
        assert_eq!(round_timeout_ms(100, 1, 0), 200);
        assert_eq!(round_timeout_ms(100, 3, 0), 400);
        assert_eq!(round_timeout_ms(100, 1000, 0), 400);
        assert_eq!(round_timeout_ms(100, 0, 5), 600);
        assert_eq!(round_timeout_ms(100, 9, 1000), 100 * (4 + 64));
        assert_eq!(round_timeout_ms(0, 0, 0), 1);
        assert_eq!(round_timeout_ms(u64::MAX, 9, 0), u64::MAX);
    }

    #[test]
    fn skip_quorum_has_an_honest_member_within_the_liveness_bound() {
        assert_eq!(skip_quorum(4, 3), 2);
        assert_eq!(skip_quorum(15, 11), 5);
        assert_eq!(skip_quorum(7, 5), 3);
    }

    #[test]
    fn prevote_rule() {
        let x = hash(1);
        let y = hash(2);
        let fresh = PrevoteInput {
            block: &x,
            block_valid: true,
            valid_round: None,
            round: 3,
            polka_in_valid_round: false,
            locked: None,
        };
        assert_eq!(prevote_for(fresh), Some(Some(x)));
        assert_eq!(
            prevote_for(PrevoteInput {
                block_valid: false,
                ..fresh
            }),
            Some(None),
            "invalid block: nil"
        );
        assert_eq!(
            prevote_for(PrevoteInput {
                locked: Some((1, &y)),
                ..fresh
            }),
            Some(None),
            "locked on another block, no valid round: nil"
        );
        assert_eq!(
            prevote_for(PrevoteInput {
                locked: Some((1, &x)),
                ..fresh
            }),
            Some(Some(x)),
            "locked on this block"
        );
        let reproposal = PrevoteInput {
            valid_round: Some(2),
            polka_in_valid_round: true,
            locked: Some((1, &y)),
            ..fresh
        };
        assert_eq!(
            prevote_for(reproposal),
            Some(Some(x)),
            "a polka newer than our lock unlocks"
        );
        assert_eq!(
            prevote_for(PrevoteInput {
                locked: Some((2, &y)),
                ..reproposal
            }),
            Some(Some(x)),
            "lock round equal to the valid round"
        );
        assert_eq!(
            prevote_for(PrevoteInput {
                locked: Some((3, &y)),
                ..reproposal
            }),
            Some(None),
            "our lock is newer than the proposal's polka"
        );
        assert_eq!(
            prevote_for(PrevoteInput {
                polka_in_valid_round: false,
                ..reproposal
            }),
            None,
            "wait for the polka"
        );
        assert_eq!(
            prevote_for(PrevoteInput {
                polka_in_valid_round: false,
                locked: Some((3, &x)),
                ..reproposal
            }),
            Some(Some(x)),
            "our own locked block needs no polka"
        );
        assert_eq!(
            prevote_for(PrevoteInput {
                valid_round: Some(3),
                ..reproposal
            }),
            Some(None),
            "valid round not before the round"
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
    fn vote_bytes_layout() {
        let bytes = vote_signing_bytes(
            &hash(9),
            VoteKind::Precommit,
            0x0102_0304,
            0x0a0b,
            Some(&hash(7)),
        );
        assert_eq!(bytes.len(), 19 + 32 + 1 + 4 + 4 + 1 + 32);
        assert_eq!(&bytes[..19], VOTE_DOMAIN);
        assert_eq!(&bytes[19..51], &[9u8; 32]);
        assert_eq!(bytes[51], 2);
        assert_eq!(&bytes[52..56], &[4, 3, 2, 1]);
        assert_eq!(&bytes[56..60], &[0x0b, 0x0a, 0, 0]);
        assert_eq!(bytes[60], 1);
        assert_eq!(&bytes[61..], &[7u8; 32]);
        let nil = vote_signing_bytes(&hash(9), VoteKind::Prevote, 1, 2, None);
        assert_eq!(nil.len(), 19 + 32 + 1 + 4 + 4 + 1);
        assert_eq!(nil[51], 1);
        assert_eq!(nil[60], 0);
    }

    #[test]
    fn proposal_bytes_layout() {
        let bytes =
            proposal_signing_bytes(&hash(9), 0x0102_0304, 0x0a0b, Some(5), &hash(7), 0x0c0d);
        assert_eq!(bytes.len(), 23 + 32 + 4 + 4 + 5 + 32 + 8);
        assert_eq!(&bytes[..23], PROPOSAL_DOMAIN);
        assert_eq!(&bytes[55..59], &[4, 3, 2, 1]);
        assert_eq!(&bytes[59..63], &[0x0b, 0x0a, 0, 0]);
        assert_eq!(&bytes[63..68], &[1, 5, 0, 0, 0]);
        assert_eq!(&bytes[68..100], &[7u8; 32]);
        assert_eq!(&bytes[100..], &[0x0d, 0x0c, 0, 0, 0, 0, 0, 0]);
        let fresh = proposal_signing_bytes(&hash(9), 1, 0, None, &hash(7), 0);
        assert_eq!(fresh.len(), 23 + 32 + 4 + 4 + 1 + 32 + 8);
    }

    #[test]
    fn fetch_counts() {
        assert_eq!(fetch_count(10, 11), 1);
        assert_eq!(fetch_count(10, 2000), FETCH_BATCH);
        assert_eq!(fetch_count(10, 5), 1);
    }
}
