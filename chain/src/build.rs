//! Building blocks, the signing digest, and assembling member signatures into the signblock witness.

use crate::error::ProofError;
use crate::merkle::merkle_root;
use crate::params::FederationParams;
use crate::signature::{parse_block_signature, SighashMode};
use elements::confidential::{Asset, Nonce, Value};
use elements::{
    BlockExtData, BlockHeader, OutPoint, Sequence, Transaction, TxIn, TxInWitness, TxOut,
    TxOutWitness,
};
use secp256k1::{Message, SECP256K1};

/// Header version of every block we build (BIP9 base version; the dynafed bit 0x80000000 is added by the encoder
/// because the header carries dynafed params).
pub const BLOCK_VERSION: u32 = 0x2000_0000;

/// A coinbase transaction with the given scriptSig paying 0 of `asset` to a bare `OP_RETURN`.
pub(crate) fn coinbase_transaction(
    script_sig: elements::Script,
    asset: elements::AssetId,
) -> Transaction {
    Transaction {
        version: 2,
        lock_time: elements::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            is_pegin: false,
            script_sig,
            sequence: Sequence::MAX,
            asset_issuance: Default::default(),
            witness: TxInWitness::default(),
        }],
        output: vec![TxOut {
            asset: Asset::Explicit(asset),
            value: Value::Explicit(0),
            nonce: Nonce::Null,
            script_pubkey: elements::Script::new_op_return(&[]),
            witness: TxOutWitness::default(),
        }],
    }
}

/// The BIP34-style height push that starts every coinbase scriptSig after genesis (Core's minimal
/// `CScript() << height`).
pub(crate) fn height_push(height: u32) -> elements::Script {
    elements::script::Builder::new()
        .push_int(i64::from(height))
        .into_script()
}

/// Coinbase scriptSig of a block at `height`: `<height> OP_0`, like Bitcoin Core's block assembler (the trailing
/// OP_0 keeps the scriptSig at least 2 bytes long, as consensus requires, for heights 1..16).
pub(crate) fn coinbase_script_sig(height: u32) -> elements::Script {
    elements::script::Builder::new()
        .push_int(i64::from(height))
        .push_int(0)
        .into_script()
}

/// New unsigned block on top of `parent`: height parent.height+1, the given time, compact params, proposed Null,
/// empty witness, txdata = one coinbase (`<height> OP_0` scriptSig, an `OP_RETURN` output of 0 policy asset),
/// merkle root computed from txdata. A parent at height `u32::MAX` has no valid child; the height then saturates
/// and [`crate::validate_proposal`] rejects the block.
pub fn build_block(params: &FederationParams, parent: &BlockHeader, time: u32) -> elements::Block {
    let height = parent.height.saturating_add(1);
    let txdata = vec![coinbase_transaction(
        coinbase_script_sig(height),
        params.policy_asset(),
    )];
    let header = BlockHeader {
        version: BLOCK_VERSION,
        prev_blockhash: parent.block_hash(),
        merkle_root: merkle_root(&txdata),
        time,
        height,
        ext: BlockExtData::Dynafed {
            current: params.compact_params(),
            proposed: elements::dynafed::Params::Null,
            signblock_witness: Vec::new(),
        },
    };
    elements::Block { header, txdata }
}

/// The 32-byte digest block signers sign: SHA256d of the header without witness (= `header.block_hash()` bytes,
/// internal byte order). Signers sign it directly, with no domain separation, as Elements does.
pub fn signing_digest(header: &BlockHeader) -> [u8; 32] {
    header.block_hash().to_byte_array()
}

/// Checks one member's block signature: strict DER + trailing 0x01 sighash byte, low-S, valid for the member's key
/// over [`signing_digest`]. `member_index` out of range is an error, not a panic. Encoding errors carry the member
/// index as their `index`.
pub fn verify_member_signature(
    params: &FederationParams,
    header: &BlockHeader,
    member_index: usize,
    signature: &[u8],
) -> Result<(), ProofError> {
    let key = params
        .sorted_keys()
        .get(member_index)
        .ok_or(ProofError::MemberIndexOutOfRange {
            index: member_index,
            members: params.member_count(),
        })?;
    let signature = parse_block_signature(signature, SighashMode::TrailingAll, member_index)?;
    let message = Message::from_digest(signing_digest(header));
    SECP256K1
        .verify_ecdsa(&message, &signature, key)
        .map_err(|_| ProofError::InvalidMemberSignature {
            index: member_index,
        })
}

/// Builds the dynafed signblock witness `["", sig..., witness_script]` from the given (member_index, DER+0x01)
/// pairs: verifies each, drops duplicates and invalid ones, takes the first m distinct valid members in key order.
/// Errors: the header is not dynafed or its current signblockscript is not ours; fewer than m valid members.
/// On error the header is left unchanged.
pub fn attach_signatures(
    params: &FederationParams,
    header: &mut BlockHeader,
    signatures: &[(usize, Vec<u8>)],
) -> Result<(), ProofError> {
    let BlockExtData::Dynafed { current, .. } = &header.ext else {
        return Err(ProofError::NotDynafed);
    };
    let found = current
        .signblockscript()
        .ok_or(ProofError::NullCurrentParams)?;
    if found != params.signblockscript() {
        return Err(ProofError::SignblockscriptMismatch {
            expected: hex::encode(params.signblockscript().as_bytes()),
            found: hex::encode(found.as_bytes()),
        });
    }
    let mut by_member: Vec<Option<&[u8]>> = vec![None; params.member_count()];
    for (member_index, signature) in signatures {
        let Some(slot) = by_member.get_mut(*member_index) else {
            continue;
        };
        if slot.is_none()
            && verify_member_signature(params, header, *member_index, signature).is_ok()
        {
            *slot = Some(signature.as_slice());
        }
    }
    let valid = by_member.iter().flatten().count();
    let required = params.threshold();
    if valid < required {
        return Err(ProofError::NotEnoughSignatures { valid, required });
    }
    let mut witness = Vec::with_capacity(required + 2);
    witness.push(Vec::new());
    witness.extend(
        by_member
            .iter()
            .flatten()
            .take(required)
            .map(|sig| sig.to_vec()),
    );
    witness.push(params.witness_script().to_bytes());
    if let BlockExtData::Dynafed {
        signblock_witness, ..
    } = &mut header.ext
    {
        *signblock_witness = witness;
    }
    Ok(())
}
