//! Our own federation's blocks: build, sign, attach, validate; and every rejection with its specific error.

mod common;

use chain::proof::verify_dynafed_proof;
use chain::{
    attach_signatures, block_signers, build_block, validate_final_block, validate_proposal,
    verify_member_signature, BlockError, FederationParams, ProofError,
};
use common::{
    federation, high_s_der, member_signatures, set_witness, sign, witness, witness_of, Federation,
};
use elements::BlockExtData;

/// A proposal on top of genesis and the genesis header.
fn proposal(fed: &Federation) -> (elements::BlockHeader, elements::Block) {
    let genesis = fed.params.genesis_block().header;
    let block = build_block(&fed.params, &genesis, genesis.time + 60);
    (genesis, block)
}

/// A block signed by the given members through attach_signatures.
fn signed(fed: &Federation, members: &[usize]) -> (elements::BlockHeader, elements::Block) {
    let (parent, mut block) = proposal(fed);
    let sigs = member_signatures(fed, &block.header, members);
    attach_signatures(&fed.params, &mut block.header, &sigs).expect("attach");
    (parent, block)
}

fn proof_err(e: ProofError) -> Result<Vec<usize>, BlockError> {
    Err(BlockError::Proof(e))
}

#[test]
fn three_of_four_block_is_final_with_right_signers() {
    let fed = federation("testchain", 3, 4, 1);
    let (parent, block) = signed(&fed, &[3, 1, 2]);
    assert_eq!(
        validate_final_block(&fed.params, &parent, &block),
        Ok(vec![1, 2, 3])
    );
    assert_eq!(block_signers(&fed.params, &block.header), Ok(vec![1, 2, 3]));
    // Same result through the generic (template-parsing) verifier.
    let keys = verify_dynafed_proof(&block.header, fed.params.signblockscript()).unwrap();
    assert_eq!(keys, fed.params.sorted_keys()[1..4].to_vec());
    // Witness shape: ["", 3 sigs, witness script], within the limit.
    let w = witness(&block.header);
    assert_eq!(w.len(), 5);
    assert!(w[0].is_empty());
    assert_eq!(w[4], fed.params.witness_script().to_bytes());
    // Round trip through the consensus encoding.
    let bytes = elements::encode::serialize(&block);
    let decoded: elements::Block = elements::encode::deserialize(&bytes).unwrap();
    assert_eq!(decoded, block);
    assert_eq!(
        validate_final_block(&fed.params, &parent, &decoded),
        Ok(vec![1, 2, 3])
    );
}

#[test]
fn eleven_of_fifteen_block_is_final_with_first_m_signers_in_key_order() {
    let fed = federation("liquid-like", 11, 15, 2);
    let (parent, mut block) = proposal(&fed);
    // All but members 0 and 5, in scrambled order, plus a duplicate and an invalid signature.
    let members = [14, 2, 9, 1, 13, 3, 12, 4, 11, 6, 10, 7, 8];
    let mut sigs = member_signatures(&fed, &block.header, &members);
    sigs.push((2, sign(&fed.secrets[2], &block.header)));
    sigs.push((0, sign(&fed.secrets[5], &block.header)));
    sigs.push((99, sign(&fed.secrets[5], &block.header)));
    attach_signatures(&fed.params, &mut block.header, &sigs).unwrap();
    let expected = vec![1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12];
    assert_eq!(
        validate_final_block(&fed.params, &parent, &block),
        Ok(expected.clone())
    );
    assert_eq!(block_signers(&fed.params, &block.header), Ok(expected));
    let size = elements::encode::serialize(witness(&block.header)).len();
    assert!(
        size <= fed.params.signblock_witness_limit() as usize,
        "{size}"
    );
    assert_eq!(fed.params.signblock_witness_limit(), 1332);
}

#[test]
fn chain_of_blocks_validates_each_on_its_parent() {
    let fed = federation("testchain", 2, 3, 3);
    let mut parent = fed.params.genesis_block().header;
    for i in 0..5u32 {
        let mut block = build_block(&fed.params, &parent, parent.time + 1);
        assert_eq!(validate_proposal(&fed.params, &parent, &block), Ok(()));
        assert_eq!(block.header.height, i + 1);
        let sigs = member_signatures(
            &fed,
            &block.header,
            &[(i as usize) % 3, (i as usize + 1) % 3],
        );
        attach_signatures(&fed.params, &mut block.header, &sigs).unwrap();
        assert!(validate_final_block(&fed.params, &parent, &block).is_ok());
        // A signed block is not a proposal.
        assert_eq!(
            validate_proposal(&fed.params, &parent, &block),
            Err(BlockError::WitnessNotEmpty { items: 4 })
        );
        parent = block.header;
    }
}

