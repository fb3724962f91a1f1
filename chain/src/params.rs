//! Federation parameters: the sorted block-signing keys, the threshold and everything derived from them
//! (witness script, P2WSH signblockscript, witness limit, dynafed params, policy asset, genesis).

use crate::error::ParamsError;
use crate::genesis;
use crate::multisig::multisig_script_bytes;
use crate::proof::compact_size_len;
use elements::dynafed::{FullParams, Params};
use elements::hashes::sha256;

/// At most 15 members. 15 is the standard multisig limit: with 15 compressed keys the witness script
/// `OP_m <33B pk>*15 OP_15 OP_CHECKMULTISIG` is 15*34+3 = 513 bytes, the largest that still fits a single
/// 520-byte script push (`MAX_SCRIPT_ELEMENT_SIZE`), which is why Bitcoin Core's P2SH multisig policy and
/// Liquid (11-of-15) stop there; 16 keys (547 bytes) would not fit.
pub const MAX_MEMBERS: usize = 15;
/// Longest chain name, in bytes.
pub const MAX_CHAIN_NAME_LEN: usize = 64;
/// Largest DER signature plus its sighash byte, as assumed by the witness limit.
pub const MAX_SIGNATURE_WITH_SIGHASH_LEN: usize = 73;
/// The fedpegscript carried in the genesis full params: `OP_TRUE`, Elements' default for custom chains
/// (E `src/chainparams.cpp`, `-fedpegscript` default). Peg-ins are not implemented yet; this will change when the
/// peg watcher joins (and with it the genesis hash and policy asset).
pub const FEDPEGSCRIPT: [u8; 1] = [0x51];

/// The federation's block-signing parameters. Keys are parsed once here; everything derived from them is computed
/// once at construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederationParams {
    chain_name: String,
    sorted_keys: Vec<secp256k1::PublicKey>,
    threshold: usize,
    genesis_time: u32,
    witness_script: elements::Script,
    signblockscript: elements::Script,
    signblock_witness_limit: u32,
    full_params: Params,
    compact_params: Params,
    policy_asset: elements::AssetId,
    initial_coins: Option<InitialCoins>,
    genesis_hash: elements::BlockHash,
}

/// Policy-asset coins created in the genesis coinbase (Elements' `-initialfreecoins` for custom chains; a test or
/// development chain needs money before peg-ins exist). Genesis outputs are spendable in our ledger, as in Elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialCoins {
    /// Amount in satoshis of the policy asset (at most 21 million coins).
    pub amount: u64,
    /// The script the coins are paid to.
    pub script_pubkey: elements::Script,
}

impl FederationParams {
    /// Validates and builds the parameters: `1 <= threshold <= n`, `1 <= n <= 15` (see [`MAX_MEMBERS`] for why
    /// 15), no duplicate keys, chain name non-empty ASCII of at most 64 bytes. The order of `block_keys` does not
    /// matter: keys are sorted (see [`FederationParams::sorted_keys`]).
    pub fn new(
        chain_name: &str,
        mut block_keys: Vec<secp256k1::PublicKey>,
        threshold: usize,
        genesis_time: u32,
    ) -> Result<Self, ParamsError> {
        if chain_name.is_empty() {
            return Err(ParamsError::EmptyChainName);
        }
        if !chain_name.is_ascii() {
            return Err(ParamsError::ChainNameNotAscii {
                name: chain_name.to_string(),
            });
        }
        if chain_name.len() > MAX_CHAIN_NAME_LEN {
            return Err(ParamsError::ChainNameTooLong {
                len: chain_name.len(),
                max: MAX_CHAIN_NAME_LEN,
            });
        }
        let members = block_keys.len();
        if members == 0 {
            return Err(ParamsError::NoMembers);
        }
        if members > MAX_MEMBERS {
            return Err(ParamsError::TooManyMembers {
                members,
                max: MAX_MEMBERS,
            });
        }
        if threshold == 0 {
            return Err(ParamsError::ZeroThreshold);
        }
        if threshold > members {
            return Err(ParamsError::ThresholdAboveMembers { threshold, members });
        }
        if 2 * threshold <= members {
            return Err(ParamsError::ThresholdNotMajority { threshold, members });
        }
        block_keys.sort_by_key(|key| key.serialize());
        if let Some(pair) = block_keys
            .windows(2)
            .find(|pair| pair.first() == pair.get(1))
        {
            let key = pair
                .first()
                .map(|k| hex::encode(k.serialize()))
                .unwrap_or_default();
            return Err(ParamsError::DuplicateKey { key });
        }

        let witness_script = elements::Script::from(multisig_script_bytes(threshold, &block_keys));
        let signblockscript = p2wsh(witness_script.as_bytes());
        let signblock_witness_limit = witness_limit(threshold, witness_script.len());
        let full = FullParams::new(
            signblockscript.clone(),
            signblock_witness_limit,
            p2sh_p2wsh(&FEDPEGSCRIPT),
            FEDPEGSCRIPT.to_vec(),
            Vec::new(),
        );
        let compact_params = full.clone().into_compact();
        let full_params = Params::Full(full);
        let policy_asset = genesis::derive_policy_asset(
            chain_name,
            &FEDPEGSCRIPT,
            signblockscript.as_bytes(),
            &genesis::NO_PARENT_GENESIS,
        );
        let mut params = FederationParams {
            chain_name: chain_name.to_string(),
            sorted_keys: block_keys,
            threshold,
            genesis_time,
            witness_script,
            signblockscript,
            signblock_witness_limit,
            full_params,
            compact_params,
            policy_asset,
            initial_coins: None,
            genesis_hash: elements::BlockHash::from_byte_array([0u8; 32]),
        };
        params.genesis_hash = genesis::genesis_block(&params).block_hash();
        Ok(params)
    }

