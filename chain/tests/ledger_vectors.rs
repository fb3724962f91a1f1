//! Real Elements/Liquid data against the ledger: the Liquid mainnet peg-out transaction
//! (/work/shared/reference/elements-liquid.md §5.4, from rust-elements' `pegout_tx_vector_1`) and the witness
//! commitment of a real Elements block (`tests/data/functionary_dynafed_block.hex`, §5.5); and hostile bytes.

use chain::ledger::{
    check_pegout_output, check_transaction, check_witness_commitment, pegout_output,
    verify_amounts, witness_commitment, witness_merkle_root, witness_only_hash, BlockLedgerError,
    LedgerContext, WITNESS_COMMITMENT_PREFIX,
};
use elements::{AssetId, BlockHash, Transaction};
use rand::{Rng, RngCore, SeedableRng};
use std::str::FromStr;

/// Liquid mainnet peg-out transaction, txid 3fe0239f…c1cb (complete hex from the reference).
const LIQUID_PEGOUT_TX: &str = "0200000000021c39a226160dd8962eb273772950f0b603c319a8e4aa9912c9e8e36b5bdf71a2000000006a473044022071212fcde89d1055d5b74f17a162b3dbe5348ac8527a131dab5dcf8a97d67d2f02202edf12f3c69fed1fa0c23da608e6aded86dd5c7b09da42f61b453c3a838e8cab012103557f25ff40f976670ddf59c71938bade91684b76ad69dfed27049de2afec59e5feffffff853db31f986dd89c81fe87a84f385d7099c5ea841d762b26b03166e5e798dfbe000000006a473044022042c70729fb50930179a9d76f5febbda5b0ee50e62febf92de4dd10b9393554d802203140b107519243e4110c065017c8ae1ac04843f94b3f20a1e5faf7343dd76159012102797ffcf7ccc8e2012a90e71962901a1ad740f2a28f2f563c76f9eb42a8100f5efeffffff03016d521c38ec1ea15734ae22b7c46064412829c0d0579f0a713d1c04ede979026f0100000000000f7869001976a914216d878ebff0c623909889265d8dc1ab26e2ff4388ac016d521c38ec1ea15734ae22b7c46064412829c0d0579f0a713d1c04ede979026f0100000000000186a000fd02026a206fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d61900000000001976a914df662e2dd70fd82acba2d252cc897cb6e618093288ac21025f756509f5dbac47d54c9ef5ccf49895a4dbac4759005a74375f66c480e6c0864da1010ce552be292c37e7242d7e58e678a19349021d22f2712ea68de397b66167d141b09f98e3294e05b51c1469bab3ddb7096f5aa2817e218d137879fb54dbe1659353e6e64add9cb2d6f9e8647bd1ca94d9a6a80d193d76f115596f7bcc8a07eaf85c738f31f4fb192b785aa2934bcb5e4f6a7b444da2bc64da3527a33cc7f0792630f57b92ba07dd0e472d5e2e08b2bca8f1c06e18a07f226dac8acbcc1dfafe8be893d9c5092808b1decfbb955c5f82968bed609b0b2e2c55abe4b0c12bc0c7ea3976e0af2c6aadab3c90ed862a9846fc1a1c20ef220a050538d3c9ff12669653f9b055606dd45fe66f18aa819c8cda5c1b224dc19c0fbf028133d1256588834ea14cb44a84da3af83443657f9ff3eaa14216dc4ed06a92c0ce19be4fe066c9d830ee3acdd3062b9336ace12cc5935953284946bf6bc5c89f9a13d37dddd63e85173174a164f4b68cbc94d347b3d4a7e4ec79044b049375cc7b43b7657123b80f5834afca696b6bc7bf47fa67742e1caa609424cba3ec9d9d156b5909debd0475d91d31134acce50420c2ea694e2c2ea477a0bd14e670bccb42a0fb7009b41ee86a016d521c38ec1ea15734ae22b7c46064412829c0d0579f0a713d1c04ede979026f0100000000000006fc000054840300";

/// Bitcoin mainnet genesis hash, internal byte order.
const BITCOIN_GENESIS_INTERNAL: &str =
    "6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000";

