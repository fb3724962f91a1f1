//! A small deterministic in-test network of `Consensus` instances (protocol v3): a simulated clock that feeds
//! `Input::Tick` at the requested `Effect::WakeAt` times, a message queue with optional drops, duplicates and
//! delays, a durable `ConsensusRecord` per member (`Effect::Persist`), software secp256k1 block signers behind
//! a certificate-checking guard, and block stores.
//!
//! Checked on every effect, across all members:
//! * every stored block passes `chain::validate_final_block` against the member's previous block, and no two
//!   different final blocks exist at one height (a panic: a fork is never acceptable);
//! * every vote a member broadcasts was persisted first and never contradicts an earlier vote of that member
//!   in the same (kind, height, round) (recorded in [`Net::double_votes`], so tests can assert on it);
//! * the guard signs one hash per height, never lower, and only with a certificate that verifies for exactly
//!   `(height, hash)` unless it is an exact re-sign of its last approved hash (refusals recorded in
//!   [`Net::guard_refusals`]).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use blocksigner::{
    CommitCertificate, Consensus, ConsensusEvent, ConsensusMessage, ConsensusRecord, Effect,
    Federation, FinalizedVia, Input, Rejection, VoteKind,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secp256k1::SECP256K1;

/// Block interval of the simulated federation.
pub const INTERVAL_MS: u64 = 1_000;
/// Base round timeout of the simulated federation.
pub const ROUND_TIMEOUT_MS: u64 = 100;
/// Genesis time (seconds); the simulated clock starts shortly after it.
pub const GENESIS_TIME: u32 = 1_700_000_000;
/// Where the simulated clock starts (a little into a slot).
pub const START_MS: u64 = GENESIS_TIME as u64 * 1_000 + 10_000 + 37;

/// The secp256k1 block-signing secret of test key number `i` (not member index: members are sorted by key).
pub fn block_secret(i: usize) -> secp256k1::SecretKey {
    let mut bytes = [0u8; 32];
    bytes[0] = 0x11;
    bytes[31] = u8::try_from(i + 1).expect("small test index");
    secp256k1::SecretKey::from_slice(&bytes).expect("valid secret")
}

/// The p2p key of member index `member`.
pub fn p2p_secret(member: usize) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[u8::try_from(member + 100).expect("small index"); 32])
}

/// The federation fixture: params, p2p keys, and each member's block secret by member index.
pub struct Fixture {
    pub federation: Arc<Federation>,
    pub block_secrets: Vec<secp256k1::SecretKey>,
}

impl Fixture {
    pub fn new(n: usize, m: usize) -> Self {
        let secrets: Vec<secp256k1::SecretKey> = (0..n).map(block_secret).collect();
        let keys: Vec<secp256k1::PublicKey> =
            secrets.iter().map(|sk| sk.public_key(SECP256K1)).collect();
        let params = chain::FederationParams::new("blocksigner-test", keys, m, GENESIS_TIME)
            .expect("valid params");
        let block_secrets = params
            .sorted_keys()
            .iter()
            .map(|key| {
                *secrets
                    .iter()
                    .find(|sk| sk.public_key(SECP256K1) == *key)
                    .expect("key of a secret")
            })
            .collect();
        let p2p_keys = (0..n)
            .map(|member| p2p_secret(member).verifying_key())
            .collect();
        let federation = Arc::new(Federation {
            params,
            p2p_keys,
            interval_ms: INTERVAL_MS,
            round_timeout_ms: ROUND_TIMEOUT_MS,
        });
        Fixture {
            federation,
            block_secrets,
        }
    }

    pub fn params(&self) -> &chain::FederationParams {
        &self.federation.params
    }

    pub fn genesis(&self) -> elements::Block {
        self.federation.params.genesis_block()
    }

    pub fn consensus(
        &self,
        member: usize,
        tip: elements::BlockHeader,
        record: Option<ConsensusRecord>,
        last_signed: Option<(u32, elements::BlockHash)>,
    ) -> Consensus {
        Consensus::new(
            Arc::clone(&self.federation),
            member,
            p2p_secret(member),
            tip,
            record,
            last_signed,
        )
    }

    /// Member `member`'s block signature on `header` (DER, low-S, + 0x01).
    pub fn sign(&self, member: usize, header: &elements::BlockHeader) -> Vec<u8> {
        sign_with(&self.block_secrets[member], header)
    }
}

