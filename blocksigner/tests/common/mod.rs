//! A deterministic in-test network of `Consensus` instances: simulated clock, message queue with optional drops,
//! duplicates and delays, software secp256k1 block signers behind a one-hash-per-height guard, and block stores.
//!
//! Safety is checked on every stored block: no two different final blocks at one height across all members,
//! every stored block passes `chain::validate_final_block` against the member's previous block, and no signer
//! ever signs two hashes at one height.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use blocksigner::{
    Consensus, ConsensusEvent, ConsensusMessage, Effect, Federation, FinalizedVia, Input, Rejection,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secp256k1::SECP256K1;

/// Block interval of the simulated federation.
pub const INTERVAL_MS: u64 = 1_000;
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
        last_signed: Option<(u32, elements::BlockHash)>,
    ) -> Consensus {
        Consensus::new(
            Arc::clone(&self.federation),
            member,
            p2p_secret(member),
            tip,
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

/// The per-member signer guard: one hash per height, never lower (what `hsm::BlockSigningGuard` enforces).
#[derive(Clone, Debug, Default)]
pub struct Guard {
    pub last: Option<(u32, elements::BlockHash)>,
}

impl Guard {
    pub fn allow(&mut self, height: u32, hash: elements::BlockHash) -> Result<(), String> {
        match self.last {
            Some((last_height, _)) if height < last_height => Err(format!(
                "height {height} below last signed height {last_height}"
            )),
            Some((last_height, last_hash)) if height == last_height && hash != last_hash => {
                Err(format!("already signed {last_hash} at height {height}"))
            }
            _ => {
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

/// The simulated federation.
pub struct Net {
    pub fixture: Fixture,
    pub members: Vec<Member>,
    pub now_ms: u64,
    pub links: Links,
    rng: StdRng,
    queue: BTreeMap<(u64, u64), (usize, Event)>,
    seq: u64,
    /// Headers of every proposed block, by hash (what a daemon would hand to its signer).
    headers: BTreeMap<elements::BlockHash, elements::BlockHeader>,
    /// Every block stored by anyone, by height: the global no-fork check.
    pub finalized: BTreeMap<u32, elements::BlockHash>,
    /// Every signature produced, by (member, height).
    pub signed: BTreeMap<(usize, u32), elements::BlockHash>,
    /// Every report and every SignBlock request, by member.
    pub events: Vec<(usize, ConsensusEvent)>,
    pub sign_requests: Vec<(usize, u32, elements::BlockHash)>,
    /// Messages a member sent (decoded), in order.
    pub sent: Vec<(usize, ConsensusMessage)>,
    /// Member pairs (from, to) whose messages are dropped.
    pub cut: BTreeSet<(usize, usize)>,
}

impl Net {
    pub fn new(n: usize, m: usize, seed: u64) -> Self {
        let fixture = Fixture::new(n, m);
        let genesis = fixture.genesis();
        let members = (0..n)
            .map(|member| Member {
                consensus: fixture.consensus(member, genesis.header.clone(), None),
                guard: Guard::default(),
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
            signed: BTreeMap::new(),
            events: Vec::new(),
            sign_requests: Vec::new(),
            sent: Vec::new(),
            cut: BTreeSet::new(),
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

    /// Crash and restart: a fresh `Consensus` from the member's stored tip and its guard's last signed
    /// (height, hash), as the daemon does from its block store and signer journal.
    pub fn restart(&mut self, member: usize) {
        let tip = self.members[member]
            .chain
            .last()
            .expect("genesis")
            .header
            .clone();
        let last_signed = self.members[member].guard.last;
        self.members[member].consensus = self.fixture.consensus(member, tip, last_signed);
        self.set_online(member);
    }

    /// Restart with an explicit journal state.
    pub fn restart_with(&mut self, member: usize, last_signed: Option<(u32, elements::BlockHash)>) {
        self.members[member].guard.last = last_signed;
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

    fn handle(&mut self, member: usize, input: Input) {
        let effects = self.members[member].consensus.handle(input);
        for effect in effects {
            self.execute(member, effect);
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

    fn execute(&mut self, member: usize, effect: Effect) {
        let now = self.now_ms;
        match effect {
            Effect::Broadcast(message) => {
                let bytes = message.encode();
                let decoded = ConsensusMessage::decode(&bytes).expect("our own encoding decodes");
                assert_eq!(decoded, message, "codec round trip");
                if let ConsensusMessage::Proposal(proposal) = &message {
                    self.headers
                        .insert(proposal.block.block_hash(), proposal.block.header.clone());
                }
                self.sent.push((member, message));
                for to in 0..self.n() {
                    if to == member || self.cut.contains(&(member, to)) {
                        continue;
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
            Effect::SignBlock { height, block_hash } => {
                self.sign_requests.push((member, height, block_hash));
                let result = self.members[member].guard.allow(height, block_hash);
                let input = match result {
                    Ok(()) => {
                        let header = self
                            .headers
                            .get(&block_hash)
                            .expect("signing a proposed block")
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
                    Err(reason) => Input::SignFailed {
                        height,
                        block_hash,
                        reason,
                    },
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
        self.members[member].chain.push(block);
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
                    self.handle(member, Input::Message { from, message });
                }
                Event::Input(input) => self.handle(member, *input),
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

    /// Reports of one member.
    pub fn events_of(&self, member: usize) -> impl Iterator<Item = &ConsensusEvent> {
        self.events
            .iter()
            .filter(move |(m, _)| *m == member)
            .map(|(_, e)| e)
    }

    /// Rejections anyone reported.
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