    /// The same federation with `coins` paid by the genesis coinbase (a different genesis hash). Refused: zero,
    /// more than 21 million coins, an empty script.
    pub fn with_initial_coins(mut self, coins: InitialCoins) -> Result<Self, ParamsError> {
        const MAX_MONEY: u64 = 21_000_000 * 100_000_000;
        if coins.amount == 0 || coins.amount > MAX_MONEY {
            return Err(ParamsError::InitialCoinsAmount {
                amount: coins.amount,
            });
        }
        if coins.script_pubkey.is_empty() {
            return Err(ParamsError::InitialCoinsScriptEmpty);
        }
        self.initial_coins = Some(coins);
        self.genesis_hash = genesis::genesis_block(&self).block_hash();
        Ok(self)
    }

    /// The coins the genesis block creates, if any.
    pub fn initial_coins(&self) -> Option<&InitialCoins> {
        self.initial_coins.as_ref()
    }

    /// The only script a coinbase may pay fees to: the federation's block-signing program
    /// ([`FederationParams::signblockscript`]), like Elements' `con_mandatorycoinbase`.
    pub fn fee_script(&self) -> &elements::Script {
        &self.signblockscript
    }

    /// The chain name.
    pub fn chain_name(&self) -> &str {
        &self.chain_name
    }

    /// The threshold m.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The number of members n.
    pub fn member_count(&self) -> usize {
        self.sorted_keys.len()
    }

    /// Genesis block time, seconds since the Unix epoch.
    pub fn genesis_time(&self) -> u32 {
        self.genesis_time
    }

    /// Keys sorted by their 33-byte compressed serialization, lexicographically (the Elements/Liquid order).
    /// "Member index" everywhere in the project = position in this slice.
    pub fn sorted_keys(&self) -> &[secp256k1::PublicKey] {
        &self.sorted_keys
    }

    /// The member index of `key`, if it is a member.
    pub fn member_index(&self, key: &secp256k1::PublicKey) -> Option<usize> {
        self.sorted_keys.iter().position(|k| k == key)
    }

    /// `OP_m <33B pk>... OP_n OP_CHECKMULTISIG` over [`FederationParams::sorted_keys`].
    pub fn witness_script(&self) -> &elements::Script {
        &self.witness_script
    }

    /// P2WSH program of the witness script: `0x00 0x20 SHA256(witness_script)`.
    pub fn signblockscript(&self) -> &elements::Script {
        &self.signblockscript
    }