#[test]
fn unsigned_block_is_not_final() {
    let fed = federation("testchain", 3, 4, 4);
    let (parent, block) = proposal(&fed);
    assert_eq!(
        validate_final_block(&fed.params, &parent, &block),
        proof_err(ProofError::EmptyWitness)
    );
}

#[test]
fn m_minus_one_signatures_rejected() {
    let fed = federation("testchain", 3, 4, 5);
    let (parent, mut block) = proposal(&fed);
    let sigs = member_signatures(&fed, &block.header, &[0, 2]);
    let before = block.header.clone();
    assert_eq!(
        attach_signatures(&fed.params, &mut block.header, &sigs),
        Err(ProofError::NotEnoughSignatures {
            valid: 2,
            required: 3
        })
    );
    assert_eq!(block.header, before, "header unchanged on error");
    let w = witness_of(&fed.params, sigs.into_iter().map(|(_, s)| s).collect());
    set_witness(&mut block.header, w);
    assert_eq!(
        validate_final_block(&fed.params, &parent, &block),
        proof_err(ProofError::WrongSignatureCount {
            found: 2,
            expected: 3
        })
    );
}

#[test]
fn non_member_signature_rejected() {
    let fed = federation("testchain", 3, 4, 6);
    let outsider = common::random_secrets(1, 600)[0];
    let (parent, mut block) = proposal(&fed);
    // attach_signatures drops it (claimed as member 3).
    let mut sigs = member_signatures(&fed, &block.header, &[0, 1]);
    sigs.push((3, sign(&outsider, &block.header)));
    assert_eq!(
        attach_signatures(&fed.params, &mut block.header, &sigs),
        Err(ProofError::NotEnoughSignatures {
            valid: 2,
            required: 3
        })
    );
    assert_eq!(
        verify_member_signature(&fed.params, &block.header, 3, &sigs[2].1),
        Err(ProofError::InvalidMemberSignature { index: 3 })
    );
    // Forced into the witness, it matches no key.
    set_witness(
        &mut block.header,
        witness_of(&fed.params, sigs.into_iter().map(|(_, s)| s).collect()),
    );
    assert_eq!(
        validate_final_block(&fed.params, &parent, &block),
        proof_err(ProofError::SignatureNotMatched { index: 2 })
    );
}

#[test]
fn duplicated_signer_rejected() {
    let fed = federation("testchain", 3, 4, 7);
    let (parent, mut block) = proposal(&fed);
    let s0 = sign(&fed.secrets[0], &block.header);
    let s1 = sign(&fed.secrets[1], &block.header);
    // attach_signatures counts a member once.
    assert_eq!(
        attach_signatures(
            &fed.params,
            &mut block.header,
            &[(0, s0.clone()), (0, s0.clone()), (1, s1.clone())]
        ),
        Err(ProofError::NotEnoughSignatures {
            valid: 2,
            required: 3
        })
    );
    // The same signature twice in the witness: a key is used at most once.
    // Backward walk: s1 fails keys 3 and 2, then 3 signatures remain for 2 keys.
    set_witness(
        &mut block.header,
        witness_of(&fed.params, vec![s0.clone(), s0, s1]),
    );
    assert_eq!(
        validate_final_block(&fed.params, &parent, &block),
        proof_err(ProofError::SignatureNotMatched { index: 2 })
    );
}

#[test]
fn signatures_out_of_key_order_rejected() {
    let fed = federation("testchain", 2, 3, 8);
    let (parent, mut block) = proposal(&fed);
    let s0 = sign(&fed.secrets[0], &block.header);
    let s2 = sign(&fed.secrets[2], &block.header);
    set_witness(
        &mut block.header,
        witness_of(&fed.params, vec![s2.clone(), s0.clone()]),
    );
    assert!(matches!(
        validate_final_block(&fed.params, &parent, &block),
        Err(BlockError::Proof(ProofError::SignatureNotMatched { .. }))
    ));
    set_witness(&mut block.header, witness_of(&fed.params, vec![s0, s2]));
    assert_eq!(
        validate_final_block(&fed.params, &parent, &block),
        Ok(vec![0, 2])
    );
}

