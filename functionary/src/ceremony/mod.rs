//! The key ceremony: how a federation's config comes into being, checkably.
//!
//! 1. **member** (each member, on its own machine, [`run_member`]): initialise the HSM token if absent (never
//!    re-initialise), generate the block-signing and peg-wallet keys inside it if absent, create the libp2p
//!    identity if absent, and write a [`MemberDescriptor`] signed by each of the three keys.
//! 2. **assemble** (the coordinator, [`run_assemble`]): check every descriptor's proofs, refuse duplicates, add
//!    the threshold, interval, genesis time and the peg wallet's emergency keys and timelock, write
//!    `federation.toml` and print its config hash.
//! 3. **verify** (each member, [`run_verify`]): the config hashes to the hash agreed out of band, every proof is
//!    valid, the member's own keys and PeerId are in it; writes `<datadir>/federation.verified`. The daemon runs
//!    only a config this file names ([`require_verified`]).
//! 4. **audit** (anyone, [`run_audit`]): re-check everything from the transcript(s), descriptors and config.
//!
//! Every step appends a hash-chained JSON line to a transcript ([`transcript`]). `functionary-cli ceremony …`
//! ([`cli`]) runs the steps.

mod assemble;
mod audit;
pub mod cli;
mod descriptor;
mod error;
mod files;
mod member;
pub mod transcript;
mod verify;

pub use assemble::{
    assemble_config, run_assemble, throwaway_emergency_keys, AssembleOptions, AssembleOutcome,
    AssembleParams,
};
pub use audit::{run_audit, AuditOptions, AuditReport};
pub use descriptor::{
    check_distinct, DescriptorBody, LoadedDescriptor, MemberDescriptor, ProofKind, Proofs,
    BODY_TAG, DESCRIPTOR_VERSION, PROOF_TAG,
};
pub use error::CeremonyError;
pub use files::sha256_hex;
pub use member::{run_member, MemberOptions, MemberOutcome, DESCRIPTOR_FILE};
pub use transcript::{TranscriptEntry, TRANSCRIPT_FILE};
pub use verify::{require_verified, run_verify, VerifyOptions, VerifyOutcome, VERIFIED_FILE};
