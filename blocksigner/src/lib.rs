//! The functionary's block-signing consensus: a pure state machine ([`Consensus::handle`] turns an
//! [`Input`] into [`Effect`]s) and the wire messages it exchanges ([`ConsensusMessage`]).
//!
//! No IO, clocks, randomness, files or async: the daemon executes the effects, and a deterministic
//! simulator can run many instances. The protocol rules are written down in [`rules`].

mod codec;
mod consensus;
mod federation;
mod height;
mod io;
mod message;
pub mod rules;
mod sync;

pub use codec::{DecodeError, WIRE_VERSION};
pub use consensus::Consensus;
pub use federation::Federation;
pub use io::{ConsensusEvent, ConsensusStatus, Effect, FinalizedVia, Input, Rejection};
pub use message::{
    BlockSignature, ConsensusMessage, Precommit, Proposal, Status, MAX_BLOCK_SIGNATURE_BYTES,
    MAX_MESSAGE_BYTES,
};