#[test]
fn tampered_header_rejected() {
    let fed = federation("testchain", 3, 4, 9);
    let (parent, mut block) = signed(&fed, &[0, 1, 2]);
    block.header.time += 1;
    assert_eq!(
        validate_final_block(&fed.params, &parent, &block),
        proof_err(ProofError::SignatureNotMatched { index: 2 })
    );
}

#[test]
fn wrong_signblockscript_in_current_params_rejected() {
    let fed = federation("testchain", 3, 4, 10);
    let other = federation("testchain", 3, 4, 11);
    let parent = fed.params.genesis_block().header;
    // A block of the other federation, fully signed by it, on our genesis.
    let mut block = build_block(&other.params, &parent, parent.time + 1);
    let sigs = member_signatures(&other, &block.header, &[0, 1, 2]);
    attach_signatures(&other.params, &mut block.header, &sigs).unwrap();
    assert_eq!(
        validate_final_block(&fed.params, &parent, &block),
        Err(BlockError::WrongCurrentParams)
    );
    assert!(matches!(
        verify_dynafed_proof(&block.header, fed.params.signblockscript()),
        Err(ProofError::SignblockscriptMismatch { .. })
    ));
    assert!(matches!(
        block_signers(&fed.params, &block.header),
        Err(ProofError::SignblockscriptMismatch { .. })
    ));
    // And our signatures cannot be attached to it.
    let ours = member_signatures(&fed, &block.header, &[0, 1, 2]);
    assert!(matches!(
        attach_signatures(&fed.params, &mut block.header, &ours),
        Err(ProofError::SignblockscriptMismatch { .. })
    ));
}

/// A 3-of-4 block whose last witness signature (signature index 2, member 3) is replaced by `last`.
fn with_last_signature(
    fed: &Federation,
    last: impl FnOnce(&elements::BlockHeader) -> Vec<u8>,
) -> Result<Vec<usize>, BlockError> {
    let (parent, mut block) = proposal(fed);
    let mut sigs: Vec<Vec<u8>> = [1, 2]
        .iter()
        .map(|&i| sign(&fed.secrets[i], &block.header))
        .collect();
    sigs.push(last(&block.header));
    set_witness(&mut block.header, witness_of(&fed.params, sigs));
    validate_final_block(&fed.params, &parent, &block)
}

#[test]
fn high_s_signature_rejected() {
    let fed = federation("testchain", 3, 4, 12);
    let result = with_last_signature(&fed, |h| {
        let good = sign(&fed.secrets[3], h);
        let mut high = high_s_der(&good[..good.len() - 1]);
        high.push(0x01);
        assert_eq!(
            verify_member_signature(&fed.params, h, 3, &high),
            Err(ProofError::HighS { index: 3 })
        );
        high
    });
    assert_eq!(result, proof_err(ProofError::HighS { index: 2 }));
    // Control: the low-S signature passes.
    assert_eq!(
        with_last_signature(&fed, |h| sign(&fed.secrets[3], h)),
        Ok(vec![1, 2, 3])
    );
}

#[test]
fn missing_sighash_byte_rejected() {
    let fed = federation("testchain", 3, 4, 13);
    let result = with_last_signature(&fed, |h| {
        let mut s = sign(&fed.secrets[3], h);
        s.pop();
        s
    });
    assert_eq!(
        result,
        proof_err(ProofError::MissingSighashByte { index: 2 })
    );
}

#[test]
fn wrong_sighash_byte_rejected() {
    let fed = federation("testchain", 3, 4, 14);
    for byte in [0x00u8, 0x02, 0x03, 0x81] {
        let result = with_last_signature(&fed, |h| {
            let mut s = sign(&fed.secrets[3], h);
            *s.last_mut().unwrap() = byte;
            s
        });
        assert_eq!(
            result,
            proof_err(ProofError::WrongSighashByte { index: 2, byte })
        );
    }
}

#[test]
fn non_strict_der_rejected() {
    let fed = federation("testchain", 3, 4, 15);
    let result = with_last_signature(&fed, |h| {
        let mut s = sign(&fed.secrets[3], h);
        s[1] += 1; // DER length no longer matches
        s
    });
    assert_eq!(result, proof_err(ProofError::NonStrictDer { index: 2 }));
}

