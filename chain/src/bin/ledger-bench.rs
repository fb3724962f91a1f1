//! `ledger-bench`: throughput of the sidechain ledger on one thread, one JSON object per line (for
//! docs/BENCHMARKS.md). Run it in release: `cargo run --release -p chain --bin ledger-bench -- --count 20000`.
//!
//! Benchmarks (each line names its goal from issue 5 and whether it was met):
//! - `explicit_p2wpkh_1in2out`: explicit P2WPKH spends (1 input, 2 outputs + the explicit fee output) through
//!   `ledger::validate_transaction` with `RefusePegins` (goal >= 10,000 tx/s); plus `explicit_p2wpkh_scripts_only`,
//!   the same transactions through `ledger::verify_input_scripts` alone (no goal, for the breakdown);
//! - `confidential_p2wpkh_2in2out`: spends of two confidential outputs to two outputs blinded with
//!   `Transaction::blind` (rangeproofs, surjection proofs), through `validate_transaction` (goal >= 500 tx/s);
//! - `connect_block_explicit_1mb`: `ledger::connect_block` of a block of about `--block-kb` kB (serialized) of
//!   explicit P2WPKH spends, repeated `--blocks` times (goal <= 200 ms);
//! - `mempool_accept_explicit`: `mempool::Mempool::accept` of the explicit spends, validation included.
//!
//! Transactions are built and signed before timing; only validation is timed. Every transaction must validate:
//! a rejection stops the bench with an error line and exit code 1.

use chain::ledger::{
    connect_block, finish_coinbase, validate_transaction, verify_amounts, verify_input_scripts,
    LedgerContext, RefusePegins, Utxo,
};
use chain::mempool::{Mempool, MempoolLimits};
use elements::confidential::{Asset, AssetBlindingFactor, Nonce, Value, ValueBlindingFactor};
use elements::secp256k1_zkp::{All, Message, Secp256k1, SecretKey};
use elements::sighash::SighashCache;
use elements::{
    AssetId, AssetIssuance, Block, BlockHash, BlockHeader, EcdsaSighashType, LockTime, OutPoint,
    Script, Sequence, Transaction, TxIn, TxInWitness, TxMerkleNode, TxOut, TxOutSecrets,
    TxOutWitness, Txid,
};
use secp256k1::rand::{thread_rng, Rng};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Value of every funding output (satoshis).
const FUNDING_VALUE: u64 = 100_000;
/// Fee every bench transaction pays (satoshis of the policy asset).
const FEE: u64 = 1_000;
/// Keys the bench wallet rotates through.
const WALLET_KEYS: usize = 16;

/// Command-line options.
struct Options {
    /// Explicit transactions for the explicit and mempool benches.
    count: usize,
    /// Confidential transactions (blinding them is slow; default `count / 10`).
    conf_count: usize,
    /// Target serialized size of the block bench's block, in kB.
    block_kb: usize,
    /// Times the block is connected.
    blocks: usize,
}

const USAGE: &str = "usage: ledger-bench [--count N] [--conf-count N] [--block-kb K] [--blocks B]";

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        count: 20_000,
        conf_count: 0,
        block_kb: 1_000,
        blocks: 5,
    };
    let mut conf_count = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || -> Result<usize, String> {
            let text = args
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            text.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag} {text}: expected a positive integer\n{USAGE}"))
        };
        match flag.as_str() {
            "--count" => options.count = value()?,
            "--conf-count" => conf_count = Some(value()?),
            "--block-kb" => options.block_kb = value()?,
            "--blocks" => options.blocks = value()?,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    options.conf_count = conf_count.unwrap_or((options.count / 10).max(1));
    Ok(options)
}

/// A JSON value of a bench line.
enum Json {
    Str(String),
    Int(u64),
    Num(f64),
    Bool(bool),
}

