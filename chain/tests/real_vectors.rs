//! Real signed blocks written by Liquid / Elements (tests/data/SOURCES.md names their origin).

mod common;

use chain::proof::{verify_dynafed_proof, verify_legacy_proof};
use chain::ProofError;
use common::data_hex;
use elements::{BlockExtData, BlockHeader};
use std::str::FromStr;

fn liquid_signblockscript() -> elements::Script {
    elements::Script::from(data_hex("liquidv1_legacy_signblockscript.hex"))
}

fn liquid_header_1517039() -> BlockHeader {
    elements::encode::deserialize(&data_hex("liquid_mainnet_header_1517039.hex"))
        .expect("header decodes")
}

fn dynafed_block() -> elements::Block {
    elements::encode::deserialize(&data_hex("functionary_dynafed_block.hex"))
        .expect("block decodes")
}

/// The 33-byte keys of a multisig script, in script order.
fn script_keys(script: &[u8]) -> Vec<secp256k1::PublicKey> {
    let n = (script.len() - 3) / 34;
    (0..n)
        .map(|i| secp256k1::PublicKey::from_slice(&script[2 + 34 * i..2 + 34 * i + 33]).unwrap())
        .collect()
}

#[test]
fn liquid_mainnet_1517039_legacy_proof_accepted_with_11_signers() {
    let header = liquid_header_1517039();
    assert_eq!(header.height, 1_517_039);
    assert_eq!(
        header.block_hash().to_string(),
        "33a0890bea61d70b9dd1bd23f12e447730336906a44cdea621cba6d65fe90013"
    );
    let script = liquid_signblockscript();
    let signers = verify_legacy_proof(&header, &script).expect("real Liquid proof verifies");
    assert_eq!(signers.len(), 11);
    // Signers are members of the 15 keys and come back in key order.
    let keys = script_keys(script.as_bytes());
    let positions: Vec<usize> = signers
        .iter()
        .map(|s| {
            keys.iter()
                .position(|k| k == s)
                .expect("signer is a member")
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}

#[test]
fn liquid_mainnet_1517039_rejected_when_tampered_or_wrong_challenge() {
    let script = liquid_signblockscript();
    // Changing the time changes the signed digest.
    let mut header = liquid_header_1517039();
    header.time += 1;
    assert!(matches!(
        verify_legacy_proof(&header, &script),
        Err(ProofError::SignatureNotMatched { .. })
    ));
    // Another expected challenge (the 2023 script differs in one key).
    let mut other = script.to_bytes();
    other[40] ^= 1;
    let header = liquid_header_1517039();
    assert!(matches!(
        verify_legacy_proof(&header, &elements::Script::from(other)),
        Err(ProofError::ChallengeMismatch { .. })
    ));
    // A legacy header is not a dynafed proof.
    assert_eq!(
        verify_dynafed_proof(&header, &script),
        Err(ProofError::NotDynafed)
    );
    // Dropping the last signature from the solution: 10 of 11.
    let mut header = liquid_header_1517039();
    if let BlockExtData::Proof { solution, .. } = &mut header.ext {
        let bytes = solution.as_bytes();
        let last_push_start = last_push_offset(bytes);
        *solution = elements::Script::from(bytes[..last_push_start].to_vec());
    }
    assert_eq!(
        verify_legacy_proof(&header, &script),
        Err(ProofError::WrongSignatureCount {
            found: 10,
            expected: 11
        })
    );
}

/// Offset of the last push in a script made only of direct pushes (opcodes 0x00..=0x4b).
fn last_push_offset(script: &[u8]) -> usize {
    let mut pos = 0;
    let mut last = 0;
    while pos < script.len() {
        last = pos;
        pos += 1 + usize::from(script[pos]);
    }
    assert_eq!(pos, script.len(), "solution is made of direct pushes");
    last
}

#[test]
fn functionary_dynafed_block_accepted_2_of_3() {
    let block = dynafed_block();
    let header = &block.header;
    assert_eq!(header.height, 7);
    assert_eq!(
        block.block_hash().to_string(),
        "4961df970cf12d789383974e6ab439f780d956b5a50162ca9d281362e46c605a"
    );
    let current = header.dynafed_current().expect("dynafed");
    assert!(current.is_compact());
    assert_eq!(current.signblock_witness_limit(), Some(258));
    let signblockscript = current.signblockscript().expect("compact").clone();
    let signers =
        verify_dynafed_proof(header, &signblockscript).expect("real dynafed proof verifies");
    assert_eq!(signers.len(), 2);
    let BlockExtData::Dynafed {
        signblock_witness, ..
    } = &header.ext
    else {
        unreachable!()
    };
    let keys = script_keys(signblock_witness.last().unwrap());
    assert_eq!(keys.len(), 3);
    assert!(signers.iter().all(|s| keys.contains(s)));
}

#[test]
fn functionary_dynafed_block_rejected_when_mutated() {
    let block = dynafed_block();
    let signblockscript = block
        .header
        .dynafed_current()
        .unwrap()
        .signblockscript()
        .unwrap()
        .clone();
    // Flip a byte inside the R value of the last signature: it no longer verifies for any key.
    let mut header = block.header.clone();
    if let BlockExtData::Dynafed {
        signblock_witness, ..
    } = &mut header.ext
    {
        let sig_index = signblock_witness.len() - 2;
        signblock_witness[sig_index][10] ^= 0x01;
    }
    assert!(matches!(
        verify_dynafed_proof(&header, &signblockscript),
        Err(ProofError::SignatureNotMatched { index: 1 })
    ));
    // Change the witness script: no longer hashes to the program.
    let mut header = block.header.clone();
    if let BlockExtData::Dynafed {
        signblock_witness, ..
    } = &mut header.ext
    {
        let last = signblock_witness.len() - 1;
        signblock_witness[last][5] ^= 0x01;
    }
    assert_eq!(
        verify_dynafed_proof(&header, &signblockscript),
        Err(ProofError::WitnessScriptHashMismatch)
    );
    // Legacy verifier refuses a dynafed header.
    assert_eq!(
        verify_legacy_proof(&block.header, &signblockscript),
        Err(ProofError::NotLegacy)
    );
}

#[test]
fn functionary_legacy_2_of_3_block_accepted() {
    let block: elements::Block =
        elements::encode::deserialize(&data_hex("functionary_legacy_2of3_block.hex"))
            .expect("block decodes");
    assert_eq!(block.header.height, 3);
    assert_eq!(
        block.block_hash().to_string(),
        "bcc6eb2ab6c97b9b4590825b9136f100b22e090c0469818572b8b93926a79f28"
    );
    let BlockExtData::Proof { challenge, .. } = &block.header.ext else {
        panic!("legacy block expected")
    };
    let signers = verify_legacy_proof(&block.header, challenge).expect("verifies");
    assert_eq!(signers.len(), 2);
}

#[test]
fn liquid_policy_asset_derivation_matches_l_btc() {
    let fedpegscript = data_hex("liquidv1_legacy_fedpegscript.hex");
    let signblockscript = liquid_signblockscript();
    // Bitcoin mainnet genesis 000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f, internal order.
    let mut parent =
        hex::decode("000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f").unwrap();
    parent.reverse();
    let parent: [u8; 32] = parent.try_into().unwrap();
    let asset = chain::derive_policy_asset(
        "liquidv1",
        &fedpegscript,
        signblockscript.as_bytes(),
        &parent,
    );
    let l_btc = elements::AssetId::from_str(
        "6f0279e9ed041c3d710a9f57d0c02928416460c4b722ae3457a11eec381c526d",
    )
    .unwrap();
    assert_eq!(asset, l_btc);
    // Any change to the inputs changes the asset.
    assert_ne!(
        chain::derive_policy_asset(
            "liquidv2",
            &fedpegscript,
            signblockscript.as_bytes(),
            &parent
        ),
        l_btc
    );
}
