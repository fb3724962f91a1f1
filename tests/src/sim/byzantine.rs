//! Byzantine members: they run the real state machine (so their messages are well-formed and timely) and then
//! lie with their own keys: equivocating proposals, conflicting votes, signatures on every block they see,
//! invalid blocks, replays of old messages, withholding, and messages for future heights.

use std::collections::BTreeMap;

use blocksigner::{BlockSignature, ConsensusMessage, Proposal, Vote, VoteKind};
use rand::Rng;

use super::Simulation;

/// What one Byzantine member does (a random non-empty mix per member and seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Behaviour {
    /// As proposer, sends different valid blocks to different members.
    pub equivocate: bool,
    /// Votes for different values towards different members.
    pub conflicting_votes: bool,
    /// Signs (with its block key) every block it sees and sends the signatures.
    pub sign_everything: bool,
    /// As proposer, sometimes proposes an invalid block.
    pub invalid_blocks: bool,
    /// Re-sends old messages it received or sent.
    pub replay: bool,
    /// Drops some of its own messages.
    pub withhold: bool,
    /// Sends signed votes and proposals for heights and rounds far ahead.
    pub future_messages: bool,
    /// Coordinated with the other Byzantine members: shows even-indexed members one block and odd-indexed
    /// members another (the lowest and highest hash it knows at the height) in proposals and votes, and signs
    /// both: the attack that forks a chain once Byzantine members exceed the safety bound.
    pub split_brain: bool,
}

impl Behaviour {
    /// A random non-empty mix.
    pub fn random(rng: &mut impl Rng) -> Self {
        loop {
            let b = Behaviour {
                equivocate: rng.gen_bool(0.5),
                conflicting_votes: rng.gen_bool(0.5),
                sign_everything: rng.gen_bool(0.5),
                invalid_blocks: rng.gen_bool(0.3),
                replay: rng.gen_bool(0.4),
                withhold: rng.gen_bool(0.3),
                future_messages: rng.gen_bool(0.3),
                split_brain: rng.gen_bool(0.3),
            };
            if b != Behaviour::honest() {
                return b;
            }
        }
    }

    fn honest() -> Self {
        Behaviour {
            equivocate: false,
            conflicting_votes: false,
            sign_everything: false,
            invalid_blocks: false,
            replay: false,
            withhold: false,
            future_messages: false,
            split_brain: false,
        }
    }

    /// Only the coordinated split-brain attack, with signatures on everything.
    pub fn split_brain() -> Self {
        Behaviour {
            split_brain: true,
            sign_everything: true,
            equivocate: true,
            ..Behaviour::honest()
        }
    }
}

/// What a Byzantine member remembers to lie with.
#[derive(Default)]
pub(super) struct ByzantineState {
    /// Messages it received (bounded), for replays.
    log: Vec<ConsensusMessage>,
    /// Blocks it saw proposed, by height (bounded per height).
    blocks: BTreeMap<u32, Vec<elements::Block>>,
}

const LOG_LIMIT: usize = 256;
const BLOCKS_PER_HEIGHT: usize = 8;

impl ByzantineState {
    pub(super) fn observe(&mut self, message: &ConsensusMessage) {
        if self.log.len() >= LOG_LIMIT {
            self.log.remove(0);
        }
        self.log.push(message.clone());
        if let ConsensusMessage::Proposal(p) = message {
            self.remember(p.block.clone());
        }
    }

    fn remember(&mut self, block: elements::Block) {
        let height = block.header.height;
        let list = self.blocks.entry(height).or_default();
        if list.len() < BLOCKS_PER_HEIGHT
            && !list.iter().any(|b| b.block_hash() == block.block_hash())
        {
            list.push(block);
        }
        while self.blocks.len() > 4 {
            self.blocks.pop_first();
        }
    }
}

impl Simulation {
    /// A Byzantine member's outgoing broadcast, after its lies.
    pub(super) fn byzantine_broadcast(&mut self, member: usize, message: ConsensusMessage) {
        let Some(behaviour) = self.members[member].behaviour else {
            return;
        };
        if behaviour.withhold && self.rng.gen_bool(0.4) {
            return;
        }
        let genesis = self.fed.params().genesis_hash();
        let key = self.fed.p2p_secrets[member].clone();
        let others: Vec<usize> = (0..self.config.n).filter(|&i| i != member).collect();
        if behaviour.split_brain && self.split_brain_broadcast(member, &message) {
            return;
        }
        match message {
            ConsensusMessage::Proposal(p) => {
                self.members[member].byzantine.remember(p.block.clone());
                let mut main = p.clone();
                if behaviour.invalid_blocks && self.rng.gen_bool(0.5) {
                    let mut block = p.block.clone();
                    block.header.merkle_root = elements::TxMerkleNode::from_byte_array([0x42; 32]);
                    main = Proposal::sign(
                        &genesis,
                        p.height,
                        p.round,
                        p.valid_round,
                        block,
                        p.proposed_at_ms,
                        &key,
                    );
                }
                if behaviour.equivocate {
                    let mut block = p.block.clone();
                    block.header.time = block
                        .header
                        .time
                        .saturating_add(1 + self.rng.gen_range(0..3));
                    self.members[member].byzantine.remember(block.clone());
                    let twin = Proposal::sign(
                        &genesis,
                        p.height,
                        p.round,
                        None,
                        block,
                        p.proposed_at_ms,
                        &key,
                    );
                    for to in others {
                        let which = if self.rng.gen_bool(0.5) { &main } else { &twin };
                        self.send(member, to, ConsensusMessage::Proposal(which.clone()));
                    }
                } else {
                    for to in others {
                        self.send(member, to, ConsensusMessage::Proposal(main.clone()));
                    }
                }
            }
            ConsensusMessage::Vote(v) if behaviour.conflicting_votes => {
                let alternatives: Vec<Option<elements::BlockHash>> = std::iter::once(None)
                    .chain(
                        self.members[member]
                            .byzantine
                            .blocks
                            .get(&v.height)
                            .into_iter()
                            .flatten()
                            .map(|b| Some(b.block_hash())),
                    )
                    .filter(|alt| *alt != v.block_hash)
                    .collect();
                for to in others {
                    let vote = if self.rng.gen_bool(0.5) && !alternatives.is_empty() {
                        let value = alternatives[self.rng.gen_range(0..alternatives.len())];
                        Vote::sign(&genesis, v.kind, v.height, v.round, value, v.member, &key)
                    } else {
                        v.clone()
                    };
                    self.send(member, to, ConsensusMessage::Vote(vote));
                }
            }
            ConsensusMessage::BlockSignature(s) if behaviour.sign_everything => {
                self.send_all(member, ConsensusMessage::BlockSignature(s.clone()));
                self.sign_all_seen(member, s.height);
            }
            other => self.send_all(member, other),
        }
    }