fn print_line(fields: &[(&str, Json)]) {
    let body: Vec<String> = fields
        .iter()
        .map(|(name, value)| {
            let value = match value {
                Json::Str(s) => json_string(s),
                Json::Int(n) => n.to_string(),
                Json::Num(x) if x.is_finite() => format!("{x:.3}"),
                Json::Num(_) => "null".to_string(),
                Json::Bool(b) => b.to_string(),
            };
            format!("\"{name}\":{value}")
        })
        .collect();
    println!("{{{}}}", body.join(","));
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn profile() -> Json {
    Json::Str(
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .to_string(),
    )
}

/// One key of the bench wallet.
struct WalletKey {
    secret: SecretKey,
    public: bitcoin::PublicKey,
    /// Its P2WPKH script.
    script: Script,
    /// Its BIP143 scriptCode (P2PKH of the key).
    script_code: Script,
}

/// Everything the benches share.
struct Fixture {
    secp: Secp256k1<All>,
    ctx: LedgerContext,
    keys: Vec<WalletKey>,
}

impl Fixture {
    fn new() -> Result<Self, String> {
        let secp = Secp256k1::new();
        let mut keys = Vec::with_capacity(WALLET_KEYS);
        for seed in 1..=WALLET_KEYS {
            let secret = SecretKey::from_slice(&[seed as u8; 32]).map_err(|e| e.to_string())?;
            let public = bitcoin::PublicKey::new(secret.public_key(&secp));
            let wpkh = public
                .wpubkey_hash()
                .map_err(|e| format!("wallet key {seed}: {e}"))?;
            keys.push(WalletKey {
                secret,
                public,
                script: Script::new_v0_wpkh(&wpkh),
                script_code: Script::new_p2pkh(&public.pubkey_hash()),
            });
        }
        let policy_asset = AssetId::from_byte_array([0x5a; 32]);
        let ctx = LedgerContext {
            height: 1_000,
            lock_time_cutoff: 1_700_000_000,
            policy_asset,
            genesis_hash: BlockHash::from_byte_array([0x11; 32]),
            parent_genesis_hash: [0x22; 32],
            fee_script: keys[0].script.clone(),
            coinbase_maturity: 100,
            block_time: 1_700_000_600,
        };
        Ok(Fixture { secp, ctx, keys })
    }

    fn key(&self, i: usize) -> &WalletKey {
        &self.keys[i % self.keys.len()]
    }

    /// A funding outpoint no other bench uses: `(space, i)` encoded in the txid.
    fn outpoint(space: u8, i: usize) -> OutPoint {
        let mut bytes = [0u8; 32];
        bytes[0] = space;
        bytes[1..9].copy_from_slice(&(i as u64).to_le_bytes());
        bytes[31] = 0x77;
        OutPoint::new(Txid::from_byte_array(bytes), (i % 3) as u32)
    }

    fn explicit_out(&self, script: Script, value: u64) -> TxOut {
        TxOut {
            asset: Asset::Explicit(self.ctx.policy_asset),
            value: Value::Explicit(value),
            nonce: Nonce::Null,
            script_pubkey: script,
            witness: TxOutWitness::default(),
        }
    }

    fn utxo(txout: TxOut) -> Utxo {
        Utxo {
            txout,
            height: 1,
            time: 1_600_000_000,
            is_coinbase: false,
        }
    }

    fn txin(previous_output: OutPoint) -> TxIn {
        TxIn {
            previous_output,
            is_pegin: false,
            script_sig: Script::new(),
            sequence: Sequence::ENABLE_LOCKTIME_NO_RBF,
            asset_issuance: AssetIssuance::default(),
            witness: TxInWitness::default(),
        }
    }

    /// Signs every input of `tx` as P2WPKH by `signers[i]`, spending outputs worth `values[i]`.
    fn sign_p2wpkh(
        &self,
        tx: &mut Transaction,
        signers: &[usize],
        values: &[Value],
    ) -> Result<(), String> {
        let mut witnesses = Vec::with_capacity(tx.input.len());
        {
            let mut cache = SighashCache::new(&*tx);
            for (index, (signer, value)) in signers.iter().zip(values).enumerate() {
                let key = self.key(*signer);
                let sighash =
                    cache.segwitv0_sighash(index, &key.script_code, *value, EcdsaSighashType::All);
                let msg =
                    Message::from_digest_slice(sighash.as_ref()).map_err(|e| e.to_string())?;
                let mut sig = self
                    .secp
                    .sign_ecdsa(&msg, &key.secret)
                    .serialize_der()
                    .to_vec();
                sig.push(EcdsaSighashType::All as u8);
                witnesses.push(vec![sig, key.public.to_bytes()]);
            }
        }
        for (input, witness) in tx.input.iter_mut().zip(witnesses) {
            input.witness.script_witness = witness.into();
        }
        Ok(())
    }

    /// `n` explicit 1-in/2-out P2WPKH spends of funding outputs in `space`, with those outputs as UTXOs.
    fn explicit_spends(
        &self,
        space: u8,
        n: usize,
    ) -> Result<(Vec<Transaction>, HashMap<OutPoint, Utxo>), String> {
        let mut utxos = HashMap::with_capacity(n);
        let mut txs = Vec::with_capacity(n);
        for i in 0..n {
            let outpoint = Self::outpoint(space, i);
            let owner = i;
            utxos.insert(
                outpoint,
                Self::utxo(self.explicit_out(self.key(owner).script.clone(), FUNDING_VALUE)),
            );
            let pay = 60_000;
            let mut tx = Transaction {
                version: 2,
                lock_time: LockTime::ZERO,
                input: vec![Self::txin(outpoint)],
                output: vec![
                    self.explicit_out(self.key(i + 1).script.clone(), pay),
                    self.explicit_out(self.key(owner).script.clone(), FUNDING_VALUE - pay - FEE),
                    TxOut::new_fee(FEE, self.ctx.policy_asset),
                ],
            };
            self.sign_p2wpkh(&mut tx, &[owner], &[Value::Explicit(FUNDING_VALUE)])?;
            txs.push(tx);
        }
        Ok((txs, utxos))
    }

    /// `n` confidential 2-in/2-out P2WPKH spends of confidential funding outputs, blinded with
    /// `Transaction::blind`.
    fn confidential_spends(
        &self,
        n: usize,
    ) -> Result<(Vec<Transaction>, HashMap<OutPoint, Utxo>), String> {
        let mut rng = thread_rng();
        let mut utxos = HashMap::with_capacity(2 * n);
        let mut txs = Vec::with_capacity(n);
        let asset = self.ctx.policy_asset;
        for i in 0..n {
            let mut secrets = Vec::with_capacity(2);
            let mut values = Vec::with_capacity(2);
            let mut inputs = Vec::with_capacity(2);
            let owners = [2 * i, 2 * i + 1];
            for (slot, owner) in owners.iter().enumerate() {
                let outpoint = Self::outpoint(2, 2 * i + slot);
                let abf = AssetBlindingFactor::new(&mut rng);
                let vbf = ValueBlindingFactor::new(&mut rng);
                let value = Value::new_confidential_from_assetid(
                    &self.secp,
                    FUNDING_VALUE,
                    asset,
                    vbf,
                    abf,
                );
                let txout = TxOut {
                    asset: Asset::new_confidential(&self.secp, asset, abf),
                    value,
                    nonce: Nonce::Null,
                    script_pubkey: self.key(*owner).script.clone(),
                    witness: TxOutWitness::default(),
                };
                utxos.insert(outpoint, Self::utxo(txout));
                secrets.push(TxOutSecrets::new(asset, abf, FUNDING_VALUE, vbf));
                values.push(value);
                inputs.push(Self::txin(outpoint));
            }
            let blinding_key = self.key(i + 3).public.inner;
            let pay = rng.gen_range(10_000..150_000);
            let confidential_out = |script: Script, amount: u64| TxOut {
                nonce: Nonce::Confidential(blinding_key),
                ..self.explicit_out(script, amount)
            };
            let mut tx = Transaction {
                version: 2,
                lock_time: LockTime::ZERO,
                input: inputs,
                output: vec![
                    confidential_out(self.key(i + 5).script.clone(), pay),
                    confidential_out(self.key(i).script.clone(), 2 * FUNDING_VALUE - pay - FEE),
                    TxOut::new_fee(FEE, asset),
                ],
            };
            tx.blind(&mut rng, &self.secp, &secrets, false)
                .map_err(|e| format!("blinding confidential transaction {i}: {e}"))?;
            self.sign_p2wpkh(&mut tx, &owners, &values)?;
            txs.push(tx);
        }
        Ok((txs, utxos))
    }

    /// A block of explicit spends of about `target_bytes` serialized, with its parent UTXO set.
    fn explicit_block(
        &self,
        target_bytes: usize,
    ) -> Result<(Block, HashMap<OutPoint, Utxo>), String> {
        // About 400 bytes per explicit 1-in/2-out spend; build a few more than needed and stop at the target.
        let (spends, utxos) = self.explicit_spends(3, target_bytes / 300 + 1)?;
        Ok((self.block_of(spends, target_bytes), utxos))
    }

    /// A block of `spends` (in order, up to `target_bytes`), its coinbase claiming their fees.
    fn block_of(&self, spends: Vec<Transaction>, target_bytes: usize) -> Block {
        let coinbase = Transaction {
            version: 2,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                script_sig: Script::from(vec![0x02, 0xe8, 0x03]),
                sequence: Sequence::MAX,
                ..Self::txin(OutPoint::null())
            }],
            output: Vec::new(),
        };
        let mut txdata = vec![coinbase];
        let mut size = 200;
        let mut fees = 0;
        for tx in spends {
            let tx_size = tx.size();
            if size + tx_size > target_bytes {
                break;
            }
            size += tx_size;
            fees += FEE;
            txdata.push(tx);
        }
        let mut block = Block {
            header: BlockHeader {
                version: 0x2000_0000,
                prev_blockhash: BlockHash::from_byte_array([0x33; 32]),
                merkle_root: TxMerkleNode::from_byte_array([0; 32]),
                time: self.ctx.block_time,
                height: self.ctx.height,
                ext: Default::default(),
            },
            txdata,
        };
        finish_coinbase(&mut block, &self.ctx, fees);
        block
    }
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

