//! Everything a member tracks about the one height being decided; dropped as a whole when the tip advances.
//! Every collection is bounded.

use std::collections::{BTreeMap, BTreeSet};

use crate::rules::{
    PrecommitHistory, MAX_BLOCKS_PER_HEIGHT, MAX_PENDING_SIGNATURES_PER_MEMBER, VOTE_WINDOW_ROUNDS,
};

/// A block held for the height, from an accepted proposal.
#[derive(Clone, Debug)]
pub(crate) struct HeldBlock {
    pub(crate) block: elements::Block,
    /// Round of the first accepted proposal of this block.
    pub(crate) round: u64,
    pub(crate) proposed_at_ms: u64,
}

/// Outcome of counting one precommit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PrecommitCount {
    /// Counted; the number of distinct members now precommitting this (round, block).
    Counted(usize),
    /// The member already precommitted this (round, block).
    Duplicate,
    /// The member precommitted another block in this round.
    Equivocation,
}

/// Per-height state.
#[derive(Debug)]
pub(crate) struct HeightState {
    pub(crate) height: u32,
    blocks: BTreeMap<elements::BlockHash, HeldBlock>,
    /// The block each round's proposer proposed (first accepted one).
    proposal_by_round: BTreeMap<u64, elements::BlockHash>,
    /// Members precommitting each (round, block).
    precommits: BTreeMap<(u64, elements::BlockHash), BTreeSet<usize>>,
    /// Which block each member precommitted in each round.
    precommit_by_member: BTreeMap<(u64, usize), elements::BlockHash>,
    /// Blocks with a certificate, with the round of the (first) certificate.
    certified: BTreeMap<elements::BlockHash, u64>,
    /// Our own precommits by round.
    my_precommits: BTreeMap<u64, elements::BlockHash>,
    my_highest_precommit_round: Option<u64>,
    /// The block we are locked on (signed or asked to sign).
    pub(crate) locked: Option<elements::BlockHash>,
    /// The block we asked our signer to sign in this process run (reset by a signer failure).
    pub(crate) sign_requested: Option<elements::BlockHash>,
    /// Our own block signature, once the signer returned it.
    pub(crate) my_signature: Option<(elements::BlockHash, Vec<u8>)>,
    /// Verified block signatures by block, then member.
    signatures: BTreeMap<elements::BlockHash, BTreeMap<usize, Vec<u8>>>,
    /// Unverified signatures for blocks we do not hold yet.
    pending_signatures: BTreeMap<(usize, elements::BlockHash), Vec<u8>>,
}

impl HeightState {
    pub(crate) fn new(height: u32, locked: Option<elements::BlockHash>) -> Self {
        HeightState {
            height,
            blocks: BTreeMap::new(),
            proposal_by_round: BTreeMap::new(),
            precommits: BTreeMap::new(),
            precommit_by_member: BTreeMap::new(),
            certified: BTreeMap::new(),
            my_precommits: BTreeMap::new(),
            my_highest_precommit_round: None,
            locked,
            sign_requested: None,
            my_signature: None,
            signatures: BTreeMap::new(),
            pending_signatures: BTreeMap::new(),
        }
    }

    pub(crate) fn block(&self, hash: &elements::BlockHash) -> Option<&HeldBlock> {
        self.blocks.get(hash)
    }

    pub(crate) fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// The block accepted for `round`, if any.
    pub(crate) fn proposal_in_round(&self, round: u64) -> Option<&elements::BlockHash> {
        self.proposal_by_round.get(&round)
    }

    /// Records an accepted proposal. Keeps at most [`MAX_BLOCKS_PER_HEIGHT`] blocks, dropping the one first
    /// proposed longest ago that is neither locked nor signed by us.
    pub(crate) fn add_proposal(&mut self, round: u64, block: elements::Block, proposed_at_ms: u64) {
        let hash = block.block_hash();
        self.proposal_by_round.insert(round, hash);
        if self.blocks.contains_key(&hash) {
            return;
        }
        if self.blocks.len() >= MAX_BLOCKS_PER_HEIGHT {
            let evict = self
                .blocks
                .iter()
                .filter(|(candidate, _)| {
                    Some(**candidate) != self.locked && Some(**candidate) != self.sign_requested
                })
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

    /// What the precommit rule needs to know about our own past at this height for `round`.
    pub(crate) fn precommit_history(&self, round: u64) -> PrecommitHistory<'_> {
        PrecommitHistory {
            locked: self.locked.as_ref(),
            highest_round: self.my_highest_precommit_round,
            in_this_round: self.my_precommits.get(&round),
        }
    }

    /// Records our own precommit.
    pub(crate) fn record_my_precommit(&mut self, round: u64, hash: elements::BlockHash) {
        self.my_precommits.insert(round, hash);
        self.my_highest_precommit_round = Some(
            self.my_highest_precommit_round
                .map_or(round, |r| r.max(round)),
        );
    }

    /// Counts a (verified) precommit.
    pub(crate) fn count_precommit(
        &mut self,
        round: u64,
        hash: elements::BlockHash,
        member: usize,
    ) -> PrecommitCount {
        match self.precommit_by_member.get(&(round, member)) {
            Some(previous) if *previous == hash => return PrecommitCount::Duplicate,
            Some(_) => return PrecommitCount::Equivocation,
            None => {}
        }
        self.precommit_by_member.insert((round, member), hash);
        let voters = self.precommits.entry((round, hash)).or_default();
        voters.insert(member);
        PrecommitCount::Counted(voters.len())
    }

    /// Remembers that `hash` has a certificate from `round` (the first one is kept).
    pub(crate) fn mark_certified(&mut self, hash: elements::BlockHash, round: u64) {
        self.certified.entry(hash).or_insert(round);
    }

    /// The round of a certificate for `hash`, if we have seen one.
    pub(crate) fn certificate_round(&self, hash: &elements::BlockHash) -> Option<u64> {
        self.certified.get(hash).copied()
    }

    /// Drops votes of rounds that left the window (the per-round bookkeeping is what grows with time).
    pub(crate) fn prune_rounds(&mut self, current_round: u64) {
        let oldest_kept = current_round.saturating_sub(VOTE_WINDOW_ROUNDS);
        self.proposal_by_round
            .retain(|round, _| *round >= oldest_kept);
        self.precommits
            .retain(|(round, _), _| *round >= oldest_kept);
        self.precommit_by_member
            .retain(|(round, _), _| *round >= oldest_kept);
        // Our own precommit history only needs its highest round once older rounds can no longer be
        // accepted; `my_highest_precommit_round` keeps that.
        self.my_precommits.retain(|round, _| *round >= oldest_kept);
        if self.certified.len() > MAX_BLOCKS_PER_HEIGHT {
            let keep: BTreeSet<elements::BlockHash> = self.blocks.keys().copied().collect();
            self.certified.retain(|hash, _| keep.contains(hash));
        }
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

    /// Whether we already hold a verified signature of `member` on `hash`.
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
            .range((member, min_hash())..)
            .take_while(|((m, _), _)| *m == member)
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

    /// The largest precommit count for one (round, block).
    pub(crate) fn best_precommit_count(&self) -> usize {
        self.precommits
            .values()
            .map(BTreeSet::len)
            .max()
            .unwrap_or(0)
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

fn min_hash() -> elements::BlockHash {
    elements::BlockHash::from_byte_array([0u8; 32])
}
