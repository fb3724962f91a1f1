//! The simulator's invariants, checked after every step: never two final blocks at one height, never an honest
//! member signing two hashes at one height, every stored final block valid, honest decisions unique per height,
//! and never `m` block signatures (from anyone, Byzantine included) on two different blocks at one height.

use std::collections::{BTreeMap, BTreeSet};

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation(pub String);

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Global bookkeeping across members.
#[derive(Default)]
pub struct Checker {
    threshold: usize,
    /// The final block hash stored by any honest member at each height.
    final_by_height: BTreeMap<u32, elements::BlockHash>,
    /// Every hash an honest member's signer signed, by (member, height).
    honest_signed: BTreeMap<(usize, u32), elements::BlockHash>,
    /// Every block signature produced by anyone: height -> hash -> signers.
    signatures: BTreeMap<u32, BTreeMap<elements::BlockHash, BTreeSet<usize>>>,
    /// Honest decisions per height.
    decided: BTreeMap<u32, elements::BlockHash>,
    /// The first violation, if any.
    pub violation: Option<Violation>,
}

impl Checker {
    /// A checker for threshold `m`.
    pub fn new(threshold: usize) -> Self {
        Checker {
            threshold,
            ..Checker::default()
        }
    }

    fn fail(&mut self, message: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation(message));
        }
    }

    /// An honest member stored `block` on top of `parent`.
    pub fn on_store(
        &mut self,
        member: usize,
        params: &chain::FederationParams,
        parent: &elements::BlockHeader,
        block: &elements::Block,
    ) {
        let height = block.header.height;
        let hash = block.block_hash();
        if let Err(error) = chain::validate_final_block(params, parent, block) {
            self.fail(format!(
                "member {member} stored an invalid final block {hash} at height {height}: {error}"
            ));
            return;
        }
        match self.final_by_height.get(&height) {
            Some(existing) if *existing != hash => {
                let message = format!(
                    "FORK: height {height} is final as {existing} and as {hash} (member {member})"
                );
                self.fail(message);
            }
            Some(_) => {}
            None => {
                self.final_by_height.insert(height, hash);
            }
        }
    }

    /// An honest member's signer produced a signature on `hash` at `height`.
    pub fn on_honest_signature(&mut self, member: usize, height: u32, hash: elements::BlockHash) {
        match self.honest_signed.get(&(member, height)) {
            Some(previous) if *previous != hash => {
                let message =
                    format!("DOUBLE SIGN: honest member {member} signed {previous} and {hash} at height {height}");
                self.fail(message);
            }
            _ => {
                self.honest_signed.insert((member, height), hash);
            }
        }
        self.on_any_signature(member, height, hash);
    }

    /// Anyone (Byzantine included) produced a valid block signature.
    pub fn on_any_signature(&mut self, member: usize, height: u32, hash: elements::BlockHash) {
        let by_hash = self.signatures.entry(height).or_default();
        by_hash.entry(hash).or_default().insert(member);
        let complete: Vec<elements::BlockHash> = by_hash
            .iter()
            .filter(|(_, signers)| signers.len() >= self.threshold)
            .map(|(hash, _)| *hash)
            .collect();
        if complete.len() > 1 {
            self.fail(format!(
                "FORK POSSIBLE: blocks {complete:?} at height {height} each have m signatures"
            ));
        }
    }

    /// An honest member decided `hash` at `height`.
    pub fn on_decided(&mut self, member: usize, height: u32, hash: elements::BlockHash) {
        match self.decided.get(&height) {
            Some(previous) if *previous != hash => {
                let message = format!(
                    "CERTIFICATES DIVERGE: height {height} decided as {previous} and as {hash} (member {member})"
                );
                self.fail(message);
            }
            Some(_) => {}
            None => {
                self.decided.insert(height, hash);
            }
        }
    }

    /// An honest member's consensus asked to sign a hash its signer refused (a protocol bug within the bound).
    pub fn on_refused_request(&mut self, member: usize, height: u32, reason: &str) {
        self.fail(format!("honest member {member} asked its signer to sign at height {height} and was refused: {reason}"));
    }

    /// Highest final height seen by any honest member.
    pub fn highest_final(&self) -> u32 {
        self.final_by_height
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
    }
}