/// The outputs each transaction spends, in input order.
fn spent_outputs(txs: &[Transaction], utxos: &HashMap<OutPoint, Utxo>) -> Vec<Vec<TxOut>> {
    txs.iter()
        .map(|tx| {
            tx.input
                .iter()
                .filter_map(|input| utxos.get(&input.previous_output).map(|u| u.txout.clone()))
                .collect()
        })
        .collect()
}

fn bench_explicit(fx: &Fixture, count: usize) -> Result<(), String> {
    let (txs, utxos) = fx.explicit_spends(1, count)?;
    let start = Instant::now();
    for (i, tx) in txs.iter().enumerate() {
        validate_transaction(&fx.ctx, &utxos, &RefusePegins, tx)
            .map_err(|e| format!("explicit transaction {i} refused: {e}"))?;
    }
    let elapsed = start.elapsed();
    let per_sec = rate(txs.len(), elapsed);
    print_line(&[
        ("bench", Json::Str("explicit_p2wpkh_1in2out".into())),
        ("profile", profile()),
        ("path", Json::Str("ledger::validate_transaction".into())),
        ("threads", Json::Int(1)),
        ("count", Json::Int(txs.len() as u64)),
        ("seconds", Json::Num(elapsed.as_secs_f64())),
        ("tx_per_sec", Json::Num(per_sec)),
        ("goal_tx_per_sec", Json::Int(10_000)),
        ("meets_goal", Json::Bool(per_sec >= 10_000.0)),
    ]);

    let spent = spent_outputs(&txs, &utxos);
    let start = Instant::now();
    for (i, (tx, spent)) in txs.iter().zip(&spent).enumerate() {
        verify_input_scripts(&fx.ctx, tx, spent)
            .map_err(|e| format!("explicit transaction {i}: scripts refused: {e}"))?;
    }
    let elapsed = start.elapsed();
    print_line(&[
        ("bench", Json::Str("explicit_p2wpkh_scripts_only".into())),
        ("profile", profile()),
        ("path", Json::Str("ledger::verify_input_scripts".into())),
        ("threads", Json::Int(1)),
        ("count", Json::Int(txs.len() as u64)),
        ("seconds", Json::Num(elapsed.as_secs_f64())),
        ("tx_per_sec", Json::Num(rate(txs.len(), elapsed))),
    ]);
    Ok(())
}