/// A block signature on `header` with `secret`: sign_ecdsa(signing_digest), normalize_s, DER + 0x01.
pub fn sign_with(secret: &secp256k1::SecretKey, header: &elements::BlockHeader) -> Vec<u8> {
    let message = secp256k1::Message::from_digest(chain::signing_digest(header));
    let mut signature = SECP256K1.sign_ecdsa(&message, secret);
    signature.normalize_s();
    let mut bytes = signature.serialize_der().to_vec();
    bytes.push(0x01);
    bytes
}

/// The per-member signer guard (what `hsm`'s certificate-gated guard enforces): one hash per height, never a
/// lower height, and a certificate that verifies for exactly `(height, hash)` for every new decision. Only an
/// exact re-sign of the last approved `(height, hash)` may come without a certificate.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    pub last: Option<(u32, elements::BlockHash)>,
}

impl Guard {
    pub fn allow(
        &mut self,
        federation: &Federation,
        height: u32,
        hash: elements::BlockHash,
        certificate: Option<&CommitCertificate>,
    ) -> Result<(), String> {
        match self.last {
            Some((last_height, last_hash)) if height == last_height && hash == last_hash => Ok(()),
            Some((last_height, _)) if height < last_height => Err(format!(
                "height {height} below last signed height {last_height}"
            )),
            Some((last_height, last_hash)) if height == last_height => {
                Err(format!("already signed {last_hash} at height {height}"))
            }
            _ => {
                let certificate =
                    certificate.ok_or("a new signing decision without certificate")?;
                certificate
                    .verify_for(federation, height, &hash)
                    .map_err(|e| e.to_string())?;
                self.last = Some((height, hash));
                Ok(())
            }
        }
    }
}

/// One simulated member.
pub struct Member {
    pub consensus: Consensus,
    pub guard: Guard,
    /// The last record the member persisted (`Effect::Persist`).
    pub record: Option<ConsensusRecord>,
    /// Stored blocks; `chain[h]` is the block at height h (genesis at 0).
    pub chain: Vec<elements::Block>,
    pub online: bool,
    scheduled_ticks: BTreeSet<u64>,
}

impl Member {
    pub fn height(&self) -> u32 {
        u32::try_from(self.chain.len() - 1).expect("small chain")
    }
}

#[derive(Clone, Debug)]
enum Event {
    Deliver { from: usize, bytes: Vec<u8> },
    Input(Box<Input>),
    Tick,
}

/// Network behaviour knobs.
#[derive(Clone, Debug)]
pub struct Links {
    /// Base one-way latency.
    pub latency_ms: u64,
    /// Extra random latency, uniform in 0..=jitter_ms.
    pub jitter_ms: u64,
    /// Probability that a message copy is dropped.
    pub drop_rate: f64,
    /// Probability that a message copy is delivered twice.
    pub duplicate_rate: f64,
}

impl Default for Links {
    fn default() -> Self {
        Links {
            latency_ms: 5,
            jitter_ms: 0,
            drop_rate: 0.0,
            duplicate_rate: 0.0,
        }
    }
}

/// A vote of one member that contradicts an earlier one in the same (kind, height, round).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoubleVote {
    pub member: usize,
    pub kind: VoteKind,
    pub height: u32,
    pub round: u32,
    pub first: Option<elements::BlockHash>,
    pub second: Option<elements::BlockHash>,
}

/// A signing request the guard refused.
#[derive(Clone, Debug)]
pub struct GuardRefusal {
    pub member: usize,
    pub height: u32,
    pub block_hash: elements::BlockHash,
    pub reason: String,
}

/// A filter deciding whether a broadcast message copy from `from` to `to` is delivered.
pub type Filter = Box<dyn FnMut(usize, usize, &ConsensusMessage) -> bool>;

