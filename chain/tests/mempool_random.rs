//! Random operation sequences (accept, remove, blocks, expiry) against a tight size cap: the pool's incremental
//! bookkeeping must always equal a from-scratch recomputation, no two pooled transactions may conflict, no child
//! may outlive its parent, and the size cap must hold.

mod mempool_common;

use chain::ledger::Utxo;
use chain::mempool::{Mempool, MempoolLimits};
use elements::{Block, BlockHash, BlockHeader, OutPoint, Transaction, TxMerkleNode};
use mempool_common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

fn empty_header() -> BlockHeader {
    BlockHeader {
        version: 0x2000_0000,
        prev_blockhash: BlockHash::from_byte_array([0; 32]),
        merkle_root: TxMerkleNode::from_byte_array([0; 32]),
        time: 0,
        height: 0,
        ext: Default::default(),
    }
}

#[test]
fn random_operations_keep_every_invariant() {
    let mut evictions = 0;
    let mut full_refusals = 0;
    for seed in 0..6u64 {
        let (evicted, refused) = run(seed);
        evictions += evicted;
        full_refusals += refused;
    }
    assert!(evictions > 0, "the cap never evicted anything");
    assert!(full_refusals > 0, "the cap never refused anything");
}

/// One random run; returns how many transactions were evicted and how many refused as "mempool full".
fn run(seed: u64) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut chain, coins) = funded_chain(60, 1_000_000);
    let cap = 20 * unit_weight();
    let mut pool = Mempool::new(MempoolLimits {
        max_weight_total: cap,
        max_ancestors: 6,
        max_descendants: 8,
        ..MempoolLimits::default()
    });
    // Outputs believed spendable (confirmed or pooled), with their values; some go stale and must be refused.
    let mut known: Vec<(OutPoint, u64)> = coins.iter().map(|c| (*c, 1_000_000)).collect();
    let mut accepted = 0;
    let mut evictions = 0;
    let mut full_refusals = 0;
    let mut dropped = 0;
    for step in 0..1_500u64 {
        match rng.gen_range(0..100) {
            0..=84 => {
                let inputs = rng.gen_range(1..=2).min(known.len());
                let mut chosen = Vec::new();
                let mut value = 0;
                for _ in 0..inputs {
                    let (outpoint, v) = known[rng.gen_range(0..known.len())];
                    if !chosen.contains(&outpoint) {
                        chosen.push(outpoint);
                        value += v;
                    }
                }
                let fee = rng.gen_range(0..3_000u64);
                let Some(rest) = value.checked_sub(fee) else {
                    continue;
                };
                let tx = spend(&chosen, &[rest / 2, rest - rest / 2]);
                let outcome = pool.accept(tx.clone(), step, &chain, fake_validate);
                match outcome {
                    Ok(done) => {
                        accepted += 1;
                        evictions += done.evicted.len();
                        known.push((out(&tx, 0), rest / 2));
                        known.push((out(&tx, 1), rest - rest / 2));
                    }
                    Err(refused) if refused.reason() == "mempool full" => full_refusals += 1,
                    Err(_) => {}
                }
            }
            85..=89 => {
                let txids = pool.txids();
                if !txids.is_empty() {
                    pool.remove(&txids[rng.gen_range(0..txids.len())]);
                }
            }
            90..=91 => {
                pool.remove_older_than(step.saturating_sub(200));
            }
            _ => {
                // A block: part of a template, plus sometimes a rival spend of a pooled transaction's coin.
                let template = pool.template(rng.gen_range(0..10) * unit_weight());
                let mut txdata: Vec<Transaction> = vec![coinbase((step % 250) as u8)];
                txdata.extend(template.transactions);
                let mut confirmed_coins: Vec<OutPoint> = chain
                    .keys()
                    .filter(|o| pool.spender_of(o).is_some())
                    .copied()
                    .collect();
                confirmed_coins.sort();
                let in_block: Vec<OutPoint> = txdata
                    .iter()
                    .skip(1)
                    .flat_map(|tx| tx.input.iter().map(|i| i.previous_output))
                    .collect();
                if let Some(coin) = confirmed_coins.iter().find(|c| !in_block.contains(c)) {
                    if rng.gen_bool(0.5) {
                        txdata.push(spend(&[*coin], &[1]));
                    }
                }
                let block = Block {
                    header: empty_header(),
                    txdata,
                };
                let mut next: HashMap<OutPoint, Utxo> = chain.clone();
                for tx in &block.txdata {
                    if !tx.is_coinbase() {
                        for input in &tx.input {
                            assert!(
                                next.remove(&input.previous_output).is_some(),
                                "seed {seed} step {step}: template spends a missing output"
                            );
                        }
                    }
                    for (vout, txout) in tx.output.iter().enumerate() {
                        next.insert(
                            OutPoint::new(tx.txid(), vout as u32),
                            confirmed(txout.clone(), 2),
                        );
                    }
                }
                chain = next;
                dropped += pool.block_connected(&block, &chain, fake_validate).len();
                for tx in &block.txdata {
                    assert!(!pool.contains(&tx.txid()));
                }
            }
        }
        if let Err(problem) = pool.check_invariants() {
            panic!("seed {seed} step {step}: {problem}");
        }
        assert!(
            pool.info().usage <= cap as u64,
            "seed {seed} step {step}: over the cap"
        );
        // Every pooled transaction still validates against chain + the rest of the pool.
        if step % 100 == 0 {
            for txid in pool.txids() {
                let entry = pool.entry(&txid).expect("listed");
                for parent in &entry.depends {
                    assert!(pool.contains(parent), "seed {seed}: orphan {txid}");
                }
            }
        }
    }
    assert!(accepted > 200, "seed {seed}: only {accepted} accepted");
    eprintln!(
        "seed {seed}: {accepted} accepted, {evictions} evicted, {full_refusals} refused as full, \
         {dropped} dropped after blocks"
    );
    (evictions, full_refusals)
}

#[test]
fn admission_of_many_transactions_stays_fast() {
    // 20,000 admissions: independent spends and chains of five. Prints the rate (debug build, fake validator);
    // asserts the outcome, not the time (shared CI cores).
    let (chain, coins) = funded_chain(8_000, 1_000_000);
    let mut pool = Mempool::new(MempoolLimits::default());
    let mut transactions = Vec::new();
    for (index, coin) in coins.iter().enumerate() {
        let mut previous = *coin;
        let mut value = 1_000_000;
        let length = if index % 2 == 0 { 1 } else { 5 };
        for _ in 0..length {
            value -= 1_000 + index as u64;
            let tx = spend(&[previous], &[value]);
            previous = out(&tx, 0);
            transactions.push(tx);
        }
    }
    let count = transactions.len();
    let started = std::time::Instant::now();
    for (step, tx) in transactions.into_iter().enumerate() {
        pool.accept(tx, step as u64, &chain, fake_validate)
            .expect("accepted");
    }
    let elapsed = started.elapsed();
    eprintln!(
        "admitted {count} transactions in {elapsed:?}: {:.0} tx/s (debug build, fake validator)",
        count as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(pool.len(), count);
    pool.check_invariants().expect("invariants");
    let template = pool.template(4_000_000);
    assert!(template.total_weight <= 4_000_000);
}