    /// Maximum serialized size of the signblock witness `["", sig_1..sig_m, witness_script]`:
    ///
    /// `limit = cs(m + 2) + 1 + m * (1 + 73) + cs(len(ws)) + len(ws)`
    ///
    /// where `cs(x)` is the length of the compact-size encoding of x (1 byte below 253, 3 bytes up to 65535),
    /// `1` is the empty dummy's length byte, 73 is the largest DER signature (72) plus the sighash byte and `1`
    /// its length byte, and `ws` the witness script. For 11-of-15 that is 1 + 1 + 814 + 3 + 513 = 1332.
    pub fn signblock_witness_limit(&self) -> u32 {
        self.signblock_witness_limit
    }

    /// Full dynafed params carried by the genesis block: our signblockscript and witness limit, the fedpegscript
    /// [`FEDPEGSCRIPT`] with its P2SH-P2WSH fedpeg program (Elements' conversion rule), no extension space.
    pub fn full_params(&self) -> Params {
        self.full_params.clone()
    }

    /// Compact params carried by every block after genesis: same signblockscript and limit, `elided_root` = the
    /// extra root of [`FederationParams::full_params`].
    pub fn compact_params(&self) -> Params {
        self.compact_params.clone()
    }

    /// Borrowed compact params (no clone) for comparisons on the hot path.
    pub(crate) fn compact_params_ref(&self) -> &Params {
        &self.compact_params
    }

    /// The L-BTC-like policy asset, derived as Elements does (see [`crate::derive_policy_asset`]) from the chain
    /// name, [`FEDPEGSCRIPT`] and [`FederationParams::signblockscript`], parent genesis all zeros.
    pub fn policy_asset(&self) -> elements::AssetId {
        self.policy_asset
    }

    /// Deterministic genesis: version with the dynafed bit, prev = zeros, time = genesis_time, height 0,
    /// current = [`FederationParams::full_params`], proposed = Null, empty witness (genesis is not signed), one
    /// coinbase whose scriptSig pushes the Elements argument commitment
    /// `SHA256(chain_name || hex(fedpegscript) || hex(signblockscript))` (so it commits to the chain name and the
    /// params) and then the chain name itself, paying 0 of the policy asset to `OP_RETURN`, then the
    /// [`InitialCoins`] output if there is one.
    pub fn genesis_block(&self) -> elements::Block {
        genesis::genesis_block(self)
    }

    /// Hash of [`FederationParams::genesis_block`] (computed once).
    pub fn genesis_hash(&self) -> elements::BlockHash {
        self.genesis_hash
    }
}

/// `limit = cs(m + 2) + 1 + m * 74 + cs(len(ws)) + len(ws)`; see [`FederationParams::signblock_witness_limit`].
fn witness_limit(threshold: usize, witness_script_len: usize) -> u32 {
    let size = compact_size_len(threshold + 2)
        + 1
        + threshold * (1 + MAX_SIGNATURE_WITH_SIGHASH_LEN)
        + compact_size_len(witness_script_len)
        + witness_script_len;
    u32::try_from(size).unwrap_or(u32::MAX)
}

/// `0x00 0x20 SHA256(script)`.
fn p2wsh(script: &[u8]) -> elements::Script {
    let mut program = Vec::with_capacity(34);
    program.extend_from_slice(&[0x00, 0x20]);
    program.extend_from_slice(sha256::Hash::hash(script).as_byte_array());
    elements::Script::from(program)
}

/// `OP_HASH160 <HASH160(P2WSH(script))> OP_EQUAL` on the parent chain.
fn p2sh_p2wsh(script: &[u8]) -> bitcoin::ScriptBuf {
    let redeem = p2wsh(script);
    let hash = elements::hashes::hash160::Hash::hash(redeem.as_bytes());
    let mut bytes = Vec::with_capacity(23);
    bytes.extend_from_slice(&[0xa9, 0x14]);
    bytes.extend_from_slice(hash.as_byte_array());
    bytes.push(0x87);
    bitcoin::ScriptBuf::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witness_limit_formula() {
        assert_eq!(witness_limit(11, 513), 1332);
        assert_eq!(witness_limit(2, 3 + 3 * 34), 1 + 1 + 148 + 1 + 105);
    }

    #[test]
    fn fedpeg_program_is_p2sh_p2wsh_of_op_true() {
        let program = p2sh_p2wsh(&FEDPEGSCRIPT);
        assert!(program.is_p2sh());
    }
}