/// The simulated federation.
pub struct Net {
    pub fixture: Fixture,
    pub members: Vec<Member>,
    pub now_ms: u64,
    pub links: Links,
    rng: StdRng,
    queue: BTreeMap<(u64, u64), (usize, Event)>,
    seq: u64,
    /// Headers of every block seen on the wire, by hash (what a daemon would hand to its signer).
    headers: BTreeMap<elements::BlockHash, elements::BlockHeader>,
    /// Every block stored by anyone, by height: the global no-fork check.
    pub finalized: BTreeMap<u32, elements::BlockHash>,
    /// When each member stored each height (simulated ms).
    pub stored_at: BTreeMap<(usize, u32), u64>,
    /// Every signature produced, by (member, height).
    pub signed: BTreeMap<(usize, u32), elements::BlockHash>,
    /// Every report, by member.
    pub events: Vec<(usize, ConsensusEvent)>,
    /// Every SignBlock request: member, height, hash, certificate.
    pub sign_requests: Vec<(usize, u32, elements::BlockHash, Option<CommitCertificate>)>,
    pub guard_refusals: Vec<GuardRefusal>,
    /// Messages a member sent, in order.
    pub sent: Vec<(usize, ConsensusMessage)>,
    /// Every vote ever broadcast: (member, kind, height, round) -> value.
    votes: BTreeMap<(usize, VoteKind, u32, u32), Option<elements::BlockHash>>,
    pub double_votes: Vec<DoubleVote>,
    /// Member pairs (from, to) whose messages are dropped.
    pub cut: BTreeSet<(usize, usize)>,
    /// Optional delivery filter (false = drop the copy).
    pub filter: Option<Filter>,
    /// Probability that a member crashes (and restarts from its record) right after each `Persist`.
    pub crash_after_persist_rate: f64,
    /// How many such crashes happened.
    pub crashes_after_persist: usize,
}

impl Net {
    pub fn new(n: usize, m: usize, seed: u64) -> Self {
        let fixture = Fixture::new(n, m);
        let genesis = fixture.genesis();
        let members = (0..n)
            .map(|member| Member {
                consensus: fixture.consensus(member, genesis.header.clone(), None, None),
                guard: Guard::default(),
                record: None,
                chain: vec![genesis.clone()],
                online: true,
                scheduled_ticks: BTreeSet::new(),
            })
            .collect();
        let mut net = Net {
            fixture,
            members,
            now_ms: START_MS,
            links: Links::default(),
            rng: StdRng::seed_from_u64(seed),
            queue: BTreeMap::new(),
            seq: 0,
            headers: BTreeMap::new(),
            finalized: BTreeMap::new(),
            stored_at: BTreeMap::new(),
            signed: BTreeMap::new(),
            events: Vec::new(),
            sign_requests: Vec::new(),
            guard_refusals: Vec::new(),
            sent: Vec::new(),
            votes: BTreeMap::new(),
            double_votes: Vec::new(),
            cut: BTreeSet::new(),
            filter: None,
            crash_after_persist_rate: 0.0,
            crashes_after_persist: 0,
        };
        for member in 0..n {
            net.schedule_tick(member, START_MS);
        }
        net
    }

    pub fn n(&self) -> usize {
        self.members.len()
    }

