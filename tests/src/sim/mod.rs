//! Deterministic simulation of a federation: `n` instances of the real consensus state machine
//! (`blocksigner::Consensus`) and the real signer policy (`hsm::BlockSigningPolicy` plus the certificate check the
//! daemon's guard makes), driven by one seeded scheduler.
//!
//! Faults (until `fault_end`): message loss, delay, reordering (random delays), duplication, partitions that heal,
//! crashes at any step (between effects: after the durable record and before the broadcast, after the signer's
//! journal decision and before the signature comes back, after the signature and before it is broadcast) with
//! restarts from what was durable, and per-member clock skew. Byzantine members run the protocol but equivocate as
//! proposers, cast conflicting votes, sign every block they see, propose invalid blocks, replay old messages,
//! withhold, and send messages for future heights. After every step the [`invariants`] are checked; after the
//! faults stop a new block must become final within the liveness window.
//!
//! A run is a pure function of its [`SimConfig`]: a failing seed reproduces exactly, and the failure carries the
//! tail of the schedule that broke it.

mod byzantine;
pub mod fixture;
pub mod invariants;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use blocksigner::{
    CommitCertificate, Consensus, ConsensusEvent, ConsensusMessage, ConsensusRecord, Effect, Input,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use byzantine::Behaviour;
use fixture::SimFederation;
use invariants::{Checker, Violation};

/// Which faults a run injects before `fault_end`.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultMix {
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Largest one-way delay (ms); delays are uniform in `[1, max_delay_ms]` (hence reordering).
    pub max_delay_ms: u64,
    /// Whether partitions (two random sides, healing after a while) happen.
    pub partitions: bool,
    /// Whether members crash (at random times and between effects) and restart.
    pub crashes: bool,
    /// Largest absolute clock offset of a member (ms).
    pub clock_skew_ms: u64,
}

impl FaultMix {
    /// No faults at all.
    pub fn none() -> Self {
        FaultMix {
            loss: 0.0,
            duplicate: 0.0,
            max_delay_ms: 5,
            partitions: false,
            crashes: false,
            clock_skew_ms: 0,
        }
    }

    /// Everything at once, at rates that still let the federation progress between faults.
    pub fn all() -> Self {
        FaultMix {
            loss: 0.15,
            duplicate: 0.1,
            max_delay_ms: 150,
            partitions: true,
            crashes: true,
            clock_skew_ms: 300,
        }
    }

    /// Parses a comma-separated list: `loss=0.2,dup=0.1,delay=200,partitions,crashes,skew=300`, or `none`/`all`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut mix = FaultMix::none();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .map_or((part, None), |(k, v)| (k, Some(v)));
            let number = |v: Option<&str>| -> Result<f64, String> {
                v.ok_or_else(|| format!("fault `{key}` needs a value"))?
                    .parse::<f64>()
                    .map_err(|e| format!("fault `{key}`: {e}"))
            };
            match key {
                "none" => mix = FaultMix::none(),
                "all" => mix = FaultMix::all(),
                "loss" => mix.loss = number(value)?,
                "dup" => mix.duplicate = number(value)?,
                "delay" => mix.max_delay_ms = number(value)? as u64,
                "skew" => mix.clock_skew_ms = number(value)? as u64,
                "partitions" => mix.partitions = true,
                "crashes" => mix.crashes = true,
                other => return Err(format!("unknown fault `{other}`")),
            }
        }
        if !(0.0..=0.9).contains(&mix.loss) || !(0.0..=0.9).contains(&mix.duplicate) {
            return Err("loss and dup must be within 0..=0.9".into());
        }
        Ok(mix.clamped())
    }

    fn clamped(mut self) -> Self {
        self.max_delay_ms = self.max_delay_ms.max(1);
        self
    }
}

