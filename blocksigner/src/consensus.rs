//! The state machine: feeds inputs through the rules of [`crate::rules`] and collects effects.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::federation::Federation;
use crate::height::{HeightState, PrecommitCount};
use crate::io::{ConsensusEvent, ConsensusStatus, Effect, FinalizedVia, Input, Rejection};
use crate::message::{BlockSignature, ConsensusMessage, Precommit, Proposal, Status};
use crate::rules::{
    broadcasts_final_block, fetch_count, may_precommit, may_request_signature,
    precommit_round_in_window, proposal_time, proposer_of, round_at, round_in_window,
    round_start_ms, SignRefusal,
};
use crate::sync::{FetchTracker, FutureBuffer};

/// One member's consensus state. Pure: no IO, no clock, no randomness; see [`Consensus::handle`].
pub struct Consensus {
    federation: Arc<Federation>,
    me: usize,
    p2p_key: ed25519_dalek::SigningKey,
    tip: elements::BlockHeader,
    tip_hash: elements::BlockHash,
    /// The last (height, hash) we signed or asked our signer to sign (mirrors the signer journal).
    last_signed: Option<(u32, elements::BlockHash)>,
    /// The time of the last tick.
    now_ms: Option<u64>,
    /// The round of the last tick.
    tick_round: Option<u64>,
    /// The last round in which we proposed (at most one proposal per slot).
    last_proposed_round: Option<u64>,
    state: HeightState,
    fetch: FetchTracker,
    future: FutureBuffer,
    /// The certificate we refused to act on (reported once).
    refusal_reported: Option<elements::BlockHash>,
    /// Next-height messages to process once the current input is done.
    replay: VecDeque<(usize, ConsensusMessage)>,
    out: Vec<Effect>,
}

impl std::fmt::Debug for Consensus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The p2p signing key is deliberately left out.
        f.debug_struct("Consensus")
            .field("member", &self.me)
            .field("tip_height", &self.tip.height)
            .field("tip_hash", &self.tip_hash)
            .field("locked", &self.state.locked)
            .finish_non_exhaustive()
    }
}

impl Consensus {
    /// A member's state machine starting from its stored `tip`.
    ///
    /// `last_signed` is the signer journal's last `(height, block hash)`: when that height is `tip.height + 1`
    /// the member starts locked on that hash (R9). `member_index` must be the position of this member's
    /// block-signing key in `federation.params.sorted_keys()` (an out-of-range index never proposes and its
    /// precommits are rejected by everyone).
    pub fn new(
        federation: Arc<Federation>,
        member_index: usize,
        p2p_key: ed25519_dalek::SigningKey,
        tip: elements::BlockHeader,
        last_signed: Option<(u32, elements::BlockHash)>,
    ) -> Self {
        let tip_hash = tip.block_hash();
        let height = tip.height.saturating_add(1);
        let locked = locked_at(last_signed.as_ref(), height);
        Consensus {
            federation,
            me: member_index,
            p2p_key,
            tip,
            tip_hash,
            last_signed,
            now_ms: None,
            tick_round: None,
            last_proposed_round: None,
            state: HeightState::new(height, locked),
            fetch: FetchTracker::default(),
            future: FutureBuffer::default(),
            refusal_reported: None,
            replay: VecDeque::new(),
            out: Vec::new(),
        }
    }

