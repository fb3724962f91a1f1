//! Everything a member tracks about the one height being decided; dropped as a whole when the tip advances.
//! Every collection is bounded (rounds grow only with time, one entry per member per round).

use std::collections::{BTreeMap, BTreeSet};

use crate::certificate::CommitCertificate;
use crate::record::{CastVote, ConsensusRecord};
use crate::rules::{MAX_BLOCKS_PER_HEIGHT, MAX_PENDING_SIGNATURES_PER_MEMBER};
use crate::votes::VoteTally;

/// The step of the current round (R4-R9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Waiting for the round's proposal.
    Propose,
    /// Prevoted; waiting for `m` prevotes.
    Prevote,
    /// Precommitted; waiting for `m` precommits.
    Precommit,
}

/// A timer of the round machinery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// The scheduled start of round 0 for its proposer.
    ProposeAt(u32),
    /// R6: no proposal in time.
    Propose(u32),
    /// R7.
    Prevote(u32),
    /// R9.
    Precommit(u32),
    /// R14.
    Repair,
}

/// A block held for the height.
#[derive(Clone, Debug)]
pub(crate) struct HeldBlock {
    pub(crate) block: elements::Block,
    /// Round of the first proposal that carried it.
    pub(crate) round: u32,
    pub(crate) proposed_at_ms: u64,
}

/// Per-height state.
#[derive(Debug)]
pub(crate) struct HeightState {
    pub(crate) height: u32,
    /// Round 0's scheduled start (R1), once a clock is known.
    pub(crate) scheduled_start_ms: Option<u64>,
    /// Whether the round machinery has started.
    pub(crate) started: bool,
    pub(crate) round: u32,
    pub(crate) step: Step,
    pub(crate) locked: Option<(u32, elements::BlockHash)>,
    pub(crate) valid: Option<(u32, elements::BlockHash)>,
    /// Valid blocks we hold, by hash.
    blocks: BTreeMap<elements::BlockHash, HeldBlock>,
    /// Blocks found invalid (we prevote nil on them).
    invalid: BTreeSet<elements::BlockHash>,
    /// The accepted proposal of each round: block and valid round.
    proposals: BTreeMap<u32, (elements::BlockHash, Option<u32>)>,
    /// Rounds whose proposal carried `m` verified prevotes for its valid round.
    polka_carried: BTreeSet<u32>,
    pub(crate) prevotes: VoteTally,
    pub(crate) precommits: VoteTally,
    /// The highest round each member sent us anything in (R9's skip rule).
    pub(crate) highest_round_seen: BTreeMap<usize, u32>,
    pub(crate) my_prevote: Option<CastVote>,
    pub(crate) my_precommit: Option<CastVote>,
    /// Rounds in which R7 / R8 / R9 already fired.
    pub(crate) prevote_timeout_armed: Option<u32>,
    pub(crate) lock_rule_done: Option<u32>,
    pub(crate) precommit_timeout_armed: Option<u32>,
    /// The last round we proposed in.
    pub(crate) proposed_round: Option<u32>,
    pub(crate) timers: BTreeSet<(u64, Timer)>,
    /// Our decision (R10) with its certificate.
    pub(crate) decided: Option<CommitCertificate>,
    /// A block our signer journal says we signed at this height although no certificate survived (a lost
    /// consensus record): we act as decided on it, without a certificate to relay.
    pub(crate) decided_without_certificate: Option<elements::BlockHash>,
    /// The block we asked our signer to sign in this process run (reset by a signer failure).
    pub(crate) sign_requested: Option<elements::BlockHash>,
    /// Set by a signer failure: no new request until the next repair timer.
    pub(crate) sign_backoff: bool,
    /// Our own block signature, once the signer returned it.
    pub(crate) my_signature: Option<(elements::BlockHash, Vec<u8>)>,
    /// Verified block signatures by block, then member.
    signatures: BTreeMap<elements::BlockHash, BTreeMap<usize, Vec<u8>>>,
    /// Unverified signatures for blocks we do not hold yet.
    pending_signatures: BTreeMap<(usize, elements::BlockHash), Vec<u8>>,
}

