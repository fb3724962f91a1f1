//! Signing keys in a PKCS#11 token, and the policy that guards them.
//!
//! A PKCS#11 HSM only promises that a key never leaves the token; it signs whatever it is asked to sign. This
//! crate therefore enforces the signing policy in our own process. Keys exist per [`KeyPurpose`] (`block-signing`,
//! `peg-wallet`), generated inside the token (sensitive, never extractable, sign-only) and found by label; a
//! label collision is an error ([`HsmError::KeyExists`]) and [`init_token`] never re-initialises an existing token.
//!
//! # The guards
//!
//! [`BlockSigningGuard`] (block-signing key), in this order:
//! 1. [`BlockSigningPolicy`] (pure): refuse a lower height, or a different block hash at the last signed height;
//! 2. a NEW (height, hash) decision needs the consensus certificate to pass the [`CertificateVerifier`]; re-signing
//!    exactly the last approved decision does not (crash between journal and signature);
//! 3. [`SignerJournal`]: append the decision to the append-only, checksummed journal and `fdatasync` it;
//! 4. the [`DigestSigner`] (a [`Pkcs11Signer`] in production, a [`SoftwareSigner`] in tests and the simulator)
//!    signs the 32-byte digest; the signature is normalised to low-S and verified against the public key.
//!
//! [`TxSigningGuard`] (peg-wallet key) does the same for Bitcoin peg-out transactions with the pure
//! [`PegoutPolicy`]: every input a known federation coin holding our key, every output a validated unpaid peg-out
//! (exact script and amount, each id paid at most once, ever) or change to the current federation script, fee and
//! fee rate within bounds, at most N sat of peg-outs per rolling window (only an explicit [`OperatorOverride`] lifts
//! that, journaled as `override`, logged at warn). It signs each input's BIP143 P2WSH SIGHASH_ALL digest, which it
//! computes itself from the transaction, the witness script and the value: a caller lying about a coin's value or
//! script gets signatures the network rejects, not a different spend.
//!
//! Every decision (approved, refused, override) is journaled with its reason and time; approvals are on disk before
//! the HSM is asked, so after a crash at any step the reopened guard replays them and cannot sign a second hash at a
//! height, a lower height, or pay a peg-out twice. Each signature costs exactly one journal `fdatasync`. Refusals are
//! journaled at most 4 per second; the rest are counted in a summary record (`rate-limited: N`), so a flood of refused
//! requests cannot fill the disk.
//! [`LoginAttempts`] counts failed PIN logins durably (SoftHSM never locks a PIN) and stops trying after N.
//!
//! # Threat model
//!
//! A PKCS#11 token guarantees only that the key can't be extracted. Anything that can open the token with the PIN
//! can sign anything: **the policy binds only signers that go through these guards.** So the guard must be the only
//! holder of the PIN and of the PKCS#11 session, and the networked code must not reach the token through another
//! path. The journal's lock stops two guards on one journal file, not two machines holding the same key with
//! separate journals, nor an attacker who edits or deletes the journal (restore it from a backup; never delete it to
//! get going). Refused requests are journaled too, rate-limited (at most 4 records per second plus a summary).
//!
//! # Its own process behind a local socket (built)
//!
//! The guards run in their **own long-lived signer process per token**, `functionary-signer`
//! (`functionary::signer_service`), reached by `functionaryd` over a Unix socket (mode 0600, or 0660 plus a peer-uid
//! check with `SO_PEERCRED` when the daemon runs as another user; deploy/systemd runs the signer as its own user,
//! the only one that can read the PIN file, the journal and the SoftHSM token directory, with no network at all).
//! The daemon (`signer.mode = "socket"`, the default) never reads the PIN nor loads the PKCS#11 module; it sends
//! `SignBlock { height, block_hash, certificate }` and gets a signature or a refusal. Why (facts in
//! shared/reference/hsm-pkcs11.md): the HSM enforces no policy, so the policy's strength is the strength of the
//! boundary around the process that holds the PIN; in process, any remote-code bug in the networked daemon (libp2p,
//! RPC, decoders) could read the PIN from memory and call `C_Sign` directly, bypassing the journal. Debian's SoftHSM
//! 2.6.1 is also not safe across processes sharing one token directory (11/50 failed starts while another process
//! logged in) while one long-lived process was undisturbed by 60 logins (8367 signatures, 0 errors): one signer
//! process per token is the operationally robust shape. What a compromised daemon can still do through the socket:
//! ask for signatures the policy allows (each new decision needs a valid commit certificate) and add rate-limited
//! refusal records. It cannot have a missing journal created: `CreateJournal` is accepted only from the signer's
//! own uid (operator tools); the journal of a new key is created by `ceremony member` when the key is generated,
//! and a lost one only by `functionary-cli signer-journal-init HEIGHT` (written complete, then linked into place).
//! The signer refuses to start with a PIN file readable by others or a data/journal directory writable by others. `signer.mode = "embedded"` (tests, benchmarks) still runs the guard on a thread of
//! `functionaryd`, which is then only as strong as the daemon; it logs a warning. Not yet behind the socket: the
//! peg-out guard ([`TxSigningGuard`], not called by the daemon yet) and admin commands that open the token
//! themselves (ceremony, key listing), which must not run while the signer does.
//!
//! Token ceremony helpers ([`init_token`], [`generate_key`], [`generate_purpose_key`], [`read_public_key`]) serve the
//! admin CLI and the devnet. With the `testing` feature, [`softhsm_testing`] gives each process its own SoftHSM token
//! directory.