fn liquid_context() -> LedgerContext {
    let mut parent_genesis = [0u8; 32];
    parent_genesis.copy_from_slice(&hex::decode(BITCOIN_GENESIS_INTERNAL).unwrap());
    LedgerContext {
        height: 100,
        lock_time_cutoff: 1_700_000_000,
        policy_asset: AssetId::LIQUID_BTC,
        genesis_hash: BlockHash::from_str(
            "1466275836220db2944ca059a3a10ef6fd2ea684b0688d2c379296888a206003",
        )
        .unwrap(),
        parent_genesis_hash: parent_genesis,
        fee_script: elements::Script::new(),
        coinbase_maturity: 100,
        block_time: 1_700_000_000,
    }
}

fn pegout_tx() -> Transaction {
    elements::encode::deserialize(&hex::decode(LIQUID_PEGOUT_TX).unwrap())
        .expect("peg-out tx decodes")
}

#[test]
fn liquid_pegout_transaction_decodes_with_its_txid_and_passes_check_transaction() {
    let tx = pegout_tx();
    assert_eq!(
        tx.txid().to_string(),
        "3fe0239f003127e294dd8aad10a91da4998084859159907f90c984823021c1cb"
    );
    check_transaction(&tx).expect("context-free rules");
}

#[test]
fn liquid_pegout_output_is_recognised_with_its_exact_values() {
    let tx = pegout_tx();
    let txid = tx.txid();
    let records: Vec<_> = (0u32..)
        .zip(&tx.output)
        .filter_map(|(vout, out)| pegout_output(txid, vout, out))
        .collect();
    assert_eq!(records.len(), 1, "exactly one peg-out output");
    let record = &records[0];
    assert_eq!(record.txid, txid);
    assert_eq!(record.value, 100_000);
    assert_eq!(record.asset, AssetId::LIQUID_BTC);
    assert_eq!(hex::encode(record.parent_genesis), BITCOIN_GENESIS_INTERNAL);
    assert_eq!(
        hex::encode(record.destination.as_bytes()),
        "76a914df662e2dd70fd82acba2d252cc897cb6e618093288ac"
    );
    // PAK: the 33-byte pubkey whose HASH160 is the destination's, then the 417-byte whitelist proof.
    assert_eq!(record.extra.len(), 2);
    assert_eq!(record.extra[0].len(), 33);
    assert!(hex::encode(&record.extra[0]).starts_with("025f7565"));
    assert!(hex::encode(&record.extra[0]).ends_with("c086"));
    assert_eq!(record.extra[1].len(), 417);

    // The consensus rule accepts it under Liquid's parameters and names the same record.
    let ctx = liquid_context();
    let out = &tx.output[record.vout as usize];
    let checked = check_pegout_output(&ctx, txid, record.vout, out).unwrap();
    assert_eq!(checked.as_ref(), Some(record));

    // Under another parent chain (e.g. testnet's genesis) the same output is refused.
    let mut other = ctx.clone();
    other.parent_genesis_hash = [0x43; 32];
    let err = check_pegout_output(&other, txid, record.vout, out).unwrap_err();
    assert_eq!(err.reason(), "bad-txns-pegout-genesis");
    // And under another policy asset.
    let mut other = ctx;
    other.policy_asset = AssetId::LIQUIDTESTNET_BTC;
    let err = check_pegout_output(&other, txid, record.vout, out).unwrap_err();
    assert_eq!(err.reason(), "bad-txns-pegout-asset");
}

