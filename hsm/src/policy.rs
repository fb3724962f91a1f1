//! The block-signing policy: pure, no IO.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The last block signing decision: this height was signed (or was about to be) with this block hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedBlock {
    /// Block height.
    pub height: u32,
    /// The 32-byte digest that was signed (the block hash, raw byte order).
    pub block_hash: [u8; 32],
}

/// Why the policy refuses a request. `Display` prints hashes as hex in raw byte order (as passed to the guard, not
/// the reversed order `elements-cli` displays).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A new (height, hash) decision came without a certificate the [`crate::CertificateVerifier`] accepts.
    Certificate {
        /// Requested height.
        height: u32,
        /// Requested block hash.
        block_hash: [u8; 32],
        /// What the verifier said.
        reason: String,
    },
    /// The requested height is below the last signed height.
    HeightRegression {
        /// Requested height.
        requested: u32,
        /// Last signed height.
        last: u32,
    },
    /// A different hash was already signed at this height.
    ConflictingHash {
        /// The height.
        height: u32,
        /// The hash signed before.
        signed: [u8; 32],
        /// The hash now requested.
        requested: [u8; 32],
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Certificate {
                height,
                block_hash,
                reason,
            } => write!(
                f,
                "refusing to sign block {} at height {height}: certificate rejected: {reason}",
                hex::encode(block_hash)
            ),
            Refusal::HeightRegression { requested, last } => write!(
                f,
                "refusing to sign height {requested}: below the last signed height {last}"
            ),
            Refusal::ConflictingHash {
                height,
                signed,
                requested,
            } => write!(
                f,
                "refusing to sign block {} at height {height}: block {} was already signed at that height",
                hex::encode(requested),
                hex::encode(signed)
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Anti-double-sign rules over the last signing decision.
///
/// * a height lower than the last signed height is refused;
/// * at the last signed height, any hash other than the signed one is refused; the identical hash is allowed
///   (idempotent: needed after a crash between journal write and signature);
/// * higher heights are allowed.
///
/// The certificate rule (a new decision needs a consensus certificate) is applied by the guard, which owns the
/// verifier; this type only knows the last decision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockSigningPolicy {
    last: Option<SignedBlock>,
}

impl BlockSigningPolicy {
    /// A policy whose last decision is `last` (`None`: nothing signed yet).
    pub fn new(last: Option<SignedBlock>) -> Self {
        BlockSigningPolicy { last }
    }

    /// Whether signing `block_hash` at `height` is allowed.
    pub fn check(&self, height: u32, block_hash: [u8; 32]) -> Result<(), Refusal> {
        let Some(last) = self.last else {
            return Ok(());
        };
        if height < last.height {
            return Err(Refusal::HeightRegression {
                requested: height,
                last: last.height,
            });
        }
        if height == last.height && block_hash != last.block_hash {
            return Err(Refusal::ConflictingHash {
                height,
                signed: last.block_hash,
                requested: block_hash,
            });
        }
        Ok(())
    }

    /// Records a decision. Only moves forward: a request [`check`](Self::check) would refuse is ignored, so callers
    /// must check first.
    pub fn record(&mut self, height: u32, block_hash: [u8; 32]) {
        if self.check(height, block_hash).is_ok() {
            self.last = Some(SignedBlock { height, block_hash });
        }
    }

    /// The last decision.
    pub fn last(&self) -> Option<SignedBlock> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: [u8; 32] = [0xaa; 32];
    const Y: [u8; 32] = [0xbb; 32];

    #[test]
    fn empty_policy_allows_anything() {
        let p = BlockSigningPolicy::new(None);
        assert_eq!(p.check(0, X), Ok(()));
        assert_eq!(p.check(u32::MAX, Y), Ok(()));
        assert_eq!(p.last(), None);
    }

    #[test]
    fn rules_table() {
        let mut p = BlockSigningPolicy::new(None);
        p.record(5, X);
        assert_eq!(
            p.last(),
            Some(SignedBlock {
                height: 5,
                block_hash: X
            })
        );
        assert_eq!(
            p.check(5, X),
            Ok(()),
            "same hash at same height is idempotent"
        );
        assert_eq!(
            p.check(5, Y),
            Err(Refusal::ConflictingHash {
                height: 5,
                signed: X,
                requested: Y
            })
        );
        assert_eq!(
            p.check(4, X),
            Err(Refusal::HeightRegression {
                requested: 4,
                last: 5
            })
        );
        assert_eq!(
            p.check(0, Y),
            Err(Refusal::HeightRegression {
                requested: 0,
                last: 5
            })
        );
        assert_eq!(p.check(6, Y), Ok(()));
        assert_eq!(p.check(6, X), Ok(()));
    }

    #[test]
    fn record_never_moves_backwards_or_overwrites() {
        let mut p = BlockSigningPolicy::new(Some(SignedBlock {
            height: 10,
            block_hash: X,
        }));
        p.record(9, Y);
        p.record(10, Y);
        assert_eq!(
            p.last(),
            Some(SignedBlock {
                height: 10,
                block_hash: X
            })
        );
        p.record(11, Y);
        assert_eq!(
            p.last(),
            Some(SignedBlock {
                height: 11,
                block_hash: Y
            })
        );
    }

    #[test]
    fn refusals_display_heights_and_hex() {
        let r = Refusal::ConflictingHash {
            height: 5,
            signed: X,
            requested: Y,
        };
        let s = r.to_string();
        assert!(
            s.contains(&hex::encode(X)) && s.contains(&hex::encode(Y)) && s.contains("height 5"),
            "{s}"
        );
        let s = Refusal::HeightRegression {
            requested: 4,
            last: 5,
        }
        .to_string();
        assert!(s.contains('4') && s.contains('5'), "{s}");
    }
}