    /// The two sides' blocks at `height`: (even side, odd side), if it knows two.
    fn split_blocks(
        &self,
        member: usize,
        height: u32,
    ) -> Option<(elements::Block, elements::Block)> {
        let mut blocks: Vec<elements::Block> = self.members[member]
            .byzantine
            .blocks
            .get(&height)
            .cloned()
            .unwrap_or_default();
        blocks.sort_by_key(|b| b.block_hash());
        let first = blocks.first()?.clone();
        let last = blocks.last()?.clone();
        (first.block_hash() != last.block_hash()).then_some((first, last))
    }

    /// Split-brain lies; true if the message was handled.
    fn split_brain_broadcast(&mut self, member: usize, message: &ConsensusMessage) -> bool {
        let genesis = self.fed.params().genesis_hash();
        let key = self.fed.p2p_secrets[member].clone();
        match message {
            ConsensusMessage::Proposal(p) => {
                // Make sure two blocks exist at this height.
                let mut twin = p.block.clone();
                twin.header.time = twin.header.time.saturating_add(1);
                self.members[member].byzantine.remember(p.block.clone());
                self.members[member].byzantine.remember(twin);
                let Some((even, odd)) = self.split_blocks(member, p.height) else {
                    return false;
                };
                for to in (0..self.config.n).filter(|&i| i != member) {
                    let block = if to % 2 == 0 {
                        even.clone()
                    } else {
                        odd.clone()
                    };
                    let proposal = Proposal::sign(
                        &genesis,
                        p.height,
                        p.round,
                        None,
                        block,
                        p.proposed_at_ms,
                        &key,
                    );
                    self.send(member, to, ConsensusMessage::Proposal(proposal));
                }
                true
            }
            ConsensusMessage::Vote(v) => {
                let Some((even, odd)) = self.split_blocks(member, v.height) else {
                    return false;
                };
                for to in (0..self.config.n).filter(|&i| i != member) {
                    let hash = if to % 2 == 0 {
                        even.block_hash()
                    } else {
                        odd.block_hash()
                    };
                    let vote = Vote::sign(
                        &genesis,
                        v.kind,
                        v.height,
                        v.round,
                        Some(hash),
                        v.member,
                        &key,
                    );
                    self.send(member, to, ConsensusMessage::Vote(vote));
                }
                true
            }
            ConsensusMessage::BlockSignature(s) => {
                self.sign_all_seen(member, s.height);
                true
            }
            _ => false,
        }
    }

    /// Signs every block seen at `height` and sends the signatures.
    fn sign_all_seen(&mut self, member: usize, height: u32) {
        let blocks: Vec<elements::BlockHash> = self.members[member]
            .byzantine
            .blocks
            .get(&height)
            .into_iter()
            .flatten()
            .map(|b| b.block_hash())
            .collect();
        for hash in blocks {
            let signature = self.fed.sign_digest(member, &hash);
            self.checker.on_any_signature(member, height, hash);
            let message = ConsensusMessage::BlockSignature(BlockSignature {
                height,
                block_hash: hash,
                member: member as u16,
                signature,
            });
            self.send_all(member, message);
        }
    }

    /// Unprompted lies, at random times.
    pub(super) fn byzantine_act(&mut self, member: usize) {
        let Some(behaviour) = self.members[member].behaviour else {
            return;
        };
        let Some(height) = self.members[member]
            .consensus
            .as_ref()
            .map(|c| c.tip().height + 1)
        else {
            return;
        };
        let genesis = self.fed.params().genesis_hash();
        let key = self.fed.p2p_secrets[member].clone();
        if behaviour.replay && !self.members[member].byzantine.log.is_empty() {
            let log = &self.members[member].byzantine.log;
            let message = log[self.rng.gen_range(0..log.len())].clone();
            let to = self.rng.gen_range(0..self.config.n);
            if to != member {
                self.send(member, to, message);
            }
        }
        if behaviour.sign_everything {
            self.sign_all_seen(member, height);
        }
        if behaviour.future_messages {
            let ahead = height.saturating_add(self.rng.gen_range(0..50));
            let round = if self.rng.gen_bool(0.5) {
                self.rng.gen_range(0..4)
            } else {
                self.rng.gen::<u32>()
            };
            let kind = if self.rng.gen_bool(0.5) {
                VoteKind::Prevote
            } else {
                VoteKind::Precommit
            };
            let value = self
                .rng
                .gen_bool(0.5)
                .then(|| elements::BlockHash::from_byte_array(self.rng.gen()));
            let vote = Vote::sign(&genesis, kind, ahead, round, value, member as u16, &key);
            self.send_all(member, ConsensusMessage::Vote(vote));
        }
    }
}