fn bench_confidential(fx: &Fixture, count: usize) -> Result<(), String> {
    let (txs, utxos) = fx.confidential_spends(count)?;
    // Cold: no proof verified before (the cache is cleared), as for a transaction first seen in a block.
    chain::ledger::clear_proof_cache();
    let start = Instant::now();
    for (i, tx) in txs.iter().enumerate() {
        validate_transaction(&fx.ctx, &utxos, &RefusePegins, tx)
            .map_err(|e| format!("confidential transaction {i} refused: {e}"))?;
    }
    let elapsed = start.elapsed();
    // Warm: the same transactions again, their proofs cached (a block of transactions this member already
    // admitted to its mempool, or the mempool re-validating after a block).
    let start = Instant::now();
    for (i, tx) in txs.iter().enumerate() {
        validate_transaction(&fx.ctx, &utxos, &RefusePegins, tx)
            .map_err(|e| format!("confidential transaction {i} refused: {e}"))?;
    }
    let warm_elapsed = start.elapsed();
    let per_sec = rate(txs.len(), elapsed);
    let avg_size = txs.iter().map(Transaction::size).sum::<usize>() / txs.len().max(1);
    print_line(&[
        ("bench", Json::Str("confidential_p2wpkh_2in2out".into())),
        ("profile", profile()),
        ("path", Json::Str("ledger::validate_transaction".into())),
        ("threads", Json::Int(1)),
        ("count", Json::Int(txs.len() as u64)),
        ("avg_tx_bytes", Json::Int(avg_size as u64)),
        ("seconds", Json::Num(elapsed.as_secs_f64())),
        ("tx_per_sec", Json::Num(per_sec)),
        ("goal_tx_per_sec", Json::Int(500)),
        ("meets_goal", Json::Bool(per_sec >= 500.0)),
        (
            "proofs_cached_tx_per_sec",
            Json::Num(rate(txs.len(), warm_elapsed)),
        ),
    ]);

    // Breakdown (cold again): the amount rules (balance, rangeproofs, surjection proofs) and the scripts, each alone.
    let spent = spent_outputs(&txs, &utxos);
    chain::ledger::clear_proof_cache();
    let start = Instant::now();
    for (i, (tx, spent)) in txs.iter().zip(&spent).enumerate() {
        verify_amounts(&fx.ctx, tx, spent)
            .map_err(|e| format!("confidential transaction {i}: amounts refused: {e}"))?;
    }
    let amounts_elapsed = start.elapsed();
    let start = Instant::now();
    for (i, (tx, spent)) in txs.iter().zip(&spent).enumerate() {
        verify_input_scripts(&fx.ctx, tx, spent)
            .map_err(|e| format!("confidential transaction {i}: scripts refused: {e}"))?;
    }
    let scripts_elapsed = start.elapsed();
    print_line(&[
        (
            "bench",
            Json::Str("confidential_p2wpkh_2in2out_breakdown".into()),
        ),
        ("profile", profile()),
        ("threads", Json::Int(1)),
        ("count", Json::Int(txs.len() as u64)),
        (
            "verify_amounts_tx_per_sec",
            Json::Num(rate(txs.len(), amounts_elapsed)),
        ),
        (
            "verify_input_scripts_tx_per_sec",
            Json::Num(rate(txs.len(), scripts_elapsed)),
        ),
    ]);

    // The floor: one 52-bit rangeproof verified by libsecp256k1-zkp directly, no ledger code around it.
    let secp = elements::secp256k1_zkp::Secp256k1::verification_only();
    let mut proofs = Vec::new();
    for tx in &txs {
        for out in &tx.output {
            if let (Value::Confidential(commitment), Some(proof)) =
                (out.value, out.witness.rangeproof.as_ref())
            {
                let generator = match out.asset {
                    Asset::Confidential(generator) => generator,
                    _ => return Err("a blinded output with an explicit asset".into()),
                };
                proofs.push((
                    proof.clone(),
                    commitment,
                    out.script_pubkey.clone(),
                    generator,
                ));
            }
        }
    }
    let start = Instant::now();
    for (i, (proof, commitment, script, generator)) in proofs.iter().enumerate() {
        proof
            .verify(&secp, *commitment, script.as_bytes(), *generator)
            .map_err(|e| format!("rangeproof {i} does not verify: {e}"))?;
    }
    let raw_elapsed = start.elapsed();
    let per_proof_us = raw_elapsed.as_secs_f64() * 1e6 / proofs.len().max(1) as f64;
    print_line(&[
        ("bench", Json::Str("rangeproof_verify_raw".into())),
        ("profile", profile()),
        (
            "path",
            Json::Str("secp256k1_zkp::RangeProof::verify".into()),
        ),
        ("threads", Json::Int(1)),
        ("proofs", Json::Int(proofs.len() as u64)),
        ("us_per_proof", Json::Num(per_proof_us)),
        (
            "max_tx_per_sec_with_2_proofs",
            Json::Num(1e6 / (2.0 * per_proof_us)),
        ),
    ]);

    // A block of about 1 MB of these transactions: cold (proofs never seen) and warm (proofs verified when the
    // transactions entered this member's mempool).
    let block = fx.block_of(txs.clone(), 1_000_000);
    chain::ledger::clear_proof_cache();
    let start = Instant::now();
    connect_block(&fx.ctx, &utxos, &RefusePegins, &block)
        .map_err(|e| format!("confidential block refused: {e}"))?;
    let cold = start.elapsed();
    let start = Instant::now();
    connect_block(&fx.ctx, &utxos, &RefusePegins, &block)
        .map_err(|e| format!("confidential block refused (warm): {e}"))?;
    let warm = start.elapsed();
    // Cold again, but proofs and scripts first verified on every core (what the daemon does before connecting a
    // block it has not seen the transactions of), then the sequential connect.
    chain::ledger::clear_proof_cache();
    let threads = std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1);
    let start = Instant::now();
    let block_spends: Vec<(&Transaction, Vec<TxOut>)> = block
        .txdata
        .iter()
        .skip(1)
        .map(|tx| {
            (
                tx,
                spent_outputs(std::slice::from_ref(tx), &utxos).remove(0),
            )
        })
        .collect();
    std::thread::scope(|scope| {
        for part in block_spends.chunks(block_spends.len().div_ceil(threads).max(1)) {
            let ctx = &fx.ctx;
            scope.spawn(move || {
                for (tx, spent) in part {
                    chain::ledger::warm_proof_cache(ctx, tx, spent);
                }
            });
        }
    });
    connect_block(&fx.ctx, &utxos, &RefusePegins, &block)
        .map_err(|e| format!("confidential block refused (parallel): {e}"))?;
    let parallel = start.elapsed();
    print_line(&[
        ("bench", Json::Str("connect_block_confidential_1mb".into())),
        ("profile", profile()),
        ("path", Json::Str("ledger::connect_block".into())),
        ("threads", Json::Int(1)),
        ("transactions", Json::Int(block.txdata.len() as u64)),
        ("block_bytes", Json::Int(block.size() as u64)),
        ("ms_cold", Json::Num(cold.as_secs_f64() * 1_000.0)),
        ("ms_proofs_cached", Json::Num(warm.as_secs_f64() * 1_000.0)),
        ("threads_parallel", Json::Int(threads as u64)),
        (
            "ms_cold_parallel_verify",
            Json::Num(parallel.as_secs_f64() * 1_000.0),
        ),
    ]);
    Ok(())
}

