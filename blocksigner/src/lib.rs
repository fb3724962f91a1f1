//! The functionary's block-signing consensus: a pure state machine ([`Consensus::handle`] turns an
//! [`Input`] into [`Effect`]s) and the wire messages it exchanges ([`ConsensusMessage`]).
//!
//! No IO, clocks, randomness, files or async: the daemon executes the effects, and a deterministic
//! simulator can run many instances. The protocol rules are written down in [`rules`].

mod certificate;
mod codec;
mod consensus;
mod content;
mod federation;
mod height;
mod io;
mod message;
mod record;
pub mod rules;
mod sync;
mod votes;

pub use certificate::{
    CertificateError, CertificateSignature, CommitCertificate, CERTIFICATE_VERSION,
    MAX_CERTIFICATE_VOTES,
};
pub use codec::{DecodeError, WIRE_VERSION};
pub use consensus::Consensus;
pub use content::{BlockContent, ContentError, EmptyBlocks};
pub use federation::Federation;
pub use height::Step;
pub use io::{ConsensusEvent, ConsensusStatus, Effect, FinalizedVia, Input, Rejection};
pub use message::{
    BlockSignature, Commit, ConsensusMessage, Proposal, Status, Vote, VoteKind,
    MAX_BLOCK_SIGNATURE_BYTES, MAX_MESSAGE_BYTES,
};
pub use record::{CastVote, ConsensusRecord, RecordError, RECORD_VERSION};
