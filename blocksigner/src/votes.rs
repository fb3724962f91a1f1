//! Tallies of one kind of vote (prevotes or precommits) at one height, by round.

use std::collections::BTreeMap;

use crate::certificate::{CertificateSignature, CommitCertificate};

/// Outcome of adding one verified vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteAdded {
    /// New vote, counted.
    Counted,
    /// The member already cast exactly this vote.
    Duplicate,
    /// The member already voted for something else in this round (the first vote is kept).
    Equivocation,
}

/// One round's votes of one kind: at most one per member.
#[derive(Clone, Debug, Default)]
pub(crate) struct RoundVotes {
    by_member: BTreeMap<usize, (Option<elements::BlockHash>, [u8; 64])>,
}

impl RoundVotes {
    /// Votes for `value` (a block, or nil for `None`).
    pub(crate) fn count(&self, value: Option<&elements::BlockHash>) -> usize {
        self.by_member
            .values()
            .filter(|(voted, _)| voted.as_ref() == value)
            .count()
    }

    /// Votes for anything.
    pub(crate) fn total(&self) -> usize {
        self.by_member.len()
    }

    /// Blocks (not nil) with their vote counts.
    pub(crate) fn block_counts(&self) -> BTreeMap<elements::BlockHash, usize> {
        let mut counts = BTreeMap::new();
        for (voted, _) in self.by_member.values() {
            if let Some(hash) = voted {
                *counts.entry(*hash).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// All rounds' votes of one kind.
#[derive(Clone, Debug, Default)]
pub(crate) struct VoteTally {
    rounds: BTreeMap<u32, RoundVotes>,
}

impl VoteTally {
    pub(crate) fn add(
        &mut self,
        round: u32,
        member: usize,
        value: Option<elements::BlockHash>,
        signature: [u8; 64],
    ) -> VoteAdded {
        let votes = self.rounds.entry(round).or_default();
        match votes.by_member.get(&member) {
            Some((previous, _)) if *previous == value => VoteAdded::Duplicate,
            Some(_) => VoteAdded::Equivocation,
            None => {
                votes.by_member.insert(member, (value, signature));
                VoteAdded::Counted
            }
        }
    }

    /// Votes for `value` in `round`.
    pub(crate) fn count(&self, round: u32, value: Option<&elements::BlockHash>) -> usize {
        self.rounds
            .get(&round)
            .map_or(0, |votes| votes.count(value))
    }

    /// Votes for anything in `round`.
    pub(crate) fn total(&self, round: u32) -> usize {
        self.rounds.get(&round).map_or(0, RoundVotes::total)
    }

    /// Every `(round, block)` with at least `threshold` votes for the block.
    pub(crate) fn quorums(&self, threshold: usize) -> Vec<(u32, elements::BlockHash)> {
        self.rounds
            .iter()
            .flat_map(|(round, votes)| {
                votes
                    .block_counts()
                    .into_iter()
                    .filter(move |(_, count)| *count >= threshold)
                    .map(move |(hash, _)| (*round, hash))
            })
            .collect()
    }

    /// The first `(round, block)` (lowest round) with at least `threshold` votes for one block.
    pub(crate) fn first_quorum(&self, threshold: usize) -> Option<(u32, elements::BlockHash)> {
        self.rounds.iter().find_map(|(round, votes)| {
            votes
                .block_counts()
                .into_iter()
                .find(|(_, count)| *count >= threshold)
                .map(|(hash, _)| (*round, hash))
        })
    }

    /// The certificate made of the votes for `hash` in `round` (as precommits), members ascending.
    pub(crate) fn certificate(
        &self,
        height: u32,
        round: u32,
        hash: elements::BlockHash,
    ) -> CommitCertificate {
        CommitCertificate {
            height,
            round,
            block_hash: hash,
            precommits: self.signatures_for(round, hash),
        }
    }

    /// The signatures of the votes for `hash` in `round`, members ascending.
    pub(crate) fn signatures_for(
        &self,
        round: u32,
        hash: elements::BlockHash,
    ) -> Vec<(u16, CertificateSignature)> {
        self.rounds
            .get(&round)
            .map(|votes| {
                votes
                    .by_member
                    .iter()
                    .filter(|(_, (voted, _))| *voted == Some(hash))
                    .map(|(member, (_, signature))| {
                        (
                            u16::try_from(*member).unwrap_or(u16::MAX),
                            CertificateSignature::from_bytes(signature),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every vote held for `round`: `(member, value, signature)`, members ascending.
    pub(crate) fn votes_in(
        &self,
        round: u32,
    ) -> Vec<(usize, Option<elements::BlockHash>, [u8; 64])> {
        self.rounds
            .get(&round)
            .map(|votes| {
                votes
                    .by_member
                    .iter()
                    .map(|(member, (value, signature))| (*member, *value, *signature))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The largest count for one block in any round.
    pub(crate) fn best_count(&self) -> usize {
        self.rounds
            .values()
            .flat_map(|votes| votes.block_counts().into_values())
            .max()
            .unwrap_or(0)
    }
}
