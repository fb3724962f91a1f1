//! Elements-format blocks of our federation: parameters, genesis, block building, the signing digest,
//! signblock-witness assembly and Elements header-proof validation.
//!
//! Pure library: no IO, no clocks, no randomness. All consensus bytes use the `elements` consensus encoder.
//! "Member index" everywhere = position in [`FederationParams::sorted_keys`].

mod build;
mod error;
mod genesis;
pub mod ledger;
pub mod mempool;
mod merkle;
mod multisig;
mod params;
pub mod proof;
mod signature;
mod validate;

pub use build::{
    attach_signatures, build_block, signing_digest, verify_member_signature, BLOCK_VERSION,
};
pub use error::{BlockError, ParamsError, ProofError};
pub use genesis::{argument_commitment, derive_policy_asset};
pub use merkle::merkle_root;
pub use params::{
    FederationParams, InitialCoins, FEDPEGSCRIPT, MAX_CHAIN_NAME_LEN, MAX_MEMBERS,
    MAX_SIGNATURE_WITH_SIGHASH_LEN,
};
pub use signature::SIGHASH_ALL;
pub use validate::{block_signers, validate_final_block, validate_proposal, MAX_BLOCK_WEIGHT};
