//! Federation parameter validation, key order, derived scripts and the deterministic genesis block.

mod common;

use chain::{build_block, validate_proposal, FederationParams, ParamsError, MAX_MEMBERS};
use common::random_secrets;
use elements::dynafed::Params;
use elements::hashes::sha256;
use elements::BlockExtData;
use secp256k1::{PublicKey, SECP256K1};

fn keys(n: usize, seed: u64) -> Vec<PublicKey> {
    random_secrets(n, seed)
        .iter()
        .map(|s| s.public_key(SECP256K1))
        .collect()
}

fn params(name: &str, keys: Vec<PublicKey>, m: usize) -> FederationParams {
    FederationParams::new(name, keys, m, 1_700_000_000).unwrap()
}

#[test]
fn params_validation_errors_name_the_problem() {
    let k = keys(4, 1);
    assert_eq!(
        FederationParams::new("c", vec![], 1, 0),
        Err(ParamsError::NoMembers)
    );
    assert_eq!(
        FederationParams::new("c", keys(16, 2), 11, 0),
        Err(ParamsError::TooManyMembers {
            members: 16,
            max: 15
        })
    );
    assert_eq!(
        FederationParams::new("c", k.clone(), 0, 0),
        Err(ParamsError::ZeroThreshold)
    );
    assert_eq!(
        FederationParams::new("c", k.clone(), 5, 0),
        Err(ParamsError::ThresholdAboveMembers {
            threshold: 5,
            members: 4
        })
    );
    assert_eq!(
        FederationParams::new("c", k.clone(), 2, 0),
        Err(ParamsError::ThresholdNotMajority {
            threshold: 2,
            members: 4
        })
    );
    assert!(FederationParams::new("c", k.clone(), 3, 0).is_ok());
    let mut dup = k.clone();
    dup.push(k[2]);
    assert_eq!(
        FederationParams::new("c", dup, 3, 0),
        Err(ParamsError::DuplicateKey {
            key: hex::encode(k[2].serialize())
        })
    );
    assert_eq!(
        FederationParams::new("", k.clone(), 2, 0),
        Err(ParamsError::EmptyChainName)
    );
    assert!(matches!(
        FederationParams::new("chaîne", k.clone(), 2, 0),
        Err(ParamsError::ChainNameNotAscii { .. })
    ));
    assert_eq!(
        FederationParams::new(&"x".repeat(65), k.clone(), 2, 0),
        Err(ParamsError::ChainNameTooLong { len: 65, max: 64 })
    );
    assert!(FederationParams::new(&"x".repeat(64), k.clone(), 4, 0).is_ok());
    assert!(FederationParams::new("c", keys(MAX_MEMBERS, 3), 15, 0).is_ok());
    assert!(FederationParams::new("c", keys(1, 4), 1, 0).is_ok());
}

#[test]
fn keys_sorted_by_compressed_serialization_regardless_of_input_order() {
    let k = keys(7, 5);
    let a = params("c", k.clone(), 5);
    let mut reversed = k.clone();
    reversed.reverse();
    let mut rotated = k.clone();
    rotated.rotate_left(3);
    let b = params("c", reversed, 5);
    let c = params("c", rotated, 5);
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(a.genesis_hash(), b.genesis_hash());
    let serialized: Vec<[u8; 33]> = a.sorted_keys().iter().map(|k| k.serialize()).collect();
    assert!(serialized.windows(2).all(|w| w[0] < w[1]));
    for (i, key) in a.sorted_keys().iter().enumerate() {
        assert_eq!(a.member_index(key), Some(i));
    }
    assert_eq!(a.member_index(&keys(1, 99)[0]), None);
    assert_eq!(a.member_count(), 7);
    assert_eq!(a.threshold(), 5);
    assert_eq!(a.chain_name(), "c");
    assert_eq!(a.genesis_time(), 1_700_000_000);
}

#[test]
fn witness_script_and_signblockscript_shape() {
    let p = params("c", keys(3, 6), 2);
    let ws = p.witness_script().as_bytes();
    assert_eq!(ws.len(), 3 + 3 * 34);
    assert_eq!(ws[0], 0x52);
    assert_eq!(ws[ws.len() - 2], 0x53);
    assert_eq!(ws[ws.len() - 1], 0xae);
    for (i, key) in p.sorted_keys().iter().enumerate() {
        assert_eq!(ws[1 + 34 * i], 0x21);
        assert_eq!(&ws[2 + 34 * i..2 + 34 * i + 33], &key.serialize()[..]);
    }
    let spk = p.signblockscript().as_bytes();
    assert_eq!(spk.len(), 34);
    assert_eq!(&spk[..2], &[0x00, 0x20]);
    assert_eq!(&spk[2..], sha256::Hash::hash(ws).as_byte_array());
    assert!(p.signblockscript().is_v0_p2wsh());
    // Witness limit: 1 (count) + 1 (dummy) + 2*74 + 1 + 105.
    assert_eq!(p.signblock_witness_limit(), 256);
}