/// One simulation run.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// The seed: everything random derives from it.
    pub seed: u64,
    /// Members.
    pub n: usize,
    /// Threshold.
    pub m: usize,
    /// Byzantine members (chosen by the seed).
    pub byzantine: usize,
    /// What every Byzantine member does; `None`: a random mix per member.
    pub byzantine_behaviour: Option<Behaviour>,
    /// Faults before `fault_end`.
    pub faults: FaultMix,
    /// Block interval (ms).
    pub interval_ms: u64,
    /// Base round timeout (ms).
    pub round_timeout_ms: u64,
    /// Faults stop this long after the start (ms).
    pub fault_duration_ms: u64,
    /// The run continues this long after the faults stop (ms).
    pub calm_duration_ms: u64,
}

impl SimConfig {
    /// Defaults for `n` members: m = the Liquid-like 11 of 15, else floor(2n/3) + 1; 1 s interval; faults for 8
    /// intervals, then 4 calm intervals.
    pub fn new(seed: u64, n: usize) -> Self {
        let m = if n == 15 { 11 } else { (2 * n) / 3 + 1 };
        SimConfig {
            seed,
            n,
            m,
            byzantine: 0,
            byzantine_behaviour: None,
            faults: FaultMix::all(),
            interval_ms: 1_000,
            round_timeout_ms: 125,
            fault_duration_ms: 8_000,
            calm_duration_ms: 4_000,
        }
    }

    /// The largest number of Byzantine members under which safety is claimed: `2m - n - 1`.
    pub fn safety_bound(&self) -> usize {
        (2 * self.m).saturating_sub(self.n).saturating_sub(1)
    }

    /// The largest number of Byzantine members under which liveness is claimed: `n - m`.
    pub fn liveness_bound(&self) -> usize {
        self.n.saturating_sub(self.m)
    }

    /// How long after the faults stop a new final block must appear: two intervals (plus three base round timeouts)
    /// without Byzantine members;
    /// with `b` of them, `b + 1` more maximal failing rounds (each may propose and withhold, and locks they
    /// split need one more round with an honest proposer holding the newest polka).
    pub fn liveness_window_ms(&self) -> u64 {
        let max_round =
            blocksigner::rules::round_timeout_ms(self.round_timeout_ms, u32::MAX, 0) * 3;
        let byzantine_rounds = if self.byzantine == 0 {
            0
        } else {
            self.byzantine as u64 + 1
        };
        // Two intervals, plus three base timeouts of slack for members whose timeouts grew during the faults.
        2 * self.interval_ms + 3 * self.round_timeout_ms + byzantine_rounds * max_round
    }
}

/// Runs seeds `first..first + count` of `make(seed)` on `threads` threads; returns the failures.
pub fn run_seeds(
    first: u64,
    count: u64,
    threads: usize,
    make: impl Fn(u64) -> SimConfig + Sync,
) -> (Vec<SimReport>, Vec<SimFailure>) {
    let next = std::sync::atomic::AtomicU64::new(first);
    let results = std::sync::Mutex::new((Vec::new(), Vec::new()));
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seed >= first + count {
                    return;
                }
                let outcome = Simulation::new(make(seed)).map(Simulation::run);
                if let Ok(mut guard) = results.lock() {
                    match outcome {
                        Ok(Ok(report)) => guard.0.push(report),
                        Ok(Err(failure)) => guard.1.push(*failure),
                        Err(error) => guard.1.push(SimFailure {
                            config: make(seed),
                            violation: Violation(format!("bad configuration: {error}")),
                            schedule: Vec::new(),
                        }),
                    }
                }
            });
        }
    });
    results.into_inner().unwrap_or_default()
}

/// What a successful run saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimReport {
    /// Highest final height at any honest member.
    pub final_height: u32,
    /// Messages delivered.
    pub delivered: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Simulated milliseconds from the end of the faults to the first new final block.
    pub recovery_ms: Option<u64>,
}