impl HeightState {
    pub(crate) fn new(height: u32) -> Self {
        HeightState {
            height,
            scheduled_start_ms: None,
            started: false,
            round: 0,
            step: Step::Propose,
            locked: None,
            valid: None,
            blocks: BTreeMap::new(),
            invalid: BTreeSet::new(),
            proposals: BTreeMap::new(),
            polka_carried: BTreeSet::new(),
            prevotes: VoteTally::default(),
            precommits: VoteTally::default(),
            highest_round_seen: BTreeMap::new(),
            my_prevote: None,
            my_precommit: None,
            prevote_timeout_armed: None,
            lock_rule_done: None,
            precommit_timeout_armed: None,
            proposed_round: None,
            timers: BTreeSet::new(),
            decided: None,
            decided_without_certificate: None,
            sign_requested: None,
            sign_backoff: false,
            my_signature: None,
            signatures: BTreeMap::new(),
            pending_signatures: BTreeMap::new(),
        }
    }

    /// Restores what a crash must not forget (R-votes, lock, decision) from our record of this height.
    pub(crate) fn restore(&mut self, record: ConsensusRecord) {
        let rounds = [
            record.prevote.as_ref().map(|v| v.round),
            record.precommit.as_ref().map(|v| v.round),
            record.locked.map(|(round, _)| round),
        ];
        self.round = rounds.into_iter().flatten().max().unwrap_or(0);
        self.my_prevote = record.prevote;
        self.my_precommit = record.precommit;
        self.locked = record.locked;
        self.valid = record.locked;
        if let Some((round, hash)) = record.locked {
            // Our own durable copy of the polka that made the lock: trusted, re-sent with re-proposals.
            for (member, signature) in &record.locked_polka {
                self.prevotes.add(
                    round,
                    usize::from(*member),
                    Some(hash),
                    signature.to_bytes(),
                );
            }
            let block = record
                .locked_block
                .as_deref()
                .and_then(|bytes| elements::encode::deserialize::<elements::Block>(bytes).ok())
                .filter(|block| block.block_hash() == hash);
            if let Some(block) = block {
                self.hold_block(round, block, 0);
            }
        }
        self.decided = record.decided;
    }

    /// What must be durable now.
    pub(crate) fn record(&self) -> ConsensusRecord {
        ConsensusRecord {
            height: self.height,
            prevote: self.my_prevote.clone(),
            precommit: self.my_precommit.clone(),
            locked: self.locked,
            locked_polka: self
                .locked
                .map(|(round, hash)| self.prevotes.signatures_for(round, hash))
                .unwrap_or_default(),
            locked_block: self
                .locked
                .and_then(|(_, hash)| self.blocks.get(&hash))
                .map(|held| elements::encode::serialize(&held.block)),
            decided: self.decided.clone(),
        }
    }

    /// The decided block, with or without a certificate.
    pub(crate) fn decided_hash(&self) -> Option<elements::BlockHash> {
        self.decided
            .as_ref()
            .map(|cert| cert.block_hash)
            .or(self.decided_without_certificate)
    }

    pub(crate) fn block(&self, hash: &elements::BlockHash) -> Option<&HeldBlock> {
        self.blocks.get(hash)
    }

    pub(crate) fn block_count(&self) -> usize {
        self.blocks.len()
    }

    pub(crate) fn is_invalid(&self, hash: &elements::BlockHash) -> bool {
        self.invalid.contains(hash)
    }

    /// The accepted proposal of `round`.
    pub(crate) fn proposal(&self, round: u32) -> Option<&(elements::BlockHash, Option<u32>)> {
        self.proposals.get(&round)
    }

    pub(crate) fn set_proposal(
        &mut self,
        round: u32,
        hash: elements::BlockHash,
        valid_round: Option<u32>,
    ) {
        self.proposals.insert(round, (hash, valid_round));
    }

    /// Remembers that the proposal of `round` carried a verified polka for its valid round.
    pub(crate) fn mark_polka_carried(&mut self, round: u32) {
        self.polka_carried.insert(round);
    }

    /// Whether the proposal of `round` carried a verified polka.
    pub(crate) fn polka_carried(&self, round: u32) -> bool {
        self.polka_carried.contains(&round)
    }

    /// Keeps a valid block. At most [`MAX_BLOCKS_PER_HEIGHT`]: the one first proposed longest ago that is
    /// neither locked, valid, decided nor being signed is dropped first.
    pub(crate) fn hold_block(&mut self, round: u32, block: elements::Block, proposed_at_ms: u64) {
        let hash = block.block_hash();
        if self.blocks.contains_key(&hash) {
            return;
        }
        if self.blocks.len() >= MAX_BLOCKS_PER_HEIGHT {
            let protected: Vec<elements::BlockHash> = [
                self.locked.map(|(_, h)| h),
                self.valid.map(|(_, h)| h),
                self.decided_hash(),
                self.sign_requested,
            ]
            .into_iter()
            .flatten()
            .collect();
            let evict = self
                .blocks
                .iter()
                .filter(|(candidate, _)| !protected.contains(candidate))
                .min_by_key(|(_, held)| held.round)
                .map(|(candidate, _)| *candidate);
            if let Some(evict) = evict {
                self.blocks.remove(&evict);
            }
        }
        self.blocks.insert(
            hash,
            HeldBlock {
                block,
                round,
                proposed_at_ms,
            },
        );
    }

