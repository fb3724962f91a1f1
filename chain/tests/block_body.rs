//! A block's hash commits to exactly one body: bodies that keep the hash but change the bytes (duplicated
//! transactions, changed witnesses, coinbase witness data the commitment does not cover) are refused by the
//! context-free checks and classed as body mismatches (the sender's fault, not the hash's).

mod common;

use chain::ledger::{finish_coinbase, LedgerContext};
use chain::{validate_final_block, validate_proposal, BlockError};
use elements::confidential::{Asset, Nonce, Value};
use elements::{
    LockTime, OutPoint, Script, Sequence, Transaction, TxIn, TxOut, TxOutWitness, Txid,
};

fn spend(seed: u8, fed: &common::Federation) -> Transaction {
    let mut tx = Transaction {
        version: 2,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array([seed; 32]), 0),
            is_pegin: false,
            script_sig: Script::new(),
            sequence: Sequence::MAX,
            asset_issuance: Default::default(),
            witness: Default::default(),
        }],
        output: vec![TxOut {
            asset: Asset::Explicit(fed.params.policy_asset()),
            value: Value::Explicit(1_000),
            nonce: Nonce::Null,
            script_pubkey: Script::from(vec![
                0x00, 0x14, seed, seed, seed, seed, seed, seed, seed, seed, seed, seed, seed, seed,
                seed, seed, seed, seed, seed, seed, seed, seed,
            ]),
            witness: TxOutWitness::default(),
        }],
    };
    tx.input[0].witness.script_witness = vec![vec![0x30, seed, 1, 2, 3], vec![2; 33]].into();
    tx
}

/// A proposal-shaped child of genesis with two witness-carrying transactions (three with the coinbase), its coinbase committing to them.
fn block(fed: &common::Federation) -> elements::Block {
    let parent = fed.params.genesis_block().header;
    let mut block = chain::build_block(&fed.params, &parent, parent.time + 1);
    block.txdata.extend([spend(1, fed), spend(2, fed)]);
    let ctx = LedgerContext {
        height: 1,
        lock_time_cutoff: parent.time,
        policy_asset: fed.params.policy_asset(),
        genesis_hash: fed.params.genesis_hash(),
        parent_genesis_hash: [0; 32],
        fee_script: fed.params.fee_script().clone(),
        coinbase_maturity: 100,
        block_time: parent.time + 1,
    };
    finish_coinbase(&mut block, &ctx, 0);
    block.header.merkle_root = chain::merkle_root(&block.txdata);
    block
}

fn refused_as_mismatch(
    fed: &common::Federation,
    original: &elements::Block,
    mutated: &elements::Block,
) -> BlockError {
    assert_eq!(
        original.block_hash(),
        mutated.block_hash(),
        "the mutation must keep the hash"
    );
    let parent = fed.params.genesis_block().header;
    let error =
        validate_proposal(&fed.params, &parent, mutated).expect_err("mutated body accepted");
    assert!(error.is_body_mismatch(), "{error}");
    error
}

#[test]
fn the_unmutated_block_passes() {
    let fed = common::federation("body-test", 3, 4, 7);
    let parent = fed.params.genesis_block().header;
    assert_eq!(
        validate_proposal(&fed.params, &parent, &block(&fed)),
        Ok(())
    );
}

#[test]
fn duplicating_the_last_transactions_keeps_the_merkle_root_and_is_refused() {
    let fed = common::federation("body-test", 3, 4, 7);
    let original = block(&fed);
    // [cb, t1, t2] → [cb, t1, t2, t2]: same merkle root (an odd level pairs its last node with itself;
    // CVE-2012-2459).
    let mut mutated = original.clone();
    mutated.txdata.push(original.txdata[2].clone());
    assert_eq!(
        chain::merkle_root(&mutated.txdata),
        original.header.merkle_root
    );
    let error = refused_as_mismatch(&fed, &original, &mutated);
    assert!(
        matches!(error, BlockError::DuplicateTransaction { .. }),
        "{error}"
    );
}

#[test]
fn a_changed_witness_keeps_the_hash_and_is_refused() {
    let fed = common::federation("body-test", 3, 4, 7);
    let original = block(&fed);
    let mut mutated = original.clone();
    mutated.txdata[2].input[0].witness.script_witness =
        vec![vec![0x30, 9, 9, 9], vec![2; 33]].into();
    let error = refused_as_mismatch(&fed, &original, &mutated);
    assert!(
        matches!(error, BlockError::WitnessCommitment { .. }),
        "{error}"
    );
}

#[test]
fn coinbase_witness_outside_the_commitment_is_refused() {
    let fed = common::federation("body-test", 3, 4, 7);
    let original = block(&fed);
    let mut mutated = original.clone();
    let claim: Transaction = elements::encode::deserialize(
        &hex::decode(include_str!("data/liquid_pegin_claim_tx.hex").trim()).expect("hex"),
    )
    .expect("the real peg-in claim decodes");
    mutated.txdata[0].input[0].witness.pegin_witness = claim.input[0].witness.pegin_witness.clone();
    let error = refused_as_mismatch(&fed, &original, &mutated);
    assert!(
        matches!(error, BlockError::UncommittedCoinbaseWitness { .. }),
        "{error}"
    );
}

#[test]
fn final_blocks_get_the_same_checks_and_header_errors_are_not_body_mismatches() {
    let fed = common::federation("body-test", 3, 4, 7);
    let parent = fed.params.genesis_block().header;
    let original = block(&fed);
    let mut mutated = original.clone();
    mutated.txdata.push(original.txdata[2].clone());
    // Not a valid final block either way (unsigned), but the body check comes first and names the mutation.
    let error = validate_final_block(&fed.params, &parent, &mutated).expect_err("refused");
    assert!(error.is_body_mismatch(), "{error}");
    let mut wrong_parent = original;
    wrong_parent.header.prev_blockhash = elements::BlockHash::from_byte_array([7; 32]);
    let error = validate_proposal(&fed.params, &parent, &wrong_parent).expect_err("refused");
    assert!(!error.is_body_mismatch(), "{error}");
}