    fn push(&mut self, at: u64, to: usize, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), (to, event));
    }

    fn schedule_tick(&mut self, member: usize, at: u64) {
        if self.members[member].scheduled_ticks.insert(at) {
            self.push(at, member, Event::Tick);
        }
    }

    /// Takes a member off the network (its state is kept, like a partition or a paused process).
    pub fn set_offline(&mut self, member: usize) {
        self.members[member].online = false;
    }

    /// Brings a member back; it gets a tick now.
    pub fn set_online(&mut self, member: usize) {
        self.members[member].online = true;
        self.members[member].scheduled_ticks.clear();
        let now = self.now_ms;
        self.schedule_tick(member, now);
    }

    /// Crash and restart: a fresh `Consensus` from the member's stored tip, its persisted record and its
    /// guard's last approved (height, hash), as the daemon does from its stores and signer journal. Messages
    /// in flight to the member are lost with the process.
    pub fn restart(&mut self, member: usize) {
        let tip = self.members[member]
            .chain
            .last()
            .expect("genesis")
            .header
            .clone();
        let record = self.members[member].record.clone();
        let last_signed = self.members[member].guard.last;
        self.members[member].consensus = self.fixture.consensus(member, tip, record, last_signed);
        self.queue.retain(|_, (to, event)| {
            *to != member || !matches!(event, Event::Deliver { .. } | Event::Input(_))
        });
        self.set_online(member);
    }

    /// Restart after losing the consensus record (the signer journal survives).
    pub fn restart_without_record(&mut self, member: usize) {
        self.members[member].record = None;
        self.restart(member);
    }

    fn latency(&mut self) -> u64 {
        let jitter = if self.links.jitter_ms > 0 {
            self.rng.gen_range(0..=self.links.jitter_ms)
        } else {
            0
        };
        self.links.latency_ms + jitter
    }

    /// Feeds one input to a member and executes its effects.
    pub fn handle(&mut self, member: usize, input: Input) {
        let effects = self.members[member].consensus.handle(input);
        for effect in effects {
            let persisted = matches!(effect, Effect::Persist(_));
            self.execute(member, effect);
            if persisted
                && self.crash_after_persist_rate > 0.0
                && self.rng.gen_bool(self.crash_after_persist_rate)
            {
                // The process dies right after the synced write: the remaining effects are lost.
                self.crashes_after_persist += 1;
                self.restart(member);
                return;
            }
        }
        let stored = self.members[member]
            .chain
            .last()
            .expect("genesis")
            .block_hash();
        assert_eq!(
            self.members[member].consensus.tip().block_hash(),
            stored,
            "tip = last stored block"
        );
    }

    fn check_vote(&mut self, member: usize, vote: &blocksigner::Vote) {
        assert_eq!(usize::from(vote.member), member, "votes carry the sender");
        let record = self.members[member]
            .record
            .as_ref()
            .unwrap_or_else(|| panic!("member {member} broadcast a vote before persisting any"));
        let cast = match vote.kind {
            VoteKind::Prevote => record.prevote.as_ref(),
            VoteKind::Precommit => record.precommit.as_ref(),
        };
        let persisted = record.height == vote.height
            && cast.is_some_and(|cast| {
                cast.round == vote.round
                    && cast.block_hash == vote.block_hash
                    && cast.signature.to_bytes() == vote.signature
            });
        assert!(
            persisted,
            "member {member} broadcast {vote:?} that is not its persisted vote ({record:?})"
        );
        let key = (member, vote.kind, vote.height, vote.round);
        match self.votes.get(&key) {
            Some(first) if *first != vote.block_hash => self.double_votes.push(DoubleVote {
                member,
                kind: vote.kind,
                height: vote.height,
                round: vote.round,
                first: *first,
                second: vote.block_hash,
            }),
            Some(_) => {}
            None => {
                self.votes.insert(key, vote.block_hash);
            }
        }
    }

    /// Executes one effect as if `member`'s state machine had emitted it (to test the checks themselves).
    pub fn execute_as(&mut self, member: usize, effect: Effect) {
        self.execute(member, effect);
    }

    fn execute(&mut self, member: usize, effect: Effect) {
        let now = self.now_ms;
        match effect {
            Effect::Broadcast(message) => {
                let bytes = message.encode();
                let decoded = ConsensusMessage::decode(&bytes).expect("our own encoding decodes");
                assert_eq!(decoded, message, "codec round trip");
                match &message {
                    ConsensusMessage::Proposal(proposal) => {
                        self.headers
                            .insert(proposal.block.block_hash(), proposal.block.header.clone());
                    }
                    ConsensusMessage::Commit(commit) => {
                        self.headers
                            .insert(commit.block.block_hash(), commit.block.header.clone());
                    }
                    ConsensusMessage::Vote(vote) => self.check_vote(member, vote),
                    _ => {}
                }
                self.sent.push((member, message.clone()));
                for to in 0..self.n() {
                    if to == member || self.cut.contains(&(member, to)) {
                        continue;
                    }
                    if let Some(filter) = self.filter.as_mut() {
                        if !filter(member, to, &message) {
                            continue;
                        }
                    }
                    if self.links.drop_rate > 0.0 && self.rng.gen_bool(self.links.drop_rate) {
                        continue;
                    }
                    let at = now + self.latency();
                    self.push(
                        at,
                        to,
                        Event::Deliver {
                            from: member,
                            bytes: bytes.clone(),
                        },
                    );
                    if self.links.duplicate_rate > 0.0
                        && self.rng.gen_bool(self.links.duplicate_rate)
                    {
                        let at = now + self.latency();
                        self.push(
                            at,
                            to,
                            Event::Deliver {
                                from: member,
                                bytes: bytes.clone(),
                            },
                        );
                    }
                }
            }
            Effect::Persist(record) => {
                if let Some(previous) = &self.members[member].record {
                    assert!(
                        record.height >= previous.height,
                        "member {member} persisted height {} after {}",
                        record.height,
                        previous.height
                    );
                }
                assert_eq!(
                    ConsensusRecord::decode(&record.encode()).as_ref(),
                    Ok(&record),
                    "records round-trip"
                );
                self.members[member].record = Some(record);
            }
            Effect::SignBlock {
                height,
                block_hash,
                certificate,
            } => {
                if let Some(certificate) = &certificate {
                    // R10: the decision is durable before the signer is asked.
                    let decided = self.members[member]
                        .record
                        .as_ref()
                        .and_then(|record| record.decided.as_ref());
                    assert_eq!(
                        decided,
                        Some(certificate),
                        "member {member} asked to sign at {height} before persisting its decision"
                    );
                }
                self.sign_requests
                    .push((member, height, block_hash, certificate.clone()));
                let federation = Arc::clone(&self.fixture.federation);
                let result = self.members[member].guard.allow(
                    &federation,
                    height,
                    block_hash,
                    certificate.as_ref(),
                );
                let input = match result {
                    Ok(()) => {
                        let header = self
                            .headers
                            .get(&block_hash)
                            .expect("signing a block seen on the wire")
                            .clone();
                        assert_eq!(header.height, height, "SignBlock height matches the block");
                        if let Some(previous) = self.signed.insert((member, height), block_hash) {
                            assert_eq!(
                                previous, block_hash,
                                "member {member} signed two blocks at {height}"
                            );
                        }
                        let signature = self.fixture.sign(member, &header);
                        Input::BlockSigned {
                            height,
                            block_hash,
                            signature,
                        }
                    }
                    Err(reason) => {
                        self.guard_refusals.push(GuardRefusal {
                            member,
                            height,
                            block_hash,
                            reason: reason.clone(),
                        });
                        Input::SignFailed {
                            height,
                            block_hash,
                            reason,
                        }
                    }
                };
                self.push(now + 1, member, Event::Input(Box::new(input)));
            }
            Effect::StoreBlock(block) => self.store(member, block),
            Effect::FetchBlocks {
                from,
                start_height,
                count,
            } => {
                assert_ne!(from, member, "never fetch from ourselves");
                assert!((1..=blocksigner::rules::FETCH_BATCH).contains(&count));
                if self.members[from].online && !self.cut.contains(&(from, member)) {
                    let chain = &self.members[from].chain;
                    let start = usize::try_from(start_height).expect("height");
                    let end = (start + count as usize).min(chain.len());
                    let blocks = chain.get(start..end).map(<[_]>::to_vec).unwrap_or_default();
                    let at = now + 2 * self.latency();
                    self.push(
                        at,
                        member,
                        Event::Input(Box::new(Input::BlocksFetched { from, blocks })),
                    );
                }
            }
            Effect::WakeAt { at_ms } => {
                assert!(at_ms > now, "wake-up in the future");
                self.schedule_tick(member, at_ms);
            }
            Effect::Report(event) => self.events.push((member, event)),
        }
    }

    fn store(&mut self, member: usize, block: elements::Block) {
        let height = block.header.height;
        let hash = block.block_hash();
        let stored = &self.members[member];
        assert_eq!(
            height,
            stored.height() + 1,
            "member {member} stores blocks in height order"
        );
        let parent = &stored.chain.last().expect("genesis").header;
        chain::validate_final_block(self.fixture.params(), parent, &block)
            .unwrap_or_else(|e| panic!("member {member} stored an invalid block at {height}: {e}"));
        if let Some(other) = self.finalized.insert(height, hash) {
            assert_eq!(
                other, hash,
                "FORK: two different final blocks at height {height}"
            );
        }
        self.stored_at.insert((member, height), self.now_ms);
        self.members[member].chain.push(block);
    }

    fn tick_now(&mut self, member: usize) {
        let now_ms = self.now_ms;
        self.handle(member, Input::Tick { now_ms });
    }

    /// Runs the simulation until `end_ms` (or until `stop` returns true after an event).
    pub fn run_until(&mut self, end_ms: u64, mut stop: impl FnMut(&Net) -> bool) -> bool {
        while let Some(entry) = self.queue.first_entry() {
            let (at, _) = *entry.key();
            if at > end_ms {
                break;
            }
            let (member, event) = entry.remove();
            self.now_ms = self.now_ms.max(at);
            if !self.members[member].online {
                if let Event::Tick = event {
                    self.members[member].scheduled_ticks.remove(&at);
                }
                continue;
            }
            match event {
                Event::Tick => {
                    self.members[member].scheduled_ticks.remove(&at);
                    self.handle(
                        member,
                        Input::Tick {
                            now_ms: self.now_ms,
                        },
                    );
                }
                Event::Deliver { from, bytes } => {
                    let message =
                        ConsensusMessage::decode(&bytes).expect("valid bytes on the wire");
                    // As the daemon does: every input is preceded by the current time, so that timeouts
                    // armed by a message count from its arrival.
                    self.tick_now(member);
                    self.handle(member, Input::Message { from, message });
                }
                Event::Input(input) => {
                    self.tick_now(member);
                    self.handle(member, *input);
                }
            }
            if stop(self) {
                return true;
            }
        }
        self.now_ms = self.now_ms.max(end_ms);
        false
    }

    /// Runs for `slots` block intervals.
    pub fn run_slots(&mut self, slots: u64) {
        let end = self.now_ms + slots * INTERVAL_MS;
        self.run_until(end, |_| false);
    }

    /// Runs until every member in `members` has at least `height`, or `max_slots` pass. True on success.
    pub fn run_until_height(&mut self, members: &[usize], height: u32, max_slots: u64) -> bool {
        let end = self.now_ms + max_slots * INTERVAL_MS;
        let members = members.to_vec();
        self.run_until(end, |net| {
            members.iter().all(|m| net.members[*m].height() >= height)
        })
    }

    pub fn all(&self) -> Vec<usize> {
        (0..self.n()).collect()
    }

    pub fn online(&self) -> Vec<usize> {
        (0..self.n()).filter(|m| self.members[*m].online).collect()
    }

    /// Asserts that all chains agree on their common prefix and re-validates every block of every chain.
    pub fn assert_consistent(&self) {
        let params = self.fixture.params();
        for (index, member) in self.members.iter().enumerate() {
            for pair in member.chain.windows(2) {
                chain::validate_final_block(params, &pair[0].header, &pair[1]).unwrap_or_else(
                    |e| {
                        panic!(
                            "member {index}: invalid block {}: {e}",
                            pair[1].header.height
                        )
                    },
                );
            }
            for block in &member.chain[1..] {
                assert_eq!(
                    self.finalized.get(&block.header.height),
                    Some(&block.block_hash())
                );
            }
        }
        // Identity is the block hash: the signblock witness is not hashed, and members that assembled the same
        // block from different sets of m signatures hold different (equally valid) witnesses.
        for (ia, a) in self.members.iter().enumerate() {
            for (ib, b) in self.members.iter().enumerate() {
                for (x, y) in a.chain.iter().zip(b.chain.iter()) {
                    assert_eq!(
                        x.block_hash(),
                        y.block_hash(),
                        "members {ia} and {ib} differ at {}",
                        x.header.height
                    );
                    assert_eq!(x.txdata, y.txdata);
                }
            }
        }
    }

    /// The checks every run must pass: no double votes, no guard refusal, every new signing decision came
    /// with a certificate that verifies for it.
    pub fn assert_honest_run(&self) {
        assert!(
            self.double_votes.is_empty(),
            "double votes: {:?}",
            self.double_votes
        );
        assert!(
            self.guard_refusals.is_empty(),
            "guard refusals: {:?}",
            self.guard_refusals
        );
        let mut approved: BTreeSet<(usize, u32)> = BTreeSet::new();
        for (member, height, hash, certificate) in &self.sign_requests {
            if approved.insert((*member, *height)) {
                let certificate = certificate.as_ref().unwrap_or_else(|| {
                    panic!("member {member}'s first signing request at {height} has no certificate")
                });
                certificate
                    .verify_for(&self.fixture.federation, *height, hash)
                    .expect("certificate verifies for the request");
            }
        }
    }

    /// Reports of one member.
    pub fn events_of(&self, member: usize) -> impl Iterator<Item = &ConsensusEvent> {
        self.events
            .iter()
            .filter(move |(m, _)| *m == member)
            .map(|(_, e)| e)
    }

    /// Rejections anyone reported: (reporter, blamed member, reason).
    pub fn rejections(&self) -> Vec<(usize, usize, Rejection)> {
        self.events
            .iter()
            .filter_map(|(at, e)| match e {
                ConsensusEvent::Rejected { from, reason } => Some((*at, *from, reason.clone())),
                _ => None,
            })
            .collect()
    }

    /// Heights member `member` finalized via `via`.
    pub fn finalized_via(&self, member: usize, via: FinalizedVia) -> Vec<u32> {
        self.events_of(member)
            .filter_map(|e| match e {
                ConsensusEvent::Finalized { height, via: v, .. } if *v == via => Some(*height),
                _ => None,
            })
            .collect()
    }
}