fn bench_block(fx: &Fixture, block_kb: usize, repeats: usize) -> Result<(), String> {
    let (block, utxos) = fx.explicit_block(block_kb * 1_000)?;
    let mut times = Vec::with_capacity(repeats);
    for run in 0..repeats {
        // Cold every run: nothing of this block verified before (no cached scripts or proofs).
        chain::ledger::clear_proof_cache();
        let start = Instant::now();
        let delta = connect_block(&fx.ctx, &utxos, &RefusePegins, &block)
            .map_err(|e| format!("block refused (run {run}): {e}"))?;
        times.push(start.elapsed().as_secs_f64() * 1_000.0);
        if delta.txids.len() != block.txdata.len() {
            return Err(format!(
                "connect_block returned {} txids for {} transactions",
                delta.txids.len(),
                block.txdata.len()
            ));
        }
    }
    // Warm: the block's transactions were verified when they entered this member's mempool.
    let start = Instant::now();
    connect_block(&fx.ctx, &utxos, &RefusePegins, &block)
        .map_err(|e| format!("block refused (warm run): {e}"))?;
    let warm_ms = start.elapsed().as_secs_f64() * 1_000.0;
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    let min = times.first().copied().unwrap_or(f64::NAN);
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    print_line(&[
        ("bench", Json::Str("connect_block_explicit_1mb".into())),
        ("profile", profile()),
        ("path", Json::Str("ledger::connect_block".into())),
        ("threads", Json::Int(1)),
        ("transactions", Json::Int(block.txdata.len() as u64)),
        ("block_bytes", Json::Int(block.size() as u64)),
        ("block_weight", Json::Int(block.weight() as u64)),
        ("runs", Json::Int(repeats as u64)),
        ("ms_min", Json::Num(min)),
        ("ms_median", Json::Num(median)),
        ("ms_mean", Json::Num(mean)),
        ("goal_ms", Json::Int(200)),
        ("meets_goal", Json::Bool(median <= 200.0)),
        ("ms_scripts_cached", Json::Num(warm_ms)),
    ]);
    Ok(())
}