/// A failed run: which invariant, and the schedule that led there.
#[derive(Clone, Debug)]
pub struct SimFailure {
    /// The run's configuration (re-run it to reproduce).
    pub config: SimConfig,
    /// The broken invariant.
    pub violation: Violation,
    /// The last events before the violation, oldest first.
    pub schedule: Vec<String>,
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "simulation failed: {}", self.violation)?;
        writeln!(f, "reproduce with: {:?}", self.config)?;
        writeln!(f, "last {} events:", self.schedule.len())?;
        for line in &self.schedule {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

// Events are created and consumed once each; boxing the message would only add an allocation per delivery.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        message: ConsensusMessage,
    },
    Tick {
        member: usize,
    },
    SignerDone {
        member: usize,
        epoch: u64,
        height: u32,
        hash: elements::BlockHash,
        result: Result<Vec<u8>, String>,
    },
    Fetched {
        member: usize,
        epoch: u64,
        from: usize,
        blocks: Vec<elements::Block>,
    },
    Crash {
        member: usize,
    },
    Restart {
        member: usize,
    },
    Partition {
        side: BTreeSet<usize>,
    },
    Heal,
    Byzantine {
        member: usize,
    },
    FaultsEnd,
}

struct SimMember {
    behaviour: Option<Behaviour>,
    up: bool,
    epoch: u64,
    consensus: Option<Consensus>,
    /// Final blocks by height (index 0 = genesis).
    store: Vec<elements::Block>,
    /// The durable consensus record.
    record: Option<ConsensusRecord>,
    /// The signer journal's policy (durable).
    policy: hsm::BlockSigningPolicy,
    clock_offset: i64,
    scheduled_ticks: BTreeSet<u64>,
    byzantine: byzantine::ByzantineState,
}

/// The simulator.
pub struct Simulation {
    config: SimConfig,
    rng: StdRng,
    fed: SimFederation,
    time: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    members: Vec<SimMember>,
    checker: Checker,
    partition: Option<BTreeSet<usize>>,
    faults_active: bool,
    trace: VecDeque<String>,
    trace_limit: usize,
    full_trace: bool,
    delivered: u64,
    crashes: u64,
    fault_end_time: u64,
    height_at_fault_end: u32,
    /// Members that crashed and never come back.
    dead: BTreeSet<usize>,
    recovery_ms: Option<u64>,
}

const START_MS: u64 = fixture::GENESIS_TIME as u64 * 1_000 + 10_000;

fn hash8(hash: &elements::BlockHash) -> String {
    hash.to_string().chars().take(8).collect()
}

fn describe(message: &ConsensusMessage) -> String {
    match message {
        ConsensusMessage::Proposal(p) => {
            format!(
                "proposal h{} r{} vr{:?} {}",
                p.height,
                p.round,
                p.valid_round,
                hash8(&p.block.block_hash())
            )
        }
        ConsensusMessage::Vote(v) => format!(
            "{} h{} r{} {}",
            message.kind(),
            v.height,
            v.round,
            v.block_hash.as_ref().map_or("nil".to_string(), hash8)
        ),
        ConsensusMessage::BlockSignature(s) => {
            format!("block_signature h{} {}", s.height, hash8(&s.block_hash))
        }
        ConsensusMessage::Commit(c) => {
            format!(
                "commit h{} r{} {}",
                c.certificate.height,
                c.certificate.round,
                hash8(&c.certificate.block_hash)
            )
        }
        ConsensusMessage::FinalBlock(b) => format!(
            "final_block h{} {}",
            b.header.height,
            hash8(&b.block_hash())
        ),
        ConsensusMessage::Status(s) => format!("status h{}", s.height),
        ConsensusMessage::VoteBundle(votes) => {
            format!("vote_bundle h{} ({} votes)", message.height(), votes.len())
        }
    }
}