#[test]
fn non_empty_dummy_rejected() {
    let fed = federation("testchain", 3, 4, 16);
    let (parent, mut block) = signed(&fed, &[0, 1, 2]);
    let mut w = witness(&block.header).clone();
    w[0] = vec![0x01];
    set_witness(&mut block.header, w);
    assert_eq!(
        validate_final_block(&fed.params, &parent, &block),
        proof_err(ProofError::NonEmptyDummy)
    );
}

#[test]
fn extra_signature_rejected() {
    let fed = federation("testchain", 3, 4, 17);
    let (parent, mut block) = signed(&fed, &[0, 1, 2]);
    let mut w = witness(&block.header).clone();
    w.insert(4, sign(&fed.secrets[3], &block.header));
    set_witness(&mut block.header, w);
    // The limit is sized for exactly m signatures, so our validation stops there.
    assert!(matches!(
        validate_final_block(&fed.params, &parent, &block),
        Err(BlockError::Proof(ProofError::WitnessTooLarge { .. }))
    ));
    // With a header limit large enough, CLEANSTACK still demands exactly m signatures.
    if let BlockExtData::Dynafed {
        current:
            elements::dynafed::Params::Compact {
                signblock_witness_limit,
                ..
            },
        ..
    } = &mut block.header.ext
    {
        *signblock_witness_limit = 10_000;
    }
    assert_eq!(
        verify_dynafed_proof(&block.header, fed.params.signblockscript()),
        Err(ProofError::WrongSignatureCount {
            found: 4,
            expected: 3
        })
    );
}

#[test]
fn witness_over_limit_rejected() {
    let fed = federation("testchain", 3, 4, 18);
    let (parent, mut block) = signed(&fed, &[0, 1, 2]);
    let mut w = witness(&block.header).clone();
    w[0] = vec![0u8; 300];
    let size = elements::encode::serialize(&w).len();
    set_witness(&mut block.header, w);
    assert_eq!(
        validate_final_block(&fed.params, &parent, &block),
        proof_err(ProofError::WitnessTooLarge {
            size,
            limit: fed.params.signblock_witness_limit()
        })
    );
}

#[test]
fn wrong_witness_script_rejected() {
    let fed = federation("testchain", 3, 4, 19);
    let (parent, mut block) = signed(&fed, &[0, 1, 2]);
    let mut w = witness(&block.header).clone();
    let last = w.len() - 1;
    w[last][0] = 0x52; // OP_2 instead of OP_3: another script, another hash
    set_witness(&mut block.header, w);
    assert_eq!(
        validate_final_block(&fed.params, &parent, &block),
        proof_err(ProofError::WitnessScriptHashMismatch)
    );
}

#[test]
fn wrong_prev_hash_height_and_time_rejected() {
    let fed = federation("testchain", 3, 4, 20);
    let (parent, block) = signed(&fed, &[0, 1, 2]);

    let mut b = block.clone();
    b.header.prev_blockhash = elements::BlockHash::from_byte_array([7u8; 32]);
    assert_eq!(
        validate_final_block(&fed.params, &parent, &b),
        Err(BlockError::WrongPrevHash {
            expected: parent.block_hash(),
            found: b.header.prev_blockhash
        })
    );

    let mut b = block.clone();
    b.header.height = 2;
    assert_eq!(
        validate_final_block(&fed.params, &parent, &b),
        Err(BlockError::WrongHeight {
            expected: 1,
            found: 2
        })
    );

    let early = build_block(&fed.params, &parent, parent.time - 1);
    assert_eq!(
        validate_proposal(&fed.params, &parent, &early),
        Err(BlockError::TimeBeforeParent {
            time: parent.time - 1,
            parent_time: parent.time
        })
    );
    // Equal time is allowed.
    let same = build_block(&fed.params, &parent, parent.time);
    assert_eq!(validate_proposal(&fed.params, &parent, &same), Ok(()));
}