fn bench_mempool(fx: &Fixture, count: usize) -> Result<(), String> {
    let (txs, utxos) = fx.explicit_spends(4, count)?;
    let mut pool = Mempool::new(MempoolLimits::default());
    let n = txs.len();
    let start = Instant::now();
    for (i, tx) in txs.into_iter().enumerate() {
        pool.accept(tx, i as u64, &utxos, |view, tx| {
            validate_transaction(&fx.ctx, &view, &RefusePegins, tx)
        })
        .map_err(|e| format!("mempool refused transaction {i}: {e}"))?;
    }
    let elapsed = start.elapsed();
    if pool.len() != n {
        return Err(format!(
            "mempool holds {} transactions after accepting {n}",
            pool.len()
        ));
    }
    print_line(&[
        ("bench", Json::Str("mempool_accept_explicit".into())),
        ("profile", profile()),
        (
            "path",
            Json::Str("mempool::Mempool::accept + ledger::validate_transaction".into()),
        ),
        ("threads", Json::Int(1)),
        ("count", Json::Int(n as u64)),
        ("seconds", Json::Num(elapsed.as_secs_f64())),
        ("tx_per_sec", Json::Num(rate(n, elapsed))),
    ]);
    Ok(())
}

fn run() -> Result<(), String> {
    let options = parse_options()?;
    let fx = Fixture::new()?;
    bench_explicit(&fx, options.count)?;
    bench_confidential(&fx, options.conf_count)?;
    bench_block(&fx, options.block_kb, options.blocks)?;
    bench_mempool(&fx, options.count)?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_line(&[("error", Json::Str(error))]);
            ExitCode::FAILURE
        }
    }
}