impl Simulation {
    /// Sets up a run (members, Byzantine choice, clock offsets, fault schedule).
    pub fn new(config: SimConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            config.n >= 1 && config.m <= config.n && 2 * config.m > config.n,
            "need n/2 < m <= n"
        );
        anyhow::ensure!(
            config.byzantine <= config.n,
            "more Byzantine members than members"
        );
        let mut rng = StdRng::seed_from_u64(config.seed);
        let fed = SimFederation::new(
            config.n,
            config.m,
            config.interval_ms,
            config.round_timeout_ms,
        )?;
        let genesis = fed.params().genesis_block();
        let mut byzantine_members: BTreeSet<usize> = BTreeSet::new();
        while byzantine_members.len() < config.byzantine {
            byzantine_members.insert(rng.gen_range(0..config.n));
        }
        let skew = config.faults.clock_skew_ms as i64;
        let mut members = Vec::with_capacity(config.n);
        for i in 0..config.n {
            let forced = config.byzantine_behaviour;
            let behaviour = byzantine_members
                .contains(&i)
                .then(|| forced.unwrap_or_else(|| Behaviour::random(&mut rng)));
            let clock_offset = if skew > 0 {
                rng.gen_range(-skew..=skew)
            } else {
                0
            };
            members.push(SimMember {
                behaviour,
                up: true,
                epoch: 0,
                consensus: None,
                store: vec![genesis.clone()],
                record: None,
                policy: hsm::BlockSigningPolicy::new(None),
                clock_offset,
                scheduled_ticks: BTreeSet::new(),
                byzantine: byzantine::ByzantineState::default(),
            });
        }
        let checker = Checker::new(config.m);
        let mut sim = Simulation {
            rng,
            fed,
            time: START_MS + 37,
            seq: 0,
            queue: BTreeMap::new(),
            members,
            checker,
            partition: None,
            faults_active: true,
            trace: VecDeque::new(),
            trace_limit: 400,
            full_trace: false,
            delivered: 0,
            crashes: 0,
            fault_end_time: START_MS + 37 + config.fault_duration_ms,
            height_at_fault_end: 0,
            dead: BTreeSet::new(),
            recovery_ms: None,
            config,
        };
        for i in 0..sim.config.n {
            sim.boot(i);
        }
        sim.schedule_faults();
        Ok(sim)
    }

    /// Prints every event as it happens (for reproducing a failing seed).
    pub fn with_full_trace(mut self) -> Self {
        self.full_trace = true;
        self
    }

    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at.max(self.time), self.seq), event);
    }

    fn log(&mut self, line: String) {
        let line = format!("t+{:>6} {line}", self.time.saturating_sub(START_MS));
        if self.full_trace {
            println!("{line}");
        }
        if self.trace.len() >= self.trace_limit {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    fn member_clock(&self, member: usize) -> u64 {
        let offset = self.members[member].clock_offset;
        if offset >= 0 {
            self.time.saturating_add(offset as u64)
        } else {
            self.time.saturating_sub(offset.unsigned_abs())
        }
    }

    fn schedule_faults(&mut self) {
        let start = self.time;
        let end = self.fault_end_time;
        let f = self.config.faults.clone();
        if f.crashes {
            let crashes = self.rng.gen_range(1..=self.config.n.max(2));
            for _ in 0..crashes {
                let member = self.rng.gen_range(0..self.config.n);
                let at = self.rng.gen_range(start..end);
                self.push(at, Event::Crash { member });
            }
        }
        if f.partitions {
            let count = self.rng.gen_range(1..=2);
            for _ in 0..count {
                let at = self.rng.gen_range(start..end);
                let size = self.rng.gen_range(1..self.config.n.max(2));
                let mut side = BTreeSet::new();
                while side.len() < size {
                    side.insert(self.rng.gen_range(0..self.config.n));
                }
                self.push(at, Event::Partition { side });
                let heal = (at + self.rng.gen_range(200..3_000)).min(end);
                self.push(heal, Event::Heal);
            }
        }
        for member in 0..self.config.n {
            if self.members[member].behaviour.is_some() {
                let at = start + self.rng.gen_range(0..self.config.interval_ms);
                self.push(at, Event::Byzantine { member });
            }
        }
        self.push(end, Event::FaultsEnd);
    }

    /// Starts member `i` from what is durable.
    fn boot(&mut self, i: usize) {
        let member = &mut self.members[i];
        let tip = member
            .store
            .last()
            .map(|b| b.header.clone())
            .unwrap_or_else(|| self.fed.params().genesis_block().header);
        let last_signed = member.policy.last().map(|signed| {
            (
                signed.height,
                elements::BlockHash::from_byte_array(signed.block_hash),
            )
        });
        member.consensus = Some(Consensus::new(
            Arc::clone(&self.fed.federation),
            i,
            self.fed.p2p_secrets[i].clone(),
            tip,
            member.record.clone(),
            last_signed,
        ));
        member.up = true;
        member.scheduled_ticks.clear();
        let now = self.time;
        self.push(now, Event::Tick { member: i });
    }

    /// Runs to the end; Ok with a report, or the first violation with its schedule.
    pub fn run(mut self) -> Result<SimReport, Box<SimFailure>> {
        // The calm phase always outlasts the liveness window, so a slow recovery is reported as such.
        let calm = self.config.calm_duration_ms.max(
            self.config.liveness_window_ms()
                + (blocksigner::rules::FETCH_TIMEOUT_INTERVALS + 2) * self.config.interval_ms,
        );
        let end = self.fault_end_time + calm;
        while let Some(((at, seq), event)) = self.queue.pop_first() {
            if at > end {
                self.queue.insert((at, seq), event);
                break;
            }
            self.time = at;
            self.step(event);
            if let Some(violation) = self.checker.violation.clone() {
                return Err(self.failure(violation));
            }
            if self.recovery_ms.is_none()
                && !self.faults_active
                && self.checker.highest_final() > self.height_at_fault_end
            {
                self.recovery_ms = Some(self.time - self.fault_end_time);
            }
        }
        self.time = end;
        self.final_checks()
            .map_err(|violation| self.failure(violation))?;
        Ok(SimReport {
            final_height: self.checker.highest_final(),
            delivered: self.delivered,
            crashes: self.crashes,
            recovery_ms: self.recovery_ms,
        })
    }

    fn failure(&self, violation: Violation) -> Box<SimFailure> {
        let mut schedule: Vec<String> = self.trace.iter().cloned().collect();
        for (i, member) in self.members.iter().enumerate() {
            let state = match &member.consensus {
                Some(c) => format!("{:?}", c.status()),
                None => "down".to_string(),
            };
            schedule.push(format!(
                "final state of member {i} (byzantine: {:?}): {state}",
                member.behaviour
            ));
        }
        Box::new(SimFailure {
            config: self.config.clone(),
            violation,
            schedule,
        })
    }

    fn final_checks(&self) -> Result<(), Violation> {
        let live = self.config.byzantine <= self.config.liveness_bound();
        if !live {
            return Ok(());
        }
        // A member catching up may have been asking a peer that then stayed dead: one fetch timeout more.
        let dead_allowance = if self.dead.is_empty() {
            0
        } else {
            blocksigner::rules::FETCH_TIMEOUT_INTERVALS * self.config.interval_ms
        };
        let window = self.config.liveness_window_ms() + dead_allowance;
        match self.recovery_ms {
            Some(ms) if ms <= window => {}
            Some(ms) => {
                return Err(Violation(format!(
                    "LIVENESS: first new final block {ms} ms after the faults stopped (window {window} ms)"
                )))
            }
            None => {
                return Err(Violation(format!(
                    "LIVENESS: no new final block in the {} ms after the faults stopped (height stayed {})",
                    self.config.calm_duration_ms, self.height_at_fault_end
                )))
            }
        }
        // Every honest member has caught up to at least the height reached when the faults stopped, plus one.
        for (i, member) in self.members.iter().enumerate() {
            if member.behaviour.is_some() || self.dead.contains(&i) {
                continue;
            }
            let height = member.store.len().saturating_sub(1) as u32;
            if height <= self.height_at_fault_end {
                return Err(Violation(format!(
                    "LIVENESS: honest member {i} is at height {height} at the end (height at fault end {})",
                    self.height_at_fault_end
                )));
            }
        }
        Ok(())
    }

    fn step(&mut self, event: Event) {
        match event {
            Event::Deliver { to, from, message } => {
                if !self.members[to].up || self.cut(from, to) {
                    return;
                }
                self.delivered += 1;
                self.log(format!("{from}->{to} {}", describe(&message)));
                if self.members[to].behaviour.is_some() {
                    self.members[to].byzantine.observe(&message);
                }
                self.handle(to, Input::Message { from, message });
            }
            Event::Tick { member } => {
                self.members[member].scheduled_ticks.remove(&self.time);
                if !self.members[member].up {
                    return;
                }
                let now_ms = self.member_clock(member);
                self.handle(member, Input::Tick { now_ms });
            }
            Event::SignerDone {
                member,
                epoch,
                height,
                hash,
                result,
            } => {
                if !self.members[member].up || self.members[member].epoch != epoch {
                    return;
                }
                let input = match result {
                    Ok(signature) => Input::BlockSigned {
                        height,
                        block_hash: hash,
                        signature,
                    },
                    Err(reason) => Input::SignFailed {
                        height,
                        block_hash: hash,
                        reason,
                    },
                };
                self.handle(member, input);
            }
            Event::Fetched {
                member,
                epoch,
                from,
                blocks,
            } => {
                if !self.members[member].up || self.members[member].epoch != epoch {
                    return;
                }
                self.log(format!("{from}->{member} fetched {} blocks", blocks.len()));
                self.handle(member, Input::BlocksFetched { from, blocks });
            }
            Event::Crash { member } => self.crash(member),
            Event::Restart { member } => {
                if !self.members[member].up && !self.dead.contains(&member) {
                    self.log(format!("member {member} restarts"));
                    self.boot(member);
                }
            }
            Event::Partition { side } => {
                if self.faults_active {
                    self.log(format!("partition {side:?} | rest"));
                    self.partition = Some(side);
                }
            }
            Event::Heal => {
                if self.partition.take().is_some() {
                    self.log("partition healed".into());
                }
            }
            Event::Byzantine { member } => {
                if self.members[member].up {
                    self.byzantine_act(member);
                }
                let next = self.time + self.rng.gen_range(20..self.config.interval_ms.max(21));
                self.push(next, Event::Byzantine { member });
            }
            Event::FaultsEnd => {
                self.faults_active = false;
                self.partition = None;
                self.height_at_fault_end = self.checker.highest_final();
                self.log(format!("faults end at height {}", self.height_at_fault_end));
                // Some crashed members never come back (within the liveness budget n - m - Byzantine): their last
                // votes are then only known to whoever received them.
                let budget = self
                    .config
                    .liveness_bound()
                    .saturating_sub(self.config.byzantine);
                let stay_dead = if budget > 0 {
                    self.rng.gen_range(0..=budget)
                } else {
                    0
                };
                for member in 0..self.config.n {
                    if !self.members[member].up
                        && self.members[member].behaviour.is_none()
                        && self.dead.len() < stay_dead
                    {
                        self.dead.insert(member);
                        self.log(format!("member {member} stays dead"));
                    }
                }
                for member in 0..self.config.n {
                    if !self.members[member].up && !self.dead.contains(&member) {
                        self.log(format!("member {member} restarts (faults end)"));
                        self.boot(member);
                    }
                }
            }
        }
    }

    fn cut(&self, a: usize, b: usize) -> bool {
        self.partition
            .as_ref()
            .is_some_and(|side| side.contains(&a) != side.contains(&b))
    }

    fn crash(&mut self, member: usize) {
        if !self.members[member].up || !self.faults_active {
            return;
        }
        self.crashes += 1;
        let m = &mut self.members[member];
        m.up = false;
        m.epoch += 1;
        m.consensus = None;
        self.log(format!("member {member} CRASHES"));
        let down_for = self.rng.gen_range(50..3_000);
        let at = self.time + down_for;
        self.push(at, Event::Restart { member });
    }

    fn handle(&mut self, member: usize, input: Input) {
        let Some(consensus) = self.members[member].consensus.as_mut() else {
            return;
        };
        let effects = consensus.handle(input);
        // A crash between any two effects (after the durable record, before the broadcast, ...).
        let crash_after = if self.faults_active
            && self.config.faults.crashes
            && self.members[member].behaviour.is_none()
            && !effects.is_empty()
            && self.rng.gen_bool(0.002)
        {
            Some(self.rng.gen_range(0..effects.len()))
        } else {
            None
        };
        for (index, effect) in effects.into_iter().enumerate() {
            if crash_after == Some(index) {
                self.log(format!("member {member} crashes before effect {index}"));
                self.crash(member);
                return;
            }
            self.execute(member, effect);
            if !self.members[member].up {
                return;
            }
        }
    }

    fn execute(&mut self, member: usize, effect: Effect) {
        match effect {
            Effect::Broadcast(message) => {
                if self.members[member].behaviour.is_some() {
                    self.byzantine_broadcast(member, message);
                } else {
                    self.send_all(member, message);
                }
            }
            Effect::Persist(record) => self.members[member].record = Some(record),
            Effect::SignBlock {
                height,
                block_hash,
                certificate,
            } => self.sign(member, height, block_hash, certificate),
            Effect::StoreBlock(block) => self.store(member, block),
            Effect::FetchBlocks {
                from,
                start_height,
                count,
            } => self.fetch(member, from, start_height, count),
            Effect::WakeAt { at_ms } => {
                let offset = self.members[member].clock_offset;
                let sim_at = if offset >= 0 {
                    at_ms.saturating_sub(offset as u64)
                } else {
                    at_ms.saturating_add(offset.unsigned_abs())
                };
                let sim_at = sim_at.max(self.time);
                if self.members[member].scheduled_ticks.insert(sim_at) {
                    self.push(sim_at, Event::Tick { member });
                }
            }
            Effect::Report(event) => self.on_report(member, event),
        }
    }

    fn on_report(&mut self, member: usize, event: ConsensusEvent) {
        if self.members[member].behaviour.is_some() {
            return;
        }
        match event {
            ConsensusEvent::Decided {
                height,
                round,
                block_hash,
            } => {
                self.log(format!(
                    "member {member} DECIDED h{height} r{round} {}",
                    hash8(&block_hash)
                ));
                self.checker.on_decided(member, height, block_hash);
            }
            ConsensusEvent::SigningRefused { height, reason, .. } => {
                self.checker.on_refused_request(member, height, &reason);
            }
            ConsensusEvent::Finalized {
                height, block_hash, ..
            } => {
                self.log(format!(
                    "member {member} FINAL h{height} {}",
                    hash8(&block_hash)
                ));
            }
            ConsensusEvent::Voted {
                kind,
                height,
                round,
                block_hash,
            } => {
                let value = block_hash.as_ref().map_or("nil".to_string(), hash8);
                self.log(format!(
                    "member {member} votes {kind:?} h{height} r{round} {value}"
                ));
            }
            ConsensusEvent::ProposalAccepted {
                from,
                height,
                round,
                block_hash,
            } => {
                self.log(format!(
                    "member {member} accepted proposal h{height} r{round} {} from {from}",
                    hash8(&block_hash)
                ));
            }
            ConsensusEvent::Rejected { from, reason } => {
                self.log(format!(
                    "member {member} rejected input from {from}: {reason}"
                ));
            }
            ConsensusEvent::RoundStarted { height, round } if round > 0 => {
                self.log(format!("member {member} round h{height} r{round}"));
            }
            _ => {}
        }
    }

    /// Network: one copy per other member, subject to the fault mix.
    fn send_all(&mut self, from: usize, message: ConsensusMessage) {
        for to in 0..self.config.n {
            if to != from {
                self.send(from, to, message.clone());
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, message: ConsensusMessage) {
        let f = &self.config.faults;
        let (loss, duplicate, max_delay) = if self.faults_active {
            (f.loss, f.duplicate, f.max_delay_ms)
        } else {
            (0.0, 0.0, 5)
        };
        if self.cut(from, to) || (loss > 0.0 && self.rng.gen_bool(loss)) {
            return;
        }
        let copies = if duplicate > 0.0 && self.rng.gen_bool(duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.rng.gen_range(1..=max_delay.max(1));
            let at = self.time + delay;
            self.push(
                at,
                Event::Deliver {
                    to,
                    from,
                    message: message.clone(),
                },
            );
        }
    }

    fn sign(
        &mut self,
        member: usize,
        height: u32,
        hash: elements::BlockHash,
        certificate: Option<CommitCertificate>,
    ) {
        let byzantine = self.members[member].behaviour.is_some();
        let epoch = self.members[member].epoch;
        let result = if byzantine {
            Ok(())
        } else {
            self.guard_decision(member, height, hash, certificate.as_ref())
        };
        let result = match result {
            Ok(()) => {
                let signature = self.fed.sign_digest(member, &hash);
                if byzantine {
                    self.checker.on_any_signature(member, height, hash);
                } else {
                    self.checker.on_honest_signature(member, height, hash);
                }
                Ok(signature)
            }
            Err(reason) => {
                self.log(format!(
                    "member {member} signer REFUSED h{height}: {reason}"
                ));
                self.checker.on_refused_request(member, height, &reason);
                Err(reason)
            }
        };
        let latency = self.rng.gen_range(1..5);
        let at = self.time + latency;
        self.push(
            at,
            Event::SignerDone {
                member,
                epoch,
                height,
                hash,
                result,
            },
        );
    }

    /// The guard: a certificate that verifies for exactly (height, hash), or an exact re-sign of the last
    /// approved decision; then the policy (one hash per height, never lower); the decision is durable at once.
    fn guard_decision(
        &mut self,
        member: usize,
        height: u32,
        hash: elements::BlockHash,
        certificate: Option<&CommitCertificate>,
    ) -> Result<(), String> {
        let policy = &mut self.members[member].policy;
        let resign = policy
            .last()
            .is_some_and(|last| last.height == height && last.block_hash == hash.to_byte_array());
        if !resign {
            let Some(certificate) = certificate else {
                return Err("no certificate for a new signing decision".into());
            };
            certificate
                .verify_for(&self.fed.federation, height, &hash)
                .map_err(|e| e.to_string())?;
        }
        policy
            .check(height, hash.to_byte_array())
            .map_err(|e| e.to_string())?;
        policy.record(height, hash.to_byte_array());
        Ok(())
    }

    fn store(&mut self, member: usize, block: elements::Block) {
        let m = &mut self.members[member];
        let height = block.header.height as usize;
        if height != m.store.len() {
            if m.behaviour.is_none() {
                let message = format!(
                    "member {member} stored height {height} on a store of {} blocks",
                    m.store.len()
                );
                self.checker.violation.get_or_insert(Violation(message));
            }
            return;
        }
        let parent = m.store[height - 1].header.clone();
        if m.behaviour.is_none() {
            self.checker
                .on_store(member, self.fed.params(), &parent, &block);
        }
        self.members[member].store.push(block);
    }

    fn fetch(&mut self, member: usize, from: usize, start: u32, count: u32) {
        if from >= self.config.n || !self.members[from].up || self.cut(member, from) {
            return;
        }
        let end = (start as usize)
            .saturating_add(count as usize)
            .min(self.members[from].store.len());
        let mut blocks: Vec<elements::Block> = self.members[from]
            .store
            .get(start as usize..end)
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        if self.members[from].behaviour.is_some() && !blocks.is_empty() && self.rng.gen_bool(0.5) {
            // A Byzantine peer serves a block without its signatures.
            let index = self.rng.gen_range(0..blocks.len());
            if let elements::BlockExtData::Dynafed {
                signblock_witness, ..
            } = &mut blocks[index].header.ext
            {
                signblock_witness.clear();
            }
        }
        let epoch = self.members[member].epoch;
        let at = self.time + 2 * self.rng.gen_range(1..=10);
        self.push(
            at,
            Event::Fetched {
                member,
                epoch,
                from,
                blocks,
            },
        );
    }
}
