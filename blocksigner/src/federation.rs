//! The static description of the federation the state machine runs in.

/// Everything about the federation that every member agrees on, shared by all parts of the daemon.
#[derive(Clone, Debug)]
pub struct Federation {
    /// Block-signing parameters: sorted secp256k1 keys (member index = position), threshold m, genesis.
    pub params: chain::FederationParams,
    /// Each member's p2p (ed25519) identity key, by member index. Precommits are signed with these.
    pub p2p_keys: Vec<ed25519_dalek::VerifyingKey>,
    /// Slot length in milliseconds (the block interval). A value of 0 is treated as 1.
    pub interval_ms: u64,
    /// Base round timeout in milliseconds (R3), much shorter than the interval. 0 is treated as 1.
    pub round_timeout_ms: u64,
}

impl Federation {
    /// n: the number of members.
    pub fn member_count(&self) -> usize {
        self.params.member_count()
    }

    /// m: signatures (and precommits) needed.
    pub fn threshold(&self) -> usize {
        self.params.threshold()
    }

    /// The slot length, never 0.
    pub fn interval_ms(&self) -> u64 {
        self.interval_ms.max(1)
    }

    /// The base round timeout, never 0.
    pub fn round_timeout_ms(&self) -> u64 {
        self.round_timeout_ms.max(1)
    }

    /// The p2p key of `member`, if the index is in range.
    pub fn p2p_key(&self, member: usize) -> Option<&ed25519_dalek::VerifyingKey> {
        self.p2p_keys.get(member)
    }
}