    /// Processes one input; returns the effects to execute, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Effect> {
        match input {
            Input::Tick { now_ms } => self.on_tick(now_ms),
            Input::Message { from, message } => self.on_message(from, message),
            Input::BlockSigned {
                height,
                block_hash,
                signature,
            } => self.on_block_signed(height, block_hash, signature),
            Input::SignFailed {
                height,
                block_hash,
                reason,
            } => self.on_sign_failed(height, block_hash, reason),
            Input::BlocksFetched { from, blocks } => self.on_blocks_fetched(from, blocks),
        }
        while let Some((from, message)) = self.replay.pop_front() {
            self.on_message(from, message);
        }
        std::mem::take(&mut self.out)
    }

    /// Our tip (the last final block's header).
    pub fn tip(&self) -> &elements::BlockHeader {
        &self.tip
    }

    /// Our member index.
    pub fn member_index(&self) -> usize {
        self.me
    }

    /// The last (height, hash) we signed or asked to sign: what the signer journal should hold.
    pub fn last_signed(&self) -> Option<(u32, elements::BlockHash)> {
        self.last_signed
    }

    /// A snapshot for RPC and logs.
    pub fn status(&self) -> ConsensusStatus {
        let n = self.federation.member_count();
        ConsensusStatus {
            member: self.me,
            tip_height: self.tip.height,
            tip_hash: self.tip_hash,
            height: self.state.height,
            round: self.tick_round,
            proposer: self.tick_round.map(|round| proposer_of(round, n)),
            locked: self.state.locked,
            proposals: self.state.block_count(),
            best_precommit_count: self.state.best_precommit_count(),
            best_signature_count: self.state.best_signature_count(),
            fetching: self.fetch.is_outstanding(),
        }
    }

    // ----- plumbing -----

    fn emit(&mut self, effect: Effect) {
        self.out.push(effect);
    }

    fn broadcast(&mut self, message: ConsensusMessage) {
        self.emit(Effect::Broadcast(message));
    }

    fn report(&mut self, event: ConsensusEvent) {
        self.emit(Effect::Report(event));
    }

    fn reject(&mut self, from: usize, reason: Rejection) {
        self.report(ConsensusEvent::Rejected { from, reason });
    }

    fn my_member_field(&self) -> u16 {
        u16::try_from(self.me).unwrap_or(u16::MAX)
    }

    fn params(&self) -> &chain::FederationParams {
        &self.federation.params
    }

    // ----- R1-R4: ticks and proposing -----

    fn on_tick(&mut self, now_ms: u64) {
        let interval = self.federation.interval_ms();
        let round = round_at(now_ms, interval);
        self.now_ms = Some(now_ms);
        if self.tick_round != Some(round) {
            self.tick_round = Some(round);
            self.state.prune_rounds(round);
            self.broadcast(ConsensusMessage::Status(Status {
                height: self.tip.height,
                tip_hash: self.tip_hash,
            }));
            if let Some((block_hash, signature)) = self.state.my_signature.clone() {
                self.broadcast(ConsensusMessage::BlockSignature(BlockSignature {
                    height: self.state.height,
                    block_hash,
                    member: self.my_member_field(),
                    signature,
                }));
            }
            self.maybe_fetch();
        }
        let is_proposer = proposer_of(round, self.federation.member_count()) == self.me;
        if is_proposer && self.last_proposed_round.is_none_or(|last| last < round) {
            self.propose(round, now_ms);
        }
        self.emit(Effect::WakeAt {
            at_ms: round_start_ms(round.saturating_add(1), interval),
        });
    }

    fn propose(&mut self, round: u64, now_ms: u64) {
        let height = self.state.height;
        let (block, reproposal) = match self.state.locked {
            Some(locked) => match self.state.block(&locked) {
                Some(held) => (held.block.clone(), true),
                None => {
                    self.report(ConsensusEvent::ProposalSkipped {
                        height,
                        round,
                        locked,
                    });
                    return;
                }
            },
            None => {
                let start = round_start_ms(round, self.federation.interval_ms());
                let time = proposal_time(self.tip.time, start);
                (chain::build_block(self.params(), &self.tip, time), false)
            }
        };
        self.last_proposed_round = Some(round);
        let block_hash = block.block_hash();
        let genesis = self.params().genesis_hash();
        let proposal = Proposal::sign(&genesis, height, round, block, now_ms, &self.p2p_key);
        self.report(ConsensusEvent::Proposed {
            height,
            round,
            block_hash,
            reproposal,
        });
        self.broadcast(ConsensusMessage::Proposal(proposal.clone()));
        let me = self.me;
        self.on_proposal(me, proposal);
    }

    // ----- messages -----

    fn on_message(&mut self, from: usize, message: ConsensusMessage) {
        if from >= self.federation.member_count() {
            self.reject(from, Rejection::UnknownSender { from });
            return;
        }
        match message {
            ConsensusMessage::Proposal(proposal) => self.on_proposal(from, proposal),
            ConsensusMessage::Precommit(precommit) => self.on_precommit(from, precommit),
            ConsensusMessage::BlockSignature(signature) => self.on_block_signature(from, signature),
            ConsensusMessage::FinalBlock(block) => self.on_final_block(from, block),
            ConsensusMessage::Status(status) => self.on_status(from, status),
        }
    }

    /// Routes a message for a height above the one being decided: buffer it if it is for the next height
    /// (R16) and treat it as evidence that the sender is ahead (R14). Returns true if the message was
    /// routed away (not for the current height).
    fn route_by_height(
        &mut self,
        from: usize,
        height: u32,
        message: impl FnOnce() -> ConsensusMessage,
    ) -> bool {
        if height < self.state.height {
            return true; // stale: ignored silently
        }
        if height == self.state.height {
            return false;
        }
        if height == self.state.height.saturating_add(1) && !self.future.push(from, message()) {
            self.reject(from, Rejection::FutureBufferFull { from });
        }
        // A message about height `height` means its sender's tip is at least `height - 1`.
        self.fetch.note_peer_height(from, height.saturating_sub(1));
        self.maybe_fetch();
        true
    }

    /// R5.
    fn on_proposal(&mut self, from: usize, proposal: Proposal) {
        if self.route_by_height(from, proposal.height, || {
            ConsensusMessage::Proposal(proposal.clone())
        }) {
            return;
        }
        let Some(current) = self.tick_round else {
            self.reject(from, Rejection::NoClock);
            return;
        };
        let expected = proposer_of(proposal.round, self.federation.member_count());
        if from != expected {
            self.reject(
                from,
                Rejection::WrongProposer {
                    round: proposal.round,
                    expected,
                    from,
                },
            );
            return;
        }
        if !round_in_window(proposal.round, current) {
            self.reject(
                from,
                Rejection::RoundOutOfWindow {
                    round: proposal.round,
                    current,
                },
            );
            return;
        }
        let genesis = self.params().genesis_hash();
        let signed = self
            .federation
            .p2p_key(expected)
            .is_some_and(|key| proposal.verify(&genesis, key));
        if !signed {
            self.reject(
                from,
                Rejection::BadProposalSignature {
                    round: proposal.round,
                    proposer: expected,
                },
            );
            return;
        }
        let header = &proposal.block.header;
        if header.height != proposal.height {
            let reason = Rejection::HeightMismatch {
                message_height: proposal.height,
                block_height: header.height,
            };
            self.reject(from, reason);
            return;
        }
        if header.prev_blockhash != self.tip_hash {
            let reason = Rejection::WrongParent {
                expected: self.tip_hash,
                got: header.prev_blockhash,
            };
            self.reject(from, reason);
            return;
        }
        let block_hash = proposal.block.block_hash();
        match self.state.proposal_in_round(proposal.round) {
            Some(existing) if *existing == block_hash => return, // duplicate delivery
            Some(_) => {
                self.reject(
                    from,
                    Rejection::EquivocatingProposal {
                        round: proposal.round,
                    },
                );
                return;
            }
            None => {}
        }
        let newly_held = self.state.block(&block_hash).is_none();
        if newly_held {
            if let Err(error) = chain::validate_proposal(self.params(), &self.tip, &proposal.block)
            {
                self.reject(from, Rejection::InvalidProposal(error.to_string()));
                return;
            }
        }
        let round = proposal.round;
        self.state
            .add_proposal(round, proposal.block, proposal.proposed_at_ms);
        self.report(ConsensusEvent::ProposalAccepted {
            from,
            height: proposal.height,
            round,
            block_hash,
        });
        if newly_held {
            self.check_pending_signatures(block_hash);
        }
        self.try_precommit(round, block_hash);
        if let Some(certificate_round) = self.state.certificate_round(&block_hash) {
            self.try_request_signature(block_hash, certificate_round);
        }
        self.try_finalize(block_hash);
    }

    /// R6.
    fn try_precommit(&mut self, round: u64, block_hash: elements::BlockHash) {
        if self.me >= self.federation.member_count() {
            return; // not a member: nothing we say would count
        }
        if !may_precommit(self.state.precommit_history(round), round, &block_hash) {
            return;
        }
        let height = self.state.height;
        let genesis = self.params().genesis_hash();
        let precommit = Precommit::sign(
            &genesis,
            height,
            round,
            block_hash,
            self.my_member_field(),
            &self.p2p_key,
        );
        self.state.record_my_precommit(round, block_hash);
        self.report(ConsensusEvent::Precommitted {
            height,
            round,
            block_hash,
        });
        self.broadcast(ConsensusMessage::Precommit(precommit));
        let me = self.me;
        self.count_precommit(me, round, block_hash);
    }

    /// R7.
    fn on_precommit(&mut self, from: usize, precommit: Precommit) {
        if !self.check_member_field(from, precommit.member) {
            return;
        }
        if self.route_by_height(from, precommit.height, || {
            ConsensusMessage::Precommit(precommit.clone())
        }) {
            return;
        }
        let Some(current) = self.tick_round else {
            self.reject(from, Rejection::NoClock);
            return;
        };
        if !precommit_round_in_window(precommit.round, current) {
            self.reject(
                from,
                Rejection::PrecommitRoundOutOfWindow {
                    round: precommit.round,
                    current,
                },
            );
            return;
        }
        let genesis = self.params().genesis_hash();
        let valid = self
            .federation
            .p2p_key(from)
            .is_some_and(|key| precommit.verify(&genesis, key));
        if !valid {
            self.reject(
                from,
                Rejection::BadPrecommitSignature {
                    member: precommit.member,
                },
            );
            return;
        }
        self.count_precommit(from, precommit.round, precommit.block_hash);
    }

    /// R8: counts a verified precommit and acts on a certificate.
    fn count_precommit(&mut self, member: usize, round: u64, block_hash: elements::BlockHash) {
        match self.state.count_precommit(round, block_hash, member) {
            PrecommitCount::Counted(count) => {
                if count >= self.federation.threshold() {
                    self.state.mark_certified(block_hash, round);
                    self.try_request_signature(block_hash, round);
                }
            }
            PrecommitCount::Duplicate => {}
            PrecommitCount::Equivocation => {
                let member = u16::try_from(member).unwrap_or(u16::MAX);
                self.reject(
                    usize::from(member),
                    Rejection::EquivocatingPrecommit { member, round },
                );
            }
        }
    }

    /// R9: asks the signer once we hold a certified block we may sign.
    fn try_request_signature(&mut self, block_hash: elements::BlockHash, round: u64) {
        if self.state.block(&block_hash).is_none() || self.state.sign_requested.is_some() {
            return;
        }
        let height = self.state.height;
        let lock_allows = self.state.locked.is_none_or(|locked| locked == block_hash);
        let refusal = match may_request_signature(self.last_signed.as_ref(), height, &block_hash) {
            Ok(()) if lock_allows => None,
            Ok(()) => Some(SignRefusal::OtherBlockAtHeight),
            Err(refusal) => Some(refusal),
        };
        if let Some(refusal) = refusal {
            if self.refusal_reported != Some(block_hash) {
                self.refusal_reported = Some(block_hash);
                let reason = match refusal {
                    SignRefusal::OtherBlockAtHeight => "locked on another block at this height",
                    SignRefusal::HigherHeightSigned => "already signed at a higher height",
                };
                self.report(ConsensusEvent::SigningRefused {
                    height,
                    block_hash,
                    reason: reason.to_string(),
                });
            }
            return;
        }
        self.last_signed = Some((height, block_hash));
        self.state.locked = Some(block_hash);
        self.state.sign_requested = Some(block_hash);
        self.report(ConsensusEvent::SigningRequested {
            height,
            round,
            block_hash,
        });
        self.emit(Effect::SignBlock { height, block_hash });
    }

    /// R10.
    fn on_sign_failed(&mut self, height: u32, block_hash: elements::BlockHash, reason: String) {
        if height == self.state.height && self.state.sign_requested == Some(block_hash) {
            // Stay locked; a later certificate for the same block may retry.
            self.state.sign_requested = None;
        }
        self.report(ConsensusEvent::SignFailed {
            height,
            block_hash,
            reason,
        });
    }

    /// R11: our own signature.
    fn on_block_signed(
        &mut self,
        height: u32,
        block_hash: elements::BlockHash,
        signature: Vec<u8>,
    ) {
        if height < self.state.height {
            return; // the height was decided meanwhile
        }
        let me = self.me;
        if height != self.state.height || self.state.sign_requested != Some(block_hash) {
            self.reject(me, Rejection::UnexpectedSignerResult { height, block_hash });
            return;
        }
        let Some(held) = self.state.block(&block_hash) else {
            self.reject(me, Rejection::UnexpectedSignerResult { height, block_hash });
            return;
        };
        if let Err(error) =
            chain::verify_member_signature(self.params(), &held.block.header, me, &signature)
        {
            let reason = Rejection::BadBlockSignature {
                member: self.my_member_field(),
                reason: error.to_string(),
            };
            self.reject(me, reason);
            return;
        }
        self.state.my_signature = Some((block_hash, signature.clone()));
        self.report(ConsensusEvent::Signed { height, block_hash });
        self.broadcast(ConsensusMessage::BlockSignature(BlockSignature {
            height,
            block_hash,
            member: self.my_member_field(),
            signature: signature.clone(),
        }));
        self.state.add_signature(block_hash, me, signature);
        self.try_finalize(block_hash);
    }

    /// R11: a peer's signature.
    fn on_block_signature(&mut self, from: usize, signature: BlockSignature) {
        if !self.check_member_field(from, signature.member) {
            return;
        }
        if self.route_by_height(from, signature.height, || {
            ConsensusMessage::BlockSignature(signature.clone())
        }) {
            return;
        }
        let block_hash = signature.block_hash;
        if self.state.has_signature(&block_hash, from) {
            return;
        }
        if self.state.block(&block_hash).is_none() {
            if !self
                .state
                .buffer_signature(from, block_hash, signature.signature)
            {
                self.reject(
                    from,
                    Rejection::SignatureBufferFull {
                        member: signature.member,
                    },
                );
            }
            return;
        }
        self.accept_block_signature(from, block_hash, signature.signature);
        self.try_finalize(block_hash);
    }

    /// Verifies and counts a signature on a held block.
    fn accept_block_signature(
        &mut self,
        member: usize,
        block_hash: elements::BlockHash,
        signature: Vec<u8>,
    ) {
        let Some(held) = self.state.block(&block_hash) else {
            return;
        };
        match chain::verify_member_signature(self.params(), &held.block.header, member, &signature)
        {
            Ok(()) => {
                self.state.add_signature(block_hash, member, signature);
            }
            Err(error) => {
                let member_field = u16::try_from(member).unwrap_or(u16::MAX);
                self.reject(
                    member,
                    Rejection::BadBlockSignature {
                        member: member_field,
                        reason: error.to_string(),
                    },
                );
            }
        }
    }

    fn check_pending_signatures(&mut self, block_hash: elements::BlockHash) {
        for (member, signature) in self.state.take_pending_signatures(&block_hash) {
            self.accept_block_signature(member, block_hash, signature);
        }
    }

    /// Checks that a message's member field is in range and names the sender.
    fn check_member_field(&mut self, from: usize, member: u16) -> bool {
        if usize::from(member) >= self.federation.member_count() {
            self.reject(from, Rejection::MemberOutOfRange { member });
            return false;
        }
        if usize::from(member) != from {
            self.reject(from, Rejection::MemberMismatch { member, from });
            return false;
        }
        true
    }

    // ----- R12-R13: finality -----

    /// R12: assembles and stores the block once m signatures are counted.
    fn try_finalize(&mut self, block_hash: elements::BlockHash) {
        let threshold = self.federation.threshold();
        let Some(held) = self.state.block(&block_hash) else {
            return;
        };
        let mut signatures = self.state.signatures_on(&block_hash);
        if signatures.len() < threshold {
            return;
        }
        signatures.truncate(threshold);
        let mut block = held.block.clone();
        let me = self.me;
        if let Err(error) = chain::attach_signatures(self.params(), &mut block.header, &signatures)
        {
            self.reject(me, Rejection::AssemblyFailed(error.to_string()));
            return;
        }
        match chain::validate_final_block(self.params(), &self.tip, &block) {
            Ok(signers) => self.finalize(block, signers, FinalizedVia::Signatures),
            Err(error) => self.reject(me, Rejection::AssemblyFailed(error.to_string())),
        }
    }

    /// R13.
    fn on_final_block(&mut self, from: usize, block: elements::Block) {
        let height = block.header.height;
        if height <= self.tip.height {
            let theirs = block.block_hash();
            if height == self.tip.height && theirs != self.tip_hash {
                self.reject(
                    from,
                    Rejection::ConflictingBlock {
                        height,
                        ours: self.tip_hash,
                        theirs,
                    },
                );
            }
            return;
        }
        if height > self.state.height {
            self.fetch.note_peer_height(from, height);
            self.maybe_fetch();
            return;
        }
        match chain::validate_final_block(self.params(), &self.tip, &block) {
            Ok(signers) => self.finalize(block, signers, FinalizedVia::FinalBlockMessage),
            Err(error) => self.reject(
                from,
                Rejection::InvalidFinalBlock {
                    height,
                    reason: error.to_string(),
                },
            ),
        }
    }

    /// Stores a validated final block and advances the tip.
    fn finalize(&mut self, block: elements::Block, signers: Vec<usize>, via: FinalizedVia) {
        let block_hash = block.block_hash();
        let height = block.header.height;
        let (round, proposed_at_ms) = match self.state.block(&block_hash) {
            Some(held) => (Some(held.round), Some(held.proposed_at_ms)),
            None => (None, None),
        };
        let header = block.header.clone();
        let n = self.federation.member_count();
        let announce = via == FinalizedVia::Signatures
            && round.is_some_and(|round| broadcasts_final_block(self.me, round, n));
        if announce {
            self.emit(Effect::StoreBlock(block.clone()));
            self.broadcast(ConsensusMessage::FinalBlock(block));
        } else {
            self.emit(Effect::StoreBlock(block));
        }
        self.report(ConsensusEvent::Finalized {
            height,
            block_hash,
            round,
            signers,
            proposed_at_ms,
            via,
        });
        self.advance(header);
    }

    fn advance(&mut self, header: elements::BlockHeader) {
        self.tip_hash = header.block_hash();
        self.tip = header;
        let height = self.tip.height.saturating_add(1);
        self.state = HeightState::new(height, locked_at(self.last_signed.as_ref(), height));
        if let Some(round) = self.tick_round {
            self.state.prune_rounds(round);
        }
        self.refusal_reported = None;
        self.replay.extend(self.future.take_for_height(height));
    }

    // ----- R14-R15: catch-up -----

    fn on_status(&mut self, from: usize, status: Status) {
        if status.height > self.tip.height {
            self.fetch.note_peer_height(from, status.height);
            self.maybe_fetch();
        } else if status.height == self.tip.height && status.tip_hash != self.tip_hash {
            self.report(ConsensusEvent::ConflictingTip {
                from,
                height: status.height,
                ours: self.tip_hash,
                theirs: status.tip_hash,
            });
        }
    }

    fn maybe_fetch(&mut self) {
        let Some((peer_height, peer)) = self.fetch.ahead_of(self.tip.height) else {
            return;
        };
        let now = self.now_ms.unwrap_or(0);
        if !self.fetch.may_fetch(now, self.federation.interval_ms()) {
            return;
        }
        self.fetch.sent(now, peer);
        self.emit(Effect::FetchBlocks {
            from: peer,
            start_height: self.state.height,
            count: fetch_count(self.tip.height, peer_height),
        });
    }

    fn on_blocks_fetched(&mut self, from: usize, blocks: Vec<elements::Block>) {
        if from >= self.federation.member_count() {
            self.reject(from, Rejection::UnknownSender { from });
            return;
        }
        self.fetch.answered();
        let mut progressed = false;
        for block in blocks {
            let height = block.header.height;
            if height <= self.tip.height {
                let theirs = block.block_hash();
                if height == self.tip.height && theirs != self.tip_hash {
                    self.reject(
                        from,
                        Rejection::ConflictingBlock {
                            height,
                            ours: self.tip_hash,
                            theirs,
                        },
                    );
                    break;
                }
                continue;
            }
            if height != self.state.height {
                self.reject(
                    from,
                    Rejection::FetchedBlockGap {
                        expected: self.state.height,
                        got: height,
                    },
                );
                break;
            }
            match chain::validate_final_block(self.params(), &self.tip, &block) {
                Ok(signers) => {
                    self.finalize(block, signers, FinalizedVia::Fetch);
                    progressed = true;
                }
                Err(error) => {
                    self.reject(
                        from,
                        Rejection::InvalidFinalBlock {
                            height,
                            reason: error.to_string(),
                        },
                    );
                    break;
                }
            }
        }
        if progressed {
            self.maybe_fetch();
        } else {
            self.fetch.forget_peer(from);
        }
    }
}

/// The lock implied by the signer journal at `height` (R9).
fn locked_at(
    last_signed: Option<&(u32, elements::BlockHash)>,
    height: u32,
) -> Option<elements::BlockHash> {
    last_signed
        .filter(|(signed_height, _)| *signed_height == height)
        .map(|(_, hash)| *hash)
}