    /// Remembers an invalid block (bounded: an old entry is dropped beyond the limit).
    pub(crate) fn mark_invalid(&mut self, hash: elements::BlockHash) {
        if self.invalid.len() >= MAX_BLOCKS_PER_HEIGHT {
            if let Some(first) = self.invalid.iter().next().copied() {
                self.invalid.remove(&first);
            }
        }
        self.invalid.insert(hash);
    }

    /// Notes that `member` sent something for `round`.
    pub(crate) fn note_round(&mut self, member: usize, round: u32) {
        let seen = self.highest_round_seen.entry(member).or_insert(round);
        *seen = (*seen).max(round);
    }

    pub(crate) fn arm(&mut self, at_ms: u64, timer: Timer) {
        self.timers.insert((at_ms, timer));
    }

    /// Removes and returns the timers due at `now_ms`, earliest first.
    pub(crate) fn due_timers(&mut self, now_ms: u64) -> Vec<Timer> {
        let later = self
            .timers
            .split_off(&(now_ms.saturating_add(1), Timer::ProposeAt(0)));
        let due = std::mem::replace(&mut self.timers, later);
        due.into_iter().map(|(_, timer)| timer).collect()
    }

    pub(crate) fn next_timer_ms(&self) -> Option<u64> {
        self.timers.iter().next().map(|(at, _)| *at)
    }

    /// Records a verified block signature; returns how many distinct members signed `hash`.
    pub(crate) fn add_signature(
        &mut self,
        hash: elements::BlockHash,
        member: usize,
        signature: Vec<u8>,
    ) -> usize {
        let by_member = self.signatures.entry(hash).or_default();
        by_member.entry(member).or_insert(signature);
        by_member.len()
    }

    pub(crate) fn has_signature(&self, hash: &elements::BlockHash, member: usize) -> bool {
        self.signatures
            .get(hash)
            .is_some_and(|by_member| by_member.contains_key(&member))
    }

    /// The verified signatures on `hash`, in member order.
    pub(crate) fn signatures_on(&self, hash: &elements::BlockHash) -> Vec<(usize, Vec<u8>)> {
        self.signatures
            .get(hash)
            .map(|by_member| {
                by_member
                    .iter()
                    .map(|(member, sig)| (*member, sig.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Buffers a signature for a block we do not hold. False if the member's buffer is full.
    pub(crate) fn buffer_signature(
        &mut self,
        member: usize,
        hash: elements::BlockHash,
        signature: Vec<u8>,
    ) -> bool {
        if self.pending_signatures.contains_key(&(member, hash)) {
            return true;
        }
        let buffered = self
            .pending_signatures
            .keys()
            .filter(|(m, _)| *m == member)
            .count();
        if buffered >= MAX_PENDING_SIGNATURES_PER_MEMBER {
            return false;
        }
        self.pending_signatures.insert((member, hash), signature);
        true
    }

    /// Removes and returns the buffered signatures on `hash`.
    pub(crate) fn take_pending_signatures(
        &mut self,
        hash: &elements::BlockHash,
    ) -> Vec<(usize, Vec<u8>)> {
        let members: Vec<usize> = self
            .pending_signatures
            .keys()
            .filter(|(_, pending)| pending == hash)
            .map(|(member, _)| *member)
            .collect();
        members
            .into_iter()
            .filter_map(|member| {
                self.pending_signatures
                    .remove(&(member, *hash))
                    .map(|sig| (member, sig))
            })
            .collect()
    }

    /// A held block with at least `threshold` verified signatures.
    pub(crate) fn block_with_signatures(&self, threshold: usize) -> Option<elements::BlockHash> {
        self.signatures
            .iter()
            .find(|(hash, by_member)| {
                by_member.len() >= threshold && self.blocks.contains_key(*hash)
            })
            .map(|(hash, _)| *hash)
    }

    /// The largest signature count for one block.
    pub(crate) fn best_signature_count(&self) -> usize {
        self.signatures
            .values()
            .map(BTreeMap::len)
            .max()
            .unwrap_or(0)
    }
}