mod error;
mod guard;
mod journal;
pub mod journal_v1;
mod pegout;
mod pin;
mod pin_attempts;
mod pkcs11;
mod policy;
mod purpose;
mod software;
mod tx_guard;
mod verify;

#[cfg(any(test, feature = "testing"))]
pub mod softhsm_testing;

pub use error::HsmError;
pub use guard::{BlockSigningGuard, CertificateVerifier, GuardError};
pub use journal::{
    encode_frame, JournalError, JournalRecord, SignRequestRecord, SignerJournal, Verdict,
    JOURNAL_VERSION,
};
pub use pegout::{
    FederationCoin, PegoutApproval, PegoutLimits, PegoutPolicy, PegoutRefusal, PegoutRequest,
    ValidatedPegout, MAX_TX_INPUTS, MAX_TX_OUTPUTS,
};
pub use pin::Pin;
pub use pin_attempts::{LoginAttempts, DEFAULT_MAX_PIN_FAILURES};
pub use pkcs11::{generate_key, init_token, read_public_key, Pkcs11Signer, TokenConfig};
pub use policy::{BlockSigningPolicy, Refusal, SignedBlock};
pub use purpose::{generate_purpose_key, purpose_public_key, KeyPurpose};
pub use software::SoftwareSigner;
pub use tx_guard::{Clock, OperatorOverride, TxSigningGuard};
pub use verify::{verify_digest_signature, MAX_SIGN_ATTEMPTS};

/// Anything that signs a 32-byte digest with a secp256k1 key.
///
/// Returned signatures are low-S and have been VERIFIED against [`DigestSigner::public_key`] over the digest before
/// they are returned (`secp256k1::Message::from_digest(*digest)`).
pub trait DigestSigner: Send {
    /// The public key whose private half signs.
    fn public_key(&self) -> secp256k1::PublicKey;
    /// Signs `digest` (already hashed; it is signed as is), returns a verified low-S signature.
    fn sign_digest(&mut self, digest: &[u8; 32]) -> Result<secp256k1::ecdsa::Signature, HsmError>;
}

impl<T: DigestSigner + ?Sized> DigestSigner for Box<T> {
    fn public_key(&self) -> secp256k1::PublicKey {
        (**self).public_key()
    }
    fn sign_digest(&mut self, digest: &[u8; 32]) -> Result<secp256k1::ecdsa::Signature, HsmError> {
        (**self).sign_digest(digest)
    }
}