#[test]
fn full_and_compact_params_agree() {
    let p = params("c", keys(4, 7), 3);
    let Params::Full(full) = p.full_params() else {
        panic!("full")
    };
    assert_eq!(&full.signblockscript, p.signblockscript());
    assert_eq!(full.signblock_witness_limit, p.signblock_witness_limit());
    assert_eq!(full.fedpegscript, chain::FEDPEGSCRIPT.to_vec());
    assert!(full.fedpeg_program.is_p2sh());
    assert!(full.extension_space.is_empty());
    let compact = p.compact_params();
    assert!(compact.is_compact());
    assert_eq!(compact.signblockscript(), Some(p.signblockscript()));
    assert_eq!(
        compact.signblock_witness_limit(),
        Some(p.signblock_witness_limit())
    );
    // Compact params elide exactly the extra root: both have the same params root.
    assert_eq!(compact.calculate_root(), p.full_params().calculate_root());
    assert_eq!(Some(compact), p.full_params().into_compact());
}

#[test]
fn genesis_is_deterministic_and_commits_to_params() {
    let k = keys(4, 8);
    let a = params("chain-a", k.clone(), 3);
    let again = params("chain-a", k.clone(), 3);
    assert_eq!(a.genesis_block(), again.genesis_block());
    assert_eq!(a.genesis_hash(), again.genesis_hash());
    assert_eq!(a.genesis_hash(), a.genesis_block().block_hash());

    let other_name = params("chain-b", k.clone(), 3);
    let other_threshold = params("chain-a", k.clone(), 4);
    let mut k2 = k.clone();
    k2[0] = keys(1, 77)[0];
    let other_key = params("chain-a", k2, 3);
    let other_time = FederationParams::new("chain-a", k.clone(), 3, 1_700_000_001).unwrap();
    for other in [&other_name, &other_threshold, &other_key, &other_time] {
        assert_ne!(a.genesis_hash(), other.genesis_hash());
    }
    assert_ne!(a.policy_asset(), other_name.policy_asset());
    assert_ne!(a.policy_asset(), other_threshold.policy_asset());
    assert_ne!(a.policy_asset(), other_key.policy_asset());
    assert_eq!(a.policy_asset(), other_time.policy_asset());
}

#[test]
fn genesis_contents() {
    let p = params("mychain", keys(4, 9), 3);
    let g = p.genesis_block();
    assert_eq!(g.header.height, 0);
    assert_eq!(g.header.time, 1_700_000_000);
    assert_eq!(
        g.header.prev_blockhash,
        elements::BlockHash::from_byte_array([0u8; 32])
    );
    assert_eq!(g.header.version, chain::BLOCK_VERSION);
    let BlockExtData::Dynafed {
        current,
        proposed,
        signblock_witness,
    } = &g.header.ext
    else {
        panic!("dynafed genesis")
    };
    assert_eq!(current, &p.full_params());
    assert!(proposed.is_null());
    assert!(signblock_witness.is_empty());
    // Serialized version carries the dynafed bit (0xa0000000 little endian).
    let bytes = elements::encode::serialize(&g);
    assert_eq!(&bytes[..4], &[0x00, 0x00, 0x00, 0xa0]);
    let decoded: elements::Block = elements::encode::deserialize(&bytes).unwrap();
    assert_eq!(decoded, g);
    // One coinbase committing to the chain name, paying 0 policy asset to OP_RETURN.
    assert_eq!(g.txdata.len(), 1);
    let cb = &g.txdata[0];
    assert!(cb.is_coinbase());
    let script_sig = cb.input[0].script_sig.as_bytes();
    let commit = chain::argument_commitment(
        "mychain",
        &chain::FEDPEGSCRIPT,
        p.signblockscript().as_bytes(),
    );
    assert_eq!(script_sig[0], 32);
    assert_eq!(&script_sig[1..33], &commit);
    assert_eq!(&script_sig[34..], b"mychain");
    assert_eq!(cb.output.len(), 1);
    assert_eq!(
        cb.output[0].value,
        elements::confidential::Value::Explicit(0)
    );
    assert_eq!(
        cb.output[0].asset,
        elements::confidential::Asset::Explicit(p.policy_asset())
    );
    assert!(cb.output[0].script_pubkey.is_op_return());
    assert_eq!(
        g.header.merkle_root.to_byte_array(),
        cb.txid().to_byte_array()
    );
}

#[test]
fn policy_asset_follows_elements_derivation() {
    let p = params("mychain", keys(2, 10), 2);
    assert_eq!(
        p.policy_asset(),
        chain::derive_policy_asset(
            "mychain",
            &chain::FEDPEGSCRIPT,
            p.signblockscript().as_bytes(),
            &[0u8; 32]
        )
    );
}

#[test]
fn first_block_on_genesis_is_a_valid_proposal() {
    let p = params("mychain", keys(4, 11), 3);
    let g = p.genesis_block().header;
    let b = build_block(&p, &g, g.time + 60);
    assert_eq!(b.header.height, 1);
    assert_eq!(b.header.prev_blockhash, p.genesis_hash());
    assert_eq!(b.header.dynafed_current(), Some(&p.compact_params()));
    assert_eq!(validate_proposal(&p, &g, &b), Ok(()));
    // Heights above 16 use a data push in the coinbase.
    let mut parent = g.clone();
    parent.height = 1000;
    let b = build_block(&p, &parent, parent.time);
    assert_eq!(validate_proposal(&p, &parent, &b), Ok(()));
    parent.height = u32::MAX;
    let b = build_block(&p, &parent, parent.time);
    assert_eq!(
        validate_proposal(&p, &parent, &b),
        Err(chain::BlockError::HeightOverflow { parent: u32::MAX })
    );
}