#[test]
fn proposal_structure_rules() {
    let fed = federation("testchain", 3, 4, 21);
    let (parent, block) = proposal(&fed);
    assert_eq!(validate_proposal(&fed.params, &parent, &block), Ok(()));

    let mut b = block.clone();
    b.header.version = 0x2000_0001;
    assert!(matches!(
        validate_proposal(&fed.params, &parent, &b),
        Err(BlockError::WrongVersion { .. })
    ));

    let mut b = block.clone();
    if let BlockExtData::Dynafed { proposed, .. } = &mut b.header.ext {
        *proposed = fed.params.full_params();
    }
    assert_eq!(
        validate_proposal(&fed.params, &parent, &b),
        Err(BlockError::ProposedNotNull)
    );

    let mut b = block.clone();
    if let BlockExtData::Dynafed { current, .. } = &mut b.header.ext {
        *current = fed.params.full_params();
    }
    assert_eq!(
        validate_proposal(&fed.params, &parent, &b),
        Err(BlockError::WrongCurrentParams)
    );

    let mut b = block.clone();
    b.txdata.push(b.txdata[0].clone());
    assert_eq!(
        validate_proposal(&fed.params, &parent, &b),
        Err(BlockError::SecondCoinbase { index: 1 })
    );

    let mut b = block.clone();
    b.txdata.clear();
    assert_eq!(
        validate_proposal(&fed.params, &parent, &b),
        Err(BlockError::NoTransactions)
    );

    let mut b = block.clone();
    b.txdata[0].input[0].previous_output.vout = 0;
    assert_eq!(
        validate_proposal(&fed.params, &parent, &b),
        Err(BlockError::FirstNotCoinbase)
    );

    let mut b = block.clone();
    b.txdata[0].output[0].value = elements::confidential::Value::Null;
    assert!(matches!(
        validate_proposal(&fed.params, &parent, &b),
        Err(BlockError::InvalidCoinbase { .. })
    ));

    let mut b = block.clone();
    b.txdata[0].input[0].script_sig = elements::script::Builder::new()
        .push_int(5)
        .push_int(0)
        .into_script();
    assert!(matches!(
        validate_proposal(&fed.params, &parent, &b),
        Err(BlockError::InvalidCoinbase { .. })
    ));

    // Changing the coinbase without fixing the merkle root.
    let mut b = block.clone();
    b.txdata[0].lock_time = elements::LockTime::from_consensus(5);
    assert!(matches!(
        validate_proposal(&fed.params, &parent, &b),
        Err(BlockError::MerkleRootMismatch { .. })
    ));

    let mut b = block.clone();
    set_witness(&mut b.header, vec![vec![]]);
    assert_eq!(
        validate_proposal(&fed.params, &parent, &b),
        Err(BlockError::WitnessNotEmpty { items: 1 })
    );
}

#[test]
fn member_signature_checks() {
    let fed = federation("testchain", 3, 4, 22);
    let (_, block) = proposal(&fed);
    let s = sign(&fed.secrets[1], &block.header);
    assert_eq!(
        verify_member_signature(&fed.params, &block.header, 1, &s),
        Ok(())
    );
    assert_eq!(
        verify_member_signature(&fed.params, &block.header, 2, &s),
        Err(ProofError::InvalidMemberSignature { index: 2 })
    );
    assert_eq!(
        verify_member_signature(&fed.params, &block.header, 4, &s),
        Err(ProofError::MemberIndexOutOfRange {
            index: 4,
            members: 4
        })
    );
    assert_eq!(
        verify_member_signature(&fed.params, &block.header, usize::MAX, &s),
        Err(ProofError::MemberIndexOutOfRange {
            index: usize::MAX,
            members: 4
        })
    );
    assert_eq!(
        verify_member_signature(&fed.params, &block.header, 1, &[]),
        Err(ProofError::NonStrictDer { index: 1 })
    );
}

#[test]
fn legacy_header_is_not_a_block_of_ours() {
    let fed = federation("testchain", 1, 1, 23);
    let (parent, mut block) = proposal(&fed);
    block.header.ext = BlockExtData::Proof {
        challenge: fed.params.witness_script().clone(),
        solution: elements::Script::new(),
    };
    assert_eq!(
        validate_proposal(&fed.params, &parent, &block),
        Err(BlockError::NotDynafed)
    );
    assert_eq!(
        attach_signatures(&fed.params, &mut block.header, &[]),
        Err(ProofError::NotDynafed)
    );
}

#[test]
fn one_of_one_federation_works() {
    let fed = federation("solo", 1, 1, 24);
    let (parent, block) = signed(&fed, &[0]);
    assert_eq!(
        validate_final_block(&fed.params, &parent, &block),
        Ok(vec![0])
    );
    let _: &FederationParams = &fed.params;
}
