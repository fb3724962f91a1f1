//! What a member must remember across a crash about the height being decided: its own votes, its lock and
//! its decision. The daemon writes it (synced) when [`crate::Effect::Persist`] asks, before any later effect.

use serde::{Deserialize, Serialize};

use crate::certificate::{CertificateSignature, CommitCertificate};

/// Version byte of [`ConsensusRecord::encode`].
pub const RECORD_VERSION: u8 = 1;

/// A vote we cast, with its signature, so that it can be re-sent unchanged after a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CastVote {
    /// Round.
    pub round: u32,
    /// The block voted for, or nil.
    pub block_hash: Option<elements::BlockHash>,
    /// Our ed25519 signature.
    pub signature: CertificateSignature,
}

/// The durable part of a member's consensus state at one height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusRecord {
    /// The height being decided.
    pub height: u32,
    /// Our latest prevote at this height.
    pub prevote: Option<CastVote>,
    /// Our latest precommit at this height.
    pub precommit: Option<CastVote>,
    /// Our lock `(round, block)`.
    pub locked: Option<(u32, elements::BlockHash)>,
    /// The `m` prevotes that made the lock (what a re-proposal of the locked block carries).
    pub locked_polka: Vec<(u16, CertificateSignature)>,
    /// The locked block itself (consensus-encoded), so that a restarted member can re-propose it.
    pub locked_block: Option<Vec<u8>>,
    /// Our decision.
    pub decided: Option<CommitCertificate>,
}

/// Why stored record bytes are unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Empty, unknown version, malformed or trailing bytes.
    #[error("consensus record does not decode: {0}")]
    Decode(String),
}

impl ConsensusRecord {
    /// A record with nothing cast at `height`.
    pub fn empty(height: u32) -> Self {
        ConsensusRecord {
            height,
            prevote: None,
            precommit: None,
            locked: None,
            locked_polka: Vec::new(),
            locked_block: None,
            decided: None,
        }
    }

    /// A version byte, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        // Serialising integers, hashes and fixed arrays into a Vec cannot fail.
        if let Ok(body) = postcard::to_allocvec(self) {
            out.extend_from_slice(&body);
        }
        out
    }

    /// Parses [`ConsensusRecord::encode`] output; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let Some((&version, body)) = bytes.split_first() else {
            return Err(RecordError::Decode("empty".into()));
        };
        if version != RECORD_VERSION {
            return Err(RecordError::Decode(format!(
                "unsupported version {version} (expected {RECORD_VERSION})"
            )));
        }
        let (record, rest): (ConsensusRecord, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| RecordError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(RecordError::Decode(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        Ok(record)
    }
}
