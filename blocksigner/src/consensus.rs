//! The state machine: feeds inputs through the rules of [`crate::rules`] and collects effects.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::certificate::CommitCertificate;
use crate::content::{BlockContent, ContentError, EmptyBlocks};
use crate::federation::Federation;
use crate::height::{HeightState, Step, Timer};
use crate::io::{ConsensusEvent, ConsensusStatus, Effect, FinalizedVia, Input, Rejection};
use crate::message::{BlockSignature, Commit, ConsensusMessage, Proposal, Status, Vote, VoteKind};
use crate::record::{CastVote, ConsensusRecord};
use crate::rules::{
    block_time, fetch_count, may_request_signature, next_slot_start, prevote_for, proposer_of,
    round_timeout_ms, skip_quorum, slot_at, PrevoteInput, SignRefusal, MAX_CLOCK_SKEW_MS,
    MAX_LATENESS,
};
use crate::sync::{FetchTracker, FutureBuffer};
use crate::votes::VoteAdded;

/// The verdict of [`Consensus::check_block`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockCheck {
    /// The block may be taken at this height.
    Valid,
    /// The block is invalid at this height (its hash is remembered as invalid).
    Invalid,
    /// The message is refused, the hash is not condemned (body mismatch, or not judgeable now).
    Refused,
}

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
    /// The slot of the last tick (R15's status is sent once per slot).
    tick_slot: Option<u64>,
    state: HeightState,
    fetch: FetchTracker,
    future: FutureBuffer,
    /// R3's lateness `g`.
    lateness: u32,
    /// The decision we refused to sign (reported once).
    refusal_reported: Option<elements::BlockHash>,
    /// Next-height messages to process once the current input is done.
    replay: VecDeque<(usize, ConsensusMessage)>,
    /// Builds our proposals and judges others' transactions.
    content: Box<dyn BlockContent>,
    out: Vec<Effect>,
}

impl std::fmt::Debug for Consensus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The p2p signing key is deliberately left out.
        f.debug_struct("Consensus")
            .field("member", &self.me)
            .field("tip_height", &self.tip.height)
            .field("tip_hash", &self.tip_hash)
            .field("round", &self.state.round)
            .field("locked", &self.state.locked)
            .finish_non_exhaustive()
    }
}

