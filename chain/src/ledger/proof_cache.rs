//! A process-wide cache of verified proofs and scripts (Elements' `CachingRangeProofChecker` /
//! `CachingSurjectionProofChecker`, Bitcoin Core's script execution cache): a rangeproof, surjection proof or a
//! transaction's input scripts checked when the transaction entered the mempool are not checked again when the
//! block carrying it is validated, nor when the mempool re-validates after a block. Only successes are cached,
//! keyed by SHA-256 of everything the verification reads, so a hit gives exactly the answer a verification would;
//! the cache changes how fast, never what is accepted.

use elements::hashes::{sha256, HashEngine};
use elements::secp256k1_zkp::{Generator, PedersenCommitment, RangeProof, SurjectionProof};
use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};

/// Entries kept (32-byte key + 8-byte value each; ~10 MB with map overhead at the cap).
const CAPACITY: usize = 200_000;

#[derive(Default)]
struct ProofCache {
    verified: HashMap<[u8; 32], u64>,
    order: VecDeque<[u8; 32]>,
}

static CACHE: LazyLock<Mutex<ProofCache>> = LazyLock::new(Mutex::default);

fn cache() -> std::sync::MutexGuard<'static, ProofCache> {
    CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lookup(key: &[u8; 32]) -> Option<u64> {
    cache().verified.get(key).copied()
}

fn remember(key: [u8; 32], value: u64) {
    let mut cache = cache();
    if cache.verified.insert(key, value).is_none() {
        cache.order.push_back(key);
        while cache.order.len() > CAPACITY {
            if let Some(old) = cache.order.pop_front() {
                cache.verified.remove(&old);
            }
        }
    }
}

/// Forgets every cached verification (benchmarks measure cold verification with it).
pub fn clear_proof_cache() {
    let mut cache = cache();
    cache.verified.clear();
    cache.order.clear();
}

/// Verifies `proof` for `commitment` under `generator` with `extra` (the output script) as Elements does; returns
/// the proven range's minimum value. Cached on success.
pub(crate) fn verify_rangeproof(
    proof: &RangeProof,
    commitment: PedersenCommitment,
    extra: &[u8],
    generator: Generator,
) -> Result<u64, String> {
    let mut engine = sha256::Hash::engine();
    engine.input(b"functionary/rangeproof/v1");
    engine.input(&proof.serialize());
    engine.input(&commitment.serialize());
    engine.input(&generator.serialize());
    engine.input(&(extra.len() as u64).to_le_bytes());
    engine.input(extra);
    let key = sha256::Hash::from_engine(engine).to_byte_array();
    if let Some(min) = lookup(&key) {
        return Ok(min);
    }
    let range = proof
        .verify(super::confidential::secp(), commitment, extra, generator)
        .map_err(|e| e.to_string())?;
    remember(key, range.start);
    Ok(range.start)
}

/// Verifies a surjection proof of `generator` over `domain`. Cached on success.
pub(crate) fn verify_surjection(
    proof: &SurjectionProof,
    generator: Generator,
    domain: &[Generator],
) -> bool {
    let mut engine = sha256::Hash::engine();
    engine.input(b"functionary/surjectionproof/v1");
    engine.input(&proof.serialize());
    engine.input(&generator.serialize());
    engine.input(&(domain.len() as u64).to_le_bytes());
    for g in domain {
        engine.input(&g.serialize());
    }
    let key = sha256::Hash::from_engine(engine).to_byte_array();
    if lookup(&key).is_some() {
        return true;
    }
    let valid = proof.verify(super::confidential::secp(), generator, domain);
    if valid {
        remember(key, 0);
    }
    valid
}

/// Verifies every input script of `tx` against `spent` ([`super::verify_input_scripts`]), unless the same
/// transaction (wtxid: every byte of it, witnesses included) was verified against the same spent outputs under the
/// same genesis hash before. Cached on success.
pub(crate) fn verify_input_scripts_cached(
    ctx: &super::LedgerContext,
    tx: &elements::Transaction,
    spent: &[elements::TxOut],
) -> Result<(), super::TxRejection> {
    let mut engine = sha256::Hash::engine();
    engine.input(b"functionary/scripts/v1");
    engine.input(&elements::encode::serialize(&tx.wtxid()));
    engine.input(&elements::encode::serialize(&ctx.genesis_hash));
    engine.input(&(spent.len() as u64).to_le_bytes());
    for out in spent {
        engine.input(&elements::encode::serialize(out));
    }
    let key = sha256::Hash::from_engine(engine).to_byte_array();
    if lookup(&key).is_some() {
        return Ok(());
    }
    super::verify_input_scripts(ctx, tx, spent)?;
    remember(key, 0);
    Ok(())
}

/// Verifies `tx`'s proofs and input scripts against `spent` (what its inputs spend) and remembers what verifies, so
/// that a later [`super::validate_transaction`] / [`super::connect_block`] of it finds them cached. Returns whether
/// everything verified. The verdict of later validation is unchanged by this call (only successes are cached); it
/// exists so that a caller can verify the independent transactions of a block on several threads first.
pub fn warm_proof_cache(
    ctx: &super::LedgerContext,
    tx: &elements::Transaction,
    spent: &[elements::TxOut],
) -> bool {
    let amounts = super::verify_amounts(ctx, tx, spent).is_ok();
    let scripts = verify_input_scripts_cached(ctx, tx, spent).is_ok();
    amounts && scripts
}