fn dynafed_block() -> elements::Block {
    let path = format!(
        "{}/tests/data/functionary_dynafed_block.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    elements::encode::deserialize(&hex::decode(text.trim()).unwrap()).unwrap()
}

#[test]
fn real_elements_block_witness_commitment_matches_elements_definition() {
    let block = dynafed_block();
    let coinbase = &block.txdata[0];
    let commitment_out = coinbase
        .output
        .iter()
        .find(|o| {
            o.script_pubkey
                .as_bytes()
                .starts_with(&WITNESS_COMMITMENT_PREFIX)
        })
        .expect("the real block has a witness commitment");
    let committed = &commitment_out.script_pubkey.as_bytes()[6..38];
    assert!(hex::encode(committed).starts_with("94f15e"));
    let reserved = coinbase.input[0]
        .witness
        .script_witness
        .get(0)
        .expect("reserved value");
    assert_eq!(reserved.len(), 32);
    assert_eq!(&witness_commitment(&block.txdata, reserved)[..], committed);
    check_witness_commitment(&block).expect("the real block's commitment verifies");

    // Bitcoin's definition (SHA256d merkle over wtxids, coinbase = 0) does not give Elements' commitment.
    let mut leaves: Vec<bitcoin::Txid> = vec![bitcoin::hashes::Hash::all_zeros()];
    for tx in &block.txdata[1..] {
        leaves.push(bitcoin::hashes::Hash::from_byte_array(
            elements::hashes::Hash::to_byte_array(tx.wtxid()),
        ));
    }
    let bitcoin_root = bitcoin::merkle_tree::calculate_root(leaves.into_iter()).unwrap();
    assert_ne!(
        bitcoin::hashes::Hash::to_byte_array(bitcoin_root),
        witness_merkle_root(&block.txdata)
    );
}

#[test]
fn real_block_with_a_changed_witness_or_reserved_value_is_refused() {
    let mut block = dynafed_block();
    block.txdata[0].input[0].witness.script_witness = elements::Witness::from_slice(&[[7u8; 32]]);
    let err = check_witness_commitment(&block).unwrap_err();
    assert!(
        matches!(
            err,
            BlockLedgerError::Block {
                reason: "bad-witness-merkle-match",
                ..
            }
        ),
        "{err}"
    );

    let mut block = dynafed_block();
    block.txdata[0].input[0].witness.script_witness = elements::Witness::from_slice(&[[0u8; 31]]);
    assert_eq!(
        check_witness_commitment(&block).unwrap_err().reason(),
        "bad-witness-nonce-size"
    );

    // One more coinbase output changes the coinbase's witness-only hash (one leaf per output).
    let mut block = dynafed_block();
    let extra = block.txdata[0].output[0].clone();
    block.txdata[0].output.insert(0, extra);
    assert_eq!(
        check_witness_commitment(&block).unwrap_err().reason(),
        "bad-witness-merkle-match"
    );

    // Without the commitment output, the coinbase's reserved value is witness data nobody commits to.
    let mut block = dynafed_block();
    block.txdata[0].output.retain(|o| {
        !o.script_pubkey
            .as_bytes()
            .starts_with(&WITNESS_COMMITMENT_PREFIX)
    });
    assert_eq!(
        check_witness_commitment(&block).unwrap_err().reason(),
        "unexpected-witness"
    );
}

#[test]
fn random_bytes_decoded_as_transactions_never_panic_check_transaction() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let base = hex::decode(LIQUID_PEGOUT_TX).unwrap();
    let mut decoded = 0usize;
    let ctx = liquid_context();
    for round in 0..20_000 {
        let bytes: Vec<u8> = if round % 2 == 0 {
            // Mutations of a real transaction: flip, insert and cut bytes.
            let mut b = base.clone();
            for _ in 0..rng.gen_range(1..8) {
                let i = rng.gen_range(0..b.len());
                match rng.gen_range(0..3) {
                    0 => b[i] ^= 1 << rng.gen_range(0..8),
                    1 => b.insert(i, rng.gen()),
                    _ => {
                        b.truncate(i.max(10));
                    }
                }
            }
            b
        } else {
            let mut b = vec![0u8; rng.gen_range(0..400)];
            rng.fill_bytes(&mut b);
            if b.len() > 5 {
                b[0] = 2;
                b[4] = rng.gen_range(0..2);
            }
            b
        };
        if let Ok(tx) = elements::encode::deserialize::<Transaction>(&bytes) {
            decoded += 1;
            let _ = check_transaction(&tx);
            let _ = witness_only_hash(&tx);
            // The amount rules on hostile data: the transaction's own outputs stand in for the spent ones.
            let spent: Vec<_> = tx
                .output
                .iter()
                .cloned()
                .cycle()
                .take(tx.input.len())
                .collect();
            if spent.len() == tx.input.len() {
                let _ = verify_amounts(&ctx, &tx, &spent);
            }
            let txid = tx.txid();
            for (vout, out) in (0u32..).zip(&tx.output) {
                let _ = pegout_output(txid, vout, out);
            }
        }
    }
    assert!(
        decoded > 100,
        "only {decoded} inputs decoded: the test exercises too little"
    );
}