impl Consensus {
    /// A member's state machine starting from its stored `tip`.
    ///
    /// `record` is the last [`ConsensusRecord`] the daemon persisted (used when it is about `tip.height + 1`:
    /// our votes, lock and decision survive a restart). `last_signed` is the signer journal's last
    /// `(height, block hash)`: when that height is `tip.height + 1` and the record has no decision, the member
    /// acts as decided on that hash (it can only ever sign that hash at that height). `member_index` must be
    /// the position of this member's block-signing key in `federation.params.sorted_keys()`.
    pub fn new(
        federation: Arc<Federation>,
        member_index: usize,
        p2p_key: ed25519_dalek::SigningKey,
        tip: elements::BlockHeader,
        record: Option<ConsensusRecord>,
        last_signed: Option<(u32, elements::BlockHash)>,
    ) -> Self {
        let tip_hash = tip.block_hash();
        let height = tip.height.saturating_add(1);
        let mut state = HeightState::new(height);
        if let Some(record) = record.filter(|record| record.height == height) {
            state.restore(record);
            // If we voted in a round, we were past its proposal: as its proposer we already proposed, and a
            // second (different) proposal after a restart would be equivocation. Others time out instead.
            if state.my_prevote.is_some() || state.my_precommit.is_some() {
                state.proposed_round = Some(state.round);
            }
            // Our own durable votes count for us again (others may never re-send theirs to us).
            for (kind, cast) in [
                (VoteKind::Prevote, state.my_prevote.clone()),
                (VoteKind::Precommit, state.my_precommit.clone()),
            ] {
                if let Some(cast) = cast {
                    let tally = match kind {
                        VoteKind::Prevote => &mut state.prevotes,
                        VoteKind::Precommit => &mut state.precommits,
                    };
                    tally.add(
                        cast.round,
                        member_index,
                        cast.block_hash,
                        cast.signature.to_bytes(),
                    );
                    state.note_round(member_index, cast.round);
                }
            }
        }
        if let Some((signed_height, hash)) = last_signed {
            if signed_height == height && state.decided.is_none() {
                state.decided_without_certificate = Some(hash);
            }
        }
        Consensus {
            federation,
            me: member_index,
            p2p_key,
            tip,
            tip_hash,
            last_signed,
            now_ms: None,
            tick_slot: None,
            lateness: 0,
            state,
            fetch: FetchTracker::default(),
            future: FutureBuffer::default(),
            refusal_reported: None,
            replay: VecDeque::new(),
            content: Box::new(EmptyBlocks),
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
        self.progress();
        while let Some((from, message)) = self.replay.pop_front() {
            self.on_message(from, message);
            self.progress();
        }
        self.request_wake();
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

    /// What [`Effect::Persist`] last asked to store (the current height's durable state).
    pub fn record(&self) -> ConsensusRecord {
        self.state.record()
    }

    /// A snapshot for RPC and logs.
    pub fn status(&self) -> ConsensusStatus {
        let n = self.federation.member_count();
        let round = self.state.round;
        ConsensusStatus {
            member: self.me,
            tip_height: self.tip.height,
            tip_hash: self.tip_hash,
            height: self.state.height,
            round,
            step: self.state.step,
            proposer: proposer_of(self.state.height, round, n),
            locked: self.state.locked,
            decided: self.state.decided_hash(),
            proposals: self.state.block_count(),
            best_prevote_count: self.state.prevotes.best_count(),
            best_precommit_count: self.state.precommits.best_count(),
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

    fn persist(&mut self) {
        let record = self.state.record();
        self.emit(Effect::Persist(record));
    }

    fn my_member_field(&self) -> u16 {
        u16::try_from(self.me).unwrap_or(u16::MAX)
    }

    fn is_member(&self) -> bool {
        self.me < self.federation.member_count()
    }

    /// Replaces the block content (default [`EmptyBlocks`]): the daemon passes one backed by its ledger.
    pub fn with_content(mut self, content: Box<dyn BlockContent>) -> Self {
        self.content = content;
        self
    }

    fn params(&self) -> &chain::FederationParams {
        &self.federation.params
    }

    fn threshold(&self) -> usize {
        self.federation.threshold()
    }

    fn timeout(&self, round: u32) -> u64 {
        round_timeout_ms(self.federation.round_timeout_ms(), round, self.lateness)
    }

    /// R3: evidence that our timeouts are shorter than the network's delays.
    fn note_late(&mut self) {
        self.lateness = self.lateness.saturating_add(1).min(MAX_LATENESS);
    }

    /// R14: how often a member re-sends its current messages: twice the current round's timeout, so that
    /// re-sending never competes with a healthy round and slows down as rounds fail.
    fn repair_period(&self) -> u64 {
        self.timeout(self.state.round).saturating_mul(2)
    }

    fn request_wake(&mut self) {
        let interval = self.federation.interval_ms();
        let mut at = self.now_ms.map(|now| next_slot_start(now, interval));
        if let Some(timer) = self.state.next_timer_ms() {
            at = Some(at.map_or(timer, |slot| slot.min(timer)));
        }
        if let Some(at_ms) = at {
            self.emit(Effect::WakeAt { at_ms });
        }
    }

    // ----- ticks, schedule, timers -----

    fn on_tick(&mut self, now_ms: u64) {
        let interval = self.federation.interval_ms();
        self.now_ms = Some(now_ms.max(self.now_ms.unwrap_or(0)));
        let now = self.now_ms.unwrap_or(now_ms);
        let slot = slot_at(now, interval);
        if self.tick_slot != Some(slot) {
            self.tick_slot = Some(slot);
            self.broadcast(ConsensusMessage::Status(Status {
                height: self.tip.height,
                tip_hash: self.tip_hash,
            }));
            self.maybe_fetch();
        }
        self.start_height_if_ready();
        for timer in self.state.due_timers(now) {
            self.on_timer(timer);
        }
    }

    /// R1: fixes round 0's schedule and starts the round machinery once a clock is known.
    fn start_height_if_ready(&mut self) {
        let Some(now) = self.now_ms else { return };
        if self.state.started {
            return;
        }
        // A height we had already voted at before a restart is under way: no reason to wait for a slot.
        let resumed = self.state.my_prevote.is_some() || self.state.my_precommit.is_some();
        let scheduled = if resumed {
            now
        } else {
            next_slot_start(now, self.federation.interval_ms())
        };
        self.state.scheduled_start_ms = Some(scheduled);
        self.state.started = true;
        let repair_at = scheduled.saturating_add(self.repair_period());
        self.state.arm(repair_at, Timer::Repair);
        let round = self.state.round;
        self.start_round(round);
    }

    fn now(&self) -> u64 {
        self.now_ms.unwrap_or(0)
    }

    fn scheduled_start(&self) -> u64 {
        self.state.scheduled_start_ms.unwrap_or(0)
    }

    fn on_timer(&mut self, timer: Timer) {
        if timer == Timer::Repair {
            self.state.sign_backoff = false;
            self.repair();
            let at = self.now().saturating_add(self.repair_period());
            self.state.arm(at, Timer::Repair);
            return;
        }
        if self.state.decided_hash().is_some() {
            return; // R10: a decided member no longer takes part in rounds
        }
        match timer {
            Timer::ProposeAt(round) => {
                if self.state.round == round && self.state.step == Step::Propose {
                    self.propose(round);
                }
            }
            Timer::Propose(round) => {
                if self.state.round == round && self.state.step == Step::Propose {
                    self.cast(VoteKind::Prevote, None);
                }
            }
            Timer::Prevote(round) => {
                if self.state.round == round && self.state.step == Step::Prevote {
                    self.cast(VoteKind::Precommit, None);
                }
            }
            Timer::Precommit(round) => {
                if self.state.round == round {
                    self.start_round(round.saturating_add(1));
                }
            }
            Timer::Repair => {}
        }
    }

    // ----- R4: rounds and proposing -----

    fn start_round(&mut self, round: u32) {
        let height = self.state.height;
        self.state.round = round;
        self.state.step = Step::Propose;
        if self
            .state
            .my_prevote
            .as_ref()
            .is_some_and(|v| v.round == round)
        {
            self.state.step = Step::Prevote;
        }
        if self
            .state
            .my_precommit
            .as_ref()
            .is_some_and(|v| v.round == round)
        {
            self.state.step = Step::Precommit;
        }
        self.report(ConsensusEvent::RoundStarted { height, round });
        let now = self.now();
        let start = now.max(self.scheduled_start());
        let n = self.federation.member_count();
        if proposer_of(height, round, n) == self.me && self.state.proposed_round != Some(round) {
            if now >= start {
                self.propose(round);
            } else {
                self.state.arm(start, Timer::ProposeAt(round));
            }
        }
        let timeout = start.saturating_add(self.timeout(round));
        self.state.arm(timeout, Timer::Propose(round));
    }

    fn propose(&mut self, round: u32) {
        if !self.is_member() || self.state.proposed_round == Some(round) {
            return;
        }
        let height = self.state.height;
        let reproposal = self.state.valid.and_then(|(valid_round, hash)| {
            self.state.block(&hash).map(|held| (valid_round, held))
        });
        let (block, valid_round) = match reproposal {
            Some((valid_round, held)) => (held.block.clone(), Some(valid_round)),
            None => {
                let time = block_time(self.tip.time, self.scheduled_start());
                let params = Arc::clone(&self.federation);
                (self.content.build(&params.params, &self.tip, time), None)
            }
        };
        self.state.proposed_round = Some(round);
        let block_hash = block.block_hash();
        let genesis = self.params().genesis_hash();
        let now = self.now();
        let mut proposal = Proposal::sign(
            &genesis,
            height,
            round,
            valid_round,
            block,
            now,
            &self.p2p_key,
        );
        if let Some(valid_round) = valid_round {
            proposal.polka = self.state.prevotes.signatures_for(valid_round, block_hash);
        }
        self.report(ConsensusEvent::Proposed {
            height,
            round,
            block_hash,
            valid_round,
        });
        self.broadcast(ConsensusMessage::Proposal(proposal.clone()));
        let me = self.me;
        self.on_proposal(me, proposal);
    }

    /// R14: re-sends what others may have missed.
    fn repair(&mut self) {
        let height = self.state.height;
        let member = self.my_member_field();
        let round = self.state.round;
        if let Some(certificate) = self.state.decided.clone() {
            if let Some(held) = self.state.block(&certificate.block_hash) {
                let block = held.block.clone();
                self.broadcast(ConsensusMessage::Commit(Commit { certificate, block }));
            }
        }
        if let Some((block_hash, signature)) = self.state.my_signature.clone() {
            self.broadcast(ConsensusMessage::BlockSignature(BlockSignature {
                height,
                block_hash,
                member,
                signature,
            }));
        }
        if self.state.decided_hash().is_some() {
            return;
        }
        let genesis = self.params().genesis_hash();
        // Everyone's votes we hold for this round and the previous one: a member that missed them (or whose
        // author is gone) needs them to move on.
        let mut bundle = Vec::new();
        let rounds = match round.checked_sub(1) {
            Some(previous) => vec![previous, round],
            None => vec![round],
        };
        for round in rounds {
            for (kind, tally) in [
                (VoteKind::Prevote, &self.state.prevotes),
                (VoteKind::Precommit, &self.state.precommits),
            ] {
                for (voter, block_hash, signature) in tally.votes_in(round) {
                    if voter != self.me {
                        bundle.push(Vote {
                            kind,
                            height,
                            round,
                            block_hash,
                            member: u16::try_from(voter).unwrap_or(u16::MAX),
                            signature,
                        });
                    }
                }
            }
        }
        if !bundle.is_empty() {
            self.broadcast(ConsensusMessage::VoteBundle(bundle));
        }
        for (kind, cast) in [
            (VoteKind::Prevote, self.state.my_prevote.clone()),
            (VoteKind::Precommit, self.state.my_precommit.clone()),
        ] {
            if let Some(cast) = cast.filter(|cast| cast.round.saturating_add(1) >= round) {
                self.broadcast(ConsensusMessage::Vote(Vote {
                    kind,
                    height,
                    round: cast.round,
                    block_hash: cast.block_hash,
                    member,
                    signature: cast.signature.to_bytes(),
                }));
            }
        }
        let n = self.federation.member_count();
        if proposer_of(height, round, n) == self.me && self.state.proposed_round == Some(round) {
            if let Some((hash, valid_round)) = self.state.proposal(round).copied() {
                if let Some(held) = self.state.block(&hash) {
                    let mut proposal = Proposal::sign(
                        &genesis,
                        height,
                        round,
                        valid_round,
                        held.block.clone(),
                        held.proposed_at_ms,
                        &self.p2p_key,
                    );
                    if let Some(valid_round) = valid_round {
                        proposal.polka = self.state.prevotes.signatures_for(valid_round, hash);
                    }
                    self.broadcast(ConsensusMessage::Proposal(proposal));
                }
            }
        }
    }

    // ----- voting -----

    /// Signs, persists, broadcasts and counts our vote in the current round.
    fn cast(&mut self, kind: VoteKind, block_hash: Option<elements::BlockHash>) {
        let height = self.state.height;
        let round = self.state.round;
        match kind {
            VoteKind::Prevote => self.state.step = Step::Prevote,
            VoteKind::Precommit => self.state.step = Step::Precommit,
        }
        if !self.is_member() {
            return;
        }
        let already = match kind {
            VoteKind::Prevote => &self.state.my_prevote,
            VoteKind::Precommit => &self.state.my_precommit,
        };
        if already.as_ref().is_some_and(|cast| cast.round >= round) {
            return; // one vote of each kind per round, never for an older round
        }
        let genesis = self.params().genesis_hash();
        let vote = Vote::sign(
            &genesis,
            kind,
            height,
            round,
            block_hash,
            self.my_member_field(),
            &self.p2p_key,
        );
        let cast = CastVote {
            round,
            block_hash,
            signature: crate::certificate::CertificateSignature::from_bytes(&vote.signature),
        };
        match kind {
            VoteKind::Prevote => self.state.my_prevote = Some(cast),
            VoteKind::Precommit => self.state.my_precommit = Some(cast),
        }
        self.persist();
        self.report(ConsensusEvent::Voted {
            kind,
            height,
            round,
            block_hash,
        });
        self.broadcast(ConsensusMessage::Vote(vote.clone()));
        let me = self.me;
        self.count_vote(me, vote);
    }

    fn count_vote(&mut self, member: usize, vote: Vote) {
        let tally = match vote.kind {
            VoteKind::Prevote => &mut self.state.prevotes,
            VoteKind::Precommit => &mut self.state.precommits,
        };
        match tally.add(vote.round, member, vote.block_hash, vote.signature) {
            VoteAdded::Counted => self.state.note_round(member, vote.round),
            VoteAdded::Duplicate => {}
            VoteAdded::Equivocation => self.reject(
                member,
                Rejection::EquivocatingVote {
                    kind: vote.kind,
                    member: vote.member,
                    round: vote.round,
                },
            ),
        }
    }

    /// Applies the "upon" rules R6-R11 until none fires.
    fn progress(&mut self) {
        for _ in 0..64 {
            let fired = self.rule_finalize()
                || self.rule_decide()
                || self.rule_sign()
                || (self.state.decided_hash().is_none()
                    && self.state.started
                    && (self.rule_skip()
                        || self.rule_prevote()
                        || self.rule_prevote_timeout()
                        || self.rule_lock()
                        || self.rule_newer_valid()
                        || self.rule_nil_precommit()
                        || self.rule_precommit_round()));
            if !fired {
                return;
            }
        }
    }

    /// R13: any held block with `m` valid signatures.
    fn rule_finalize(&mut self) -> bool {
        let threshold = self.threshold();
        let Some(hash) = self.state.block_with_signatures(threshold) else {
            return false;
        };
        let height = self.state.height;
        self.try_finalize(hash);
        self.state.height != height
    }

    /// R10 from precommits.
    fn rule_decide(&mut self) -> bool {
        if self.state.decided.is_some() {
            return false;
        }
        let Some((round, hash)) = self.state.precommits.first_quorum(self.threshold()) else {
            return false;
        };
        if self
            .state
            .decided_without_certificate
            .is_some_and(|signed| signed != hash)
        {
            return false; // cannot happen within the safety bound; our signer would refuse anyway
        }
        let certificate = self
            .state
            .precommits
            .certificate(self.state.height, round, hash);
        self.decide(certificate);
        true
    }

    fn decide(&mut self, certificate: CommitCertificate) {
        let height = self.state.height;
        let (round, block_hash) = (certificate.round, certificate.block_hash);
        self.state.decided = Some(certificate);
        self.persist();
        self.report(ConsensusEvent::Decided {
            height,
            round,
            block_hash,
        });
    }

    /// R11.
    fn rule_sign(&mut self) -> bool {
        let Some(block_hash) = self.state.decided_hash() else {
            return false;
        };
        if self.state.sign_requested.is_some()
            || self.state.sign_backoff
            || self.state.my_signature.is_some()
            || self.state.block(&block_hash).is_none()
            || !self.is_member()
        {
            return false;
        }
        let height = self.state.height;
        if let Err(refusal) = may_request_signature(self.last_signed.as_ref(), height, &block_hash)
        {
            if self.refusal_reported != Some(block_hash) {
                self.refusal_reported = Some(block_hash);
                let reason = match refusal {
                    SignRefusal::OtherBlockAtHeight => "signed another block at this height",
                    SignRefusal::HigherHeightSigned => "already signed at a higher height",
                };
                self.report(ConsensusEvent::SigningRefused {
                    height,
                    block_hash,
                    reason: reason.to_string(),
                });
            }
            return false;
        }
        self.last_signed = Some((height, block_hash));
        self.state.sign_requested = Some(block_hash);
        self.report(ConsensusEvent::SigningRequested { height, block_hash });
        let certificate = self.state.decided.clone();
        self.emit(Effect::SignBlock {
            height,
            block_hash,
            certificate,
        });
        true
    }

    /// R9: skip to a later round that `n - m + 1` members are in.
    fn rule_skip(&mut self) -> bool {
        let quorum = skip_quorum(self.federation.member_count(), self.threshold());
        let mut rounds: Vec<u32> = self.state.highest_round_seen.values().copied().collect();
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        let Some(target) = rounds.get(quorum.saturating_sub(1)).copied() else {
            return false;
        };
        if target <= self.state.round {
            return false;
        }
        self.start_round(target);
        true
    }

    /// R6.
    fn rule_prevote(&mut self) -> bool {
        if self.state.step != Step::Propose {
            return false;
        }
        let round = self.state.round;
        let Some((hash, valid_round)) = self.state.proposal(round).copied() else {
            return false;
        };
        let block_valid = self.state.block(&hash).is_some() && !self.state.is_invalid(&hash);
        let polka_in_valid_round = self.state.polka_carried(round)
            || valid_round
                .is_some_and(|vr| self.state.prevotes.count(vr, Some(&hash)) >= self.threshold());
        let locked = self.state.locked;
        let choice = prevote_for(PrevoteInput {
            block: &hash,
            block_valid,
            valid_round,
            round,
            polka_in_valid_round,
            locked: locked.as_ref().map(|(r, h)| (*r, h)),
        });
        match choice {
            Some(value) => {
                self.cast(VoteKind::Prevote, value);
                true
            }
            None => false,
        }
    }

    /// R7: arm the prevote timeout.
    fn rule_prevote_timeout(&mut self) -> bool {
        let round = self.state.round;
        if self.state.step != Step::Prevote
            || self.state.prevote_timeout_armed == Some(round)
            || self.state.prevotes.total(round) < self.threshold()
        {
            return false;
        }
        self.state.prevote_timeout_armed = Some(round);
        let at = self.now().saturating_add(self.timeout(round));
        self.state.arm(at, Timer::Prevote(round));
        true
    }

    /// R8: lock and precommit on a polka for this round's proposal.
    fn rule_lock(&mut self) -> bool {
        let round = self.state.round;
        if self.state.step < Step::Prevote || self.state.lock_rule_done == Some(round) {
            return false;
        }
        let Some((hash, _)) = self.state.proposal(round).copied() else {
            return false;
        };
        if self.state.block(&hash).is_none()
            || self.state.is_invalid(&hash)
            || self.state.prevotes.count(round, Some(&hash)) < self.threshold()
        {
            return false;
        }
        self.state.lock_rule_done = Some(round);
        let precommitted_nil = self
            .state
            .my_precommit
            .as_ref()
            .is_some_and(|v| v.round == round && v.block_hash.is_none());
        if precommitted_nil {
            self.note_late();
        }
        if self.state.step == Step::Prevote {
            self.state.locked = Some((round, hash));
            self.report(ConsensusEvent::Locked {
                height: self.state.height,
                round,
                block_hash: hash,
            });
            self.cast(VoteKind::Precommit, Some(hash));
        }
        self.state.valid = Some((round, hash));
        true
    }

    /// R8': any newer polka for a block we hold becomes our valid block (what we re-propose). Tendermint only
    /// looks at the current round; taking a polka of any later round is equally safe (the valid block is
    /// only ever proposed, with its polka, and every member applies R6 to it) and gets a split federation
    /// back together sooner.
    fn rule_newer_valid(&mut self) -> bool {
        let threshold = self.threshold();
        let newer = self
            .state
            .prevotes
            .quorums(threshold)
            .into_iter()
            .filter(|(round, hash)| {
                self.state
                    .valid
                    .is_none_or(|(valid_round, _)| *round > valid_round)
                    && self.state.block(hash).is_some()
                    && !self.state.is_invalid(hash)
            })
            .max_by_key(|(round, _)| *round);
        match newer {
            Some(valid) => {
                self.state.valid = Some(valid);
                true
            }
            None => false,
        }
    }

    /// R8: precommit nil on `m` nil prevotes.
    fn rule_nil_precommit(&mut self) -> bool {
        let round = self.state.round;
        if self.state.step != Step::Prevote
            || self.state.prevotes.count(round, None) < self.threshold()
        {
            return false;
        }
        self.cast(VoteKind::Precommit, None);
        true
    }

    /// R9: next round on `m` nil precommits, or arm the precommit timeout on `m` precommits.
    fn rule_precommit_round(&mut self) -> bool {
        let round = self.state.round;
        if self.state.precommits.count(round, None) >= self.threshold() {
            self.start_round(round.saturating_add(1));
            return true;
        }
        let next_proposer = proposer_of(
            self.state.height,
            round.saturating_add(1),
            self.federation.member_count(),
        );
        if next_proposer == self.me && self.state.precommits.total(round) >= self.threshold() {
            // The next round's proposer does not wait for the timeout: its proposal is what the others will
            // need first when they get there (round changes never touch safety).
            self.start_round(round.saturating_add(1));
            return true;
        }
        if self.state.precommit_timeout_armed != Some(round)
            && self.state.precommits.total(round) >= self.threshold()
        {
            self.state.precommit_timeout_armed = Some(round);
            let at = self.now().saturating_add(self.timeout(round));
            self.state.arm(at, Timer::Precommit(round));
            return true;
        }
        false
    }

    // ----- messages -----

    fn on_message(&mut self, from: usize, message: ConsensusMessage) {
        if from >= self.federation.member_count() {
            self.reject(from, Rejection::UnknownSender { from });
            return;
        }
        match message {
            ConsensusMessage::Proposal(proposal) => self.on_proposal(from, proposal),
            ConsensusMessage::Vote(vote) => self.on_vote(from, vote),
            ConsensusMessage::BlockSignature(signature) => self.on_block_signature(from, signature),
            ConsensusMessage::Commit(commit) => self.on_commit(from, commit),
            ConsensusMessage::FinalBlock(block) => self.on_final_block(from, block),
            ConsensusMessage::Status(status) => self.on_status(from, status),
            ConsensusMessage::VoteBundle(votes) => self.on_vote_bundle(from, votes),
        }
    }

    /// Routes a message for another height: stale ones are ignored, next-height ones buffered (R16), and
    /// any above is evidence that the sender is ahead (R15). Returns true if the message was routed away.
    fn route_by_height(
        &mut self,
        from: usize,
        height: u32,
        message: impl FnOnce() -> ConsensusMessage,
    ) -> bool {
        if height < self.state.height {
            return true;
        }
        if height == self.state.height {
            return false;
        }
        if height == self.state.height.saturating_add(1) && !self.future.push(from, message()) {
            self.reject(from, Rejection::FutureBufferFull { from });
        }
        self.fetch.note_peer_height(from, height.saturating_sub(1));
        self.maybe_fetch();
        true
    }

    /// Whether `block` may be taken at this height (the `valid` predicate of the rules, except the
    /// signature-free checks done by the caller). Reports the reason when not. A body that does not belong to its
    /// header (wrong merkle root, duplicated transactions, witnesses not matching the commitment) or that this
    /// member cannot judge now is refused without condemning the block hash: anyone relaying a valid block can
    /// produce such a body, and the same hash may still arrive with its real body.
    fn check_block(
        &mut self,
        from: usize,
        message_height: u32,
        block: &elements::Block,
    ) -> BlockCheck {
        let header = &block.header;
        if header.height != message_height {
            self.reject(
                from,
                Rejection::HeightMismatch {
                    message_height,
                    block_height: header.height,
                },
            );
            return BlockCheck::Invalid;
        }
        if header.prev_blockhash != self.tip_hash {
            let reason = Rejection::WrongParent {
                expected: self.tip_hash,
                got: header.prev_blockhash,
            };
            self.reject(from, reason);
            return BlockCheck::Invalid;
        }
        if let Err(error) = chain::validate_proposal(self.params(), &self.tip, block) {
            let verdict = if error.is_body_mismatch() {
                BlockCheck::Refused
            } else {
                BlockCheck::Invalid
            };
            self.reject(from, Rejection::InvalidProposal(error.to_string()));
            return verdict;
        }
        let federation = Arc::clone(&self.federation);
        match self.content.validate(&federation.params, &self.tip, block) {
            Ok(()) => {}
            Err(error) => {
                let verdict = match error {
                    ContentError::Invalid(_) => BlockCheck::Invalid,
                    ContentError::Unavailable(_) => BlockCheck::Refused,
                };
                self.reject(from, Rejection::InvalidProposal(error.to_string()));
                return verdict;
            }
        }
        let now = self.now();
        let latest = now.saturating_add(MAX_CLOCK_SKEW_MS) / 1000;
        if u64::from(header.time) > latest {
            self.reject(
                from,
                Rejection::BlockFromTheFuture {
                    time: header.time,
                    now_ms: now,
                },
            );
            return BlockCheck::Invalid;
        }
        BlockCheck::Valid
    }

    /// R5.
    fn on_proposal(&mut self, from: usize, proposal: Proposal) {
        if self.route_by_height(from, proposal.height, || {
            ConsensusMessage::Proposal(proposal.clone())
        }) {
            return;
        }
        if self.now_ms.is_none() {
            self.reject(from, Rejection::NoClock);
            return;
        }
        let n = self.federation.member_count();
        let round = proposal.round;
        let expected = proposer_of(proposal.height, round, n);
        if from != expected {
            self.reject(
                from,
                Rejection::WrongProposer {
                    round,
                    expected,
                    from,
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
                    round,
                    proposer: expected,
                },
            );
            return;
        }
        if round > self.state.round.saturating_add(1) {
            // Counts towards the skip rule only; the proposer repairs it once we are in that round.
            self.state.note_round(from, round);
            return;
        }
        let block_hash = proposal.block.block_hash();
        let mut polka_members = std::collections::BTreeSet::new();
        if let Some(valid_round) = proposal.valid_round.filter(|vr| *vr < round) {
            for (member, signature) in &proposal.polka {
                let vote = Vote {
                    kind: VoteKind::Prevote,
                    height: proposal.height,
                    round: valid_round,
                    block_hash: Some(block_hash),
                    member: *member,
                    signature: signature.to_bytes(),
                };
                let voter = usize::from(*member);
                let valid = self
                    .federation
                    .p2p_key(voter)
                    .is_some_and(|key| vote.verify(&genesis, key));
                if !valid {
                    self.reject(
                        from,
                        Rejection::BadVoteSignature {
                            kind: VoteKind::Prevote,
                            member: *member,
                        },
                    );
                    return;
                }
                polka_members.insert(voter);
                // Counted where it does not contradict a vote we already hold (an equivocator's other vote
                // stays counted; the polka below still proves `m` signed prevotes for this block).
                let _ = self.state.prevotes.add(
                    valid_round,
                    voter,
                    Some(block_hash),
                    signature.to_bytes(),
                );
            }
        }
        let polka_carried = polka_members.len() >= self.threshold();
        match self.state.proposal(round) {
            Some((existing, _)) if *existing == block_hash => return,
            Some(_) => {
                self.reject(from, Rejection::EquivocatingProposal { round });
                return;
            }
            None => {}
        }
        let known_valid = self.state.block(&block_hash).is_some();
        let known_invalid = self.state.is_invalid(&block_hash);
        if !known_valid && !known_invalid {
            match self.check_block(from, proposal.height, &proposal.block) {
                BlockCheck::Valid => {
                    self.state
                        .hold_block(round, proposal.block, proposal.proposed_at_ms);
                    self.check_pending_signatures(block_hash);
                }
                BlockCheck::Invalid => self.state.mark_invalid(block_hash),
                // Not this proposal's block: the round's proposal stays unknown to us (we time out as if it
                // never came) and the same hash with its real body is judged when it arrives.
                BlockCheck::Refused => return,
            }
        }
        let timed_out_in_round = round == self.state.round
            && self
                .state
                .my_prevote
                .as_ref()
                .is_some_and(|v| v.round == round && v.block_hash.is_none());
        if timed_out_in_round && from != self.me && !self.state.is_invalid(&block_hash) {
            self.note_late();
        }
        self.state
            .set_proposal(round, block_hash, proposal.valid_round);
        if polka_carried {
            self.state.mark_polka_carried(round);
        }
        self.state.note_round(from, round);
        self.report(ConsensusEvent::ProposalAccepted {
            from,
            height: proposal.height,
            round,
            block_hash,
        });
    }

    fn on_vote(&mut self, from: usize, vote: Vote) {
        if !self.check_member_field(from, vote.member) {
            return;
        }
        if self.route_by_height(from, vote.height, || ConsensusMessage::Vote(vote.clone())) {
            return;
        }
        self.accept_signed_vote(from, from, vote);
    }

    /// Checks `vote`'s signature under its `author`'s p2p key (a bad one is blamed on `sender`, who sent or relayed
    /// it), then counts it, or, for a round beyond the next one, only notes the author's round (R9's skip).
    /// Returns false if the signature is bad.
    fn accept_signed_vote(&mut self, sender: usize, author: usize, vote: Vote) -> bool {
        let genesis = self.params().genesis_hash();
        let valid = self
            .federation
            .p2p_key(author)
            .is_some_and(|key| vote.verify(&genesis, key));
        if !valid {
            self.reject(
                sender,
                Rejection::BadVoteSignature {
                    kind: vote.kind,
                    member: vote.member,
                },
            );
            return false;
        }
        if vote.round > self.state.round.saturating_add(1) {
            self.state.note_round(author, vote.round);
        } else {
            self.count_vote(author, vote);
        }
        true
    }

    /// R14: votes relayed by `from`; each is checked against its own author's key and counted like a direct one.
    fn on_vote_bundle(&mut self, from: usize, votes: Vec<Vote>) {
        for vote in votes {
            let author = usize::from(vote.member);
            if author >= self.federation.member_count() {
                self.reject(
                    from,
                    Rejection::MemberOutOfRange {
                        member: vote.member,
                    },
                );
                return;
            }
            if vote.height != self.state.height {
                // Another height: only evidence that `from` is elsewhere; never counted.
                if vote.height > self.state.height {
                    self.fetch
                        .note_peer_height(from, vote.height.saturating_sub(1));
                    self.maybe_fetch();
                }
                continue;
            }
            // A relayed vote that does not verify is the relayer's fault: the rest of its bundle is dropped.
            if !self.accept_signed_vote(from, author, vote) {
                return;
            }
        }
    }

    /// R10 from a relayed certificate.
    fn on_commit(&mut self, from: usize, commit: Commit) {
        let height = commit.certificate.height;
        if self.route_by_height(from, height, || ConsensusMessage::Commit(commit.clone())) {
            return;
        }
        let block_hash = commit.block.block_hash();
        if self.state.decided.is_some() && self.state.block(&block_hash).is_some() {
            return;
        }
        if let Err(error) = commit
            .certificate
            .verify_for(&self.federation, height, &block_hash)
        {
            self.reject(from, Rejection::BadCertificate(error.to_string()));
            return;
        }
        if self.state.block(&block_hash).is_none() {
            if self.check_block(from, height, &commit.block) != BlockCheck::Valid {
                return;
            }
            let round = commit.certificate.round;
            self.state.hold_block(round, commit.block, 0);
            self.check_pending_signatures(block_hash);
        }
        if self.state.decided.is_some() {
            return; // decided from precommits already; the Commit brought the block we lacked
        }
        if self
            .state
            .decided_without_certificate
            .is_some_and(|signed| signed != block_hash)
        {
            return;
        }
        self.decide(commit.certificate);
    }

    /// R11 failure: we may retry on the next progress.
    fn on_sign_failed(&mut self, height: u32, block_hash: elements::BlockHash, reason: String) {
        if height == self.state.height && self.state.sign_requested == Some(block_hash) {
            self.state.sign_requested = None;
            // Do not hammer a refusing signer: the retry happens after the next repair timer.
            self.state.sign_backoff = true;
        }
        self.report(ConsensusEvent::SignFailed {
            height,
            block_hash,
            reason,
        });
    }

    /// R12: our own signature.
    fn on_block_signed(
        &mut self,
        height: u32,
        block_hash: elements::BlockHash,
        signature: Vec<u8>,
    ) {
        if height < self.state.height {
            return;
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

    /// R12: a peer's signature.
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
        // Finalising happens in `progress` (R13), never in the middle of a handler that still uses this height.
        for (member, signature) in self.state.take_pending_signatures(&block_hash) {
            self.accept_block_signature(member, block_hash, signature);
        }
    }

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

    // ----- R13: finality -----

    fn try_finalize(&mut self, block_hash: elements::BlockHash) {
        let threshold = self.threshold();
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

    fn finalize(&mut self, block: elements::Block, signers: Vec<usize>, via: FinalizedVia) {
        let block_hash = block.block_hash();
        let height = block.header.height;
        let proposed_at_ms = self
            .state
            .block(&block_hash)
            .map(|held| held.proposed_at_ms);
        let round = self
            .state
            .decided
            .as_ref()
            .filter(|cert| cert.block_hash == block_hash)
            .map(|cert| cert.round);
        if round == Some(0) {
            self.lateness /= 2;
        }
        let header = block.header.clone();
        let n = self.federation.member_count();
        let announce = via == FinalizedVia::Signatures
            && round.is_some_and(|round| proposer_of(height, round, n) == self.me);
        self.content.finalized(&block);
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
        self.state = HeightState::new(height);
        if let Some((signed_height, hash)) = self.last_signed {
            if signed_height == height {
                self.state.decided_without_certificate = Some(hash);
            }
        }
        self.refusal_reported = None;
        self.start_height_if_ready();
        self.replay.extend(self.future.take_for_height(height));
    }

    // ----- R15: catch-up -----

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
        let now = self.now();
        if !self.fetch.may_fetch(now, self.federation.interval_ms()) {
            return;
        }
        let Some((peer_height, peer)) = self.fetch.ahead_of(self.tip.height) else {
            return;
        };
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
