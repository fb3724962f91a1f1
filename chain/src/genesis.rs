//! The genesis block and the policy asset, derived as Elements derives them for custom chains
//! (E `src/chainparams.cpp`: `CommitToArguments`, `GenerateAssetEntropy`, `CalculateAsset`).

use crate::build::{coinbase_transaction, BLOCK_VERSION};
use crate::merkle::merkle_root;
use crate::params::{FederationParams, FEDPEGSCRIPT};
use elements::hashes::{sha256, HashEngine};
use elements::{AssetId, BlockExtData, BlockHeader, ContractHash, OutPoint, Txid};

/// Our chain has no parent chain yet: the parent genesis hash is all zeros.
pub(crate) const NO_PARENT_GENESIS: [u8; 32] = [0u8; 32];

/// Elements' `CommitToArguments`: `SHA256(chain_name || hex(fedpegscript) || hex(signblockscript))`, hex in
/// lower case.
pub fn argument_commitment(
    chain_name: &str,
    fedpegscript: &[u8],
    signblockscript: &[u8],
) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(chain_name.as_bytes());
    engine.input(hex::encode(fedpegscript).as_bytes());
    engine.input(hex::encode(signblockscript).as_bytes());
    sha256::Hash::from_engine(engine).to_byte_array()
}

/// The policy asset as Elements derives it: `commit = argument_commitment(..)`,
/// `entropy = FMR[SHA256d(commit || u32 0), parent_genesis]`, `asset = FMR[entropy, 0^32]`.
/// `parent_genesis` is in internal (not display) byte order.
pub fn derive_policy_asset(
    chain_name: &str,
    fedpegscript: &[u8],
    signblockscript: &[u8],
    parent_genesis: &[u8; 32],
) -> AssetId {
    let commit = argument_commitment(chain_name, fedpegscript, signblockscript);
    let prevout = OutPoint::new(Txid::from_byte_array(commit), 0);
    let entropy =
        AssetId::generate_asset_entropy(prevout, ContractHash::from_byte_array(*parent_genesis));
    AssetId::from_entropy(entropy)
}

/// Builds the genesis block of `params` (documented at [`FederationParams::genesis_block`]).
pub(crate) fn genesis_block(params: &FederationParams) -> elements::Block {
    let commit = argument_commitment(
        params.chain_name(),
        &FEDPEGSCRIPT,
        params.signblockscript().as_bytes(),
    );
    let script_sig = elements::script::Builder::new()
        .push_slice(&commit)
        .push_slice(params.chain_name().as_bytes())
        .into_script();
    let mut coinbase = coinbase_transaction(script_sig, params.policy_asset());
    if let Some(coins) = params.initial_coins() {
        coinbase.output.push(elements::TxOut {
            asset: elements::confidential::Asset::Explicit(params.policy_asset()),
            value: elements::confidential::Value::Explicit(coins.amount),
            nonce: elements::confidential::Nonce::Null,
            script_pubkey: coins.script_pubkey.clone(),
            witness: elements::TxOutWitness::default(),
        });
    }
    let txdata = vec![coinbase];
    let header = BlockHeader {
        version: BLOCK_VERSION,
        prev_blockhash: elements::BlockHash::from_byte_array([0u8; 32]),
        merkle_root: merkle_root(&txdata),
        time: params.genesis_time(),
        height: 0,
        ext: BlockExtData::Dynafed {
            current: params.full_params(),
            proposed: elements::dynafed::Params::Null,
            signblock_witness: Vec::new(),
        },
    };
    elements::Block { header, txdata }
}
