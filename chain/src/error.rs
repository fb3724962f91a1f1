//! Error types at the crate boundary. Every message names what is wrong.

/// Why a set of federation parameters is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// No block-signing keys were given.
    #[error("federation has no block-signing keys")]
    NoMembers,
    /// More keys than the supported maximum.
    #[error("federation has {members} block-signing keys; at most {max} are supported")]
    TooManyMembers {
        /// Number of keys given.
        members: usize,
        /// The maximum.
        max: usize,
    },
    /// Threshold 0.
    #[error("threshold must be at least 1")]
    ZeroThreshold,
    /// Threshold above the number of members.
    #[error("threshold {threshold} exceeds the number of members {members}")]
    ThresholdAboveMembers {
        /// The threshold given.
        threshold: usize,
        /// The number of keys.
        members: usize,
    },
    /// The threshold is not a strict majority: two disjoint groups of m honest members could each finalise a
    /// different block at the same height (safety needs 2m - n >= 1 members to be in both groups).
    #[error(
        "threshold: {threshold} of {members} is not a majority; safety needs 2*threshold > members"
    )]
    ThresholdNotMajority {
        /// The threshold given.
        threshold: usize,
        /// The number of keys.
        members: usize,
    },
    /// The same key appears twice.
    #[error("duplicate block-signing key {key}")]
    DuplicateKey {
        /// The key, hex of its compressed serialization.
        key: String,
    },
    /// Empty chain name.
    #[error("chain name is empty")]
    EmptyChainName,
    /// Chain name with non-ASCII characters.
    #[error("chain name {name:?} is not ASCII")]
    ChainNameNotAscii {
        /// The name given.
        name: String,
    },
    /// Initial coins of zero or more than 21 million coins.
    #[error("initial coins: {amount} sat is not in 1..=2100000000000000")]
    InitialCoinsAmount {
        /// The amount given.
        amount: u64,
    },
    /// Initial coins paid to an empty script.
    #[error("initial coins: the script is empty")]
    InitialCoinsScriptEmpty,
    /// Chain name too long.
    #[error("chain name is {len} bytes long; at most {max} are allowed")]
    ChainNameTooLong {
        /// Its length in bytes.
        len: usize,
        /// The maximum.
        max: usize,
    },
}

/// Why a block header's proof (its signatures) is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// A dynafed proof was expected but the header carries a legacy proof.
    #[error("header is not dynafed (it carries a legacy challenge/solution proof)")]
    NotDynafed,
    /// A legacy proof was expected but the header is dynafed.
    #[error("header is dynafed, expected a legacy challenge/solution proof")]
    NotLegacy,
    /// The header's current dynafed params are Null.
    #[error("header's current dynafed params are Null")]
    NullCurrentParams,
    /// The header's current signblockscript is not the expected one.
    #[error("header's current signblockscript {found} is not the expected {expected}")]
    SignblockscriptMismatch {
        /// Expected script, hex.
        expected: String,
        /// Script in the header, hex.
        found: String,
    },
    /// The legacy challenge is not the expected one.
    #[error("header's challenge {found} is not the expected {expected}")]
    ChallengeMismatch {
        /// Expected script, hex.
        expected: String,
        /// Script in the header, hex.
        found: String,
    },
    /// The expected signblockscript is not a P2WSH program.
    #[error("signblockscript {script} is not a P2WSH program (0x00 0x20 <32 bytes>)")]
    NotP2wsh {
        /// The script, hex.
        script: String,
    },
    /// The signblock witness is empty (unsigned header).
    #[error("signblock witness is empty (header is not signed)")]
    EmptyWitness,
    /// The signblock witness is larger than the header's limit.
    #[error(
        "signblock witness is {size} bytes serialized; the limit in current params is {limit}"
    )]
    WitnessTooLarge {
        /// Serialized size of the witness.
        size: usize,
        /// The limit.
        limit: u32,
    },
    /// A witness stack item (other than the witness script) exceeds 520 bytes.
    #[error("witness item {index} is {len} bytes; at most 520 are allowed")]
    WitnessItemTooLarge {
        /// Item position in the witness.
        index: usize,
        /// Item length.
        len: usize,
    },
    /// SHA256(witnessScript) is not the P2WSH program.
    #[error("SHA256 of the witness script does not match the P2WSH signblockscript")]
    WitnessScriptHashMismatch,
    /// The multisig script is not `OP_m <pk>*n OP_n OP_CHECKMULTISIG`.
    #[error("unsupported script: {reason}")]
    UnsupportedScript {
        /// What is wrong with it.
        reason: String,
    },
    /// The legacy solution is not `OP_0 <sig>...` with minimal pushes.
    #[error("invalid legacy solution: {reason}")]
    InvalidSolution {
        /// What is wrong with it.
        reason: String,
    },
    /// The CHECKMULTISIG dummy element is not empty (NULLDUMMY).
    #[error("multisig dummy element is not empty (NULLDUMMY)")]
    NonEmptyDummy,
    /// The number of signatures is not exactly m.
    #[error("proof carries {found} signatures; exactly {expected} are required")]
    WrongSignatureCount {
        /// Signatures found.
        found: usize,
        /// The threshold m.
        expected: usize,
    },
    /// A signature is not strict DER.
    #[error("signature {index} is not strict DER")]
    NonStrictDer {
        /// Signature position (0-based among the signatures).
        index: usize,
    },
    /// A signature has a high S value.
    #[error("signature {index} has a high S value (LOW_S)")]
    HighS {
        /// Signature position.
        index: usize,
    },
    /// A dynafed signature lacks the trailing sighash byte.
    #[error("signature {index} has no trailing sighash byte")]
    MissingSighashByte {
        /// Signature position.
        index: usize,
    },
    /// A dynafed signature's trailing byte is not 0x01.
    #[error("signature {index} has sighash byte {byte:#04x}; only 0x01 (SIGHASH_ALL) is allowed")]
    WrongSighashByte {
        /// Signature position.
        index: usize,
        /// The byte found.
        byte: u8,
    },
    /// A signature matches none of the remaining keys (CHECKMULTISIG fails).
    #[error("signature {index} does not match any remaining key in key order")]
    SignatureNotMatched {
        /// Signature position.
        index: usize,
    },
    /// A member index is out of range.
    #[error("member index {index} out of range; the federation has {members} members")]
    MemberIndexOutOfRange {
        /// The index given.
        index: usize,
        /// Number of members.
        members: usize,
    },
    /// A member's signature does not verify.
    #[error("signature of member {index} does not verify against its key")]
    InvalidMemberSignature {
        /// The member index.
        index: usize,
    },
    /// Fewer distinct valid signatures than the threshold.
    #[error("only {valid} distinct valid member signatures; {required} required")]
    NotEnoughSignatures {
        /// Distinct valid signatures.
        valid: usize,
        /// The threshold.
        required: usize,
    },
    /// A signer key could not be mapped to a federation member.
    #[error("signer key {key} is not a federation member")]
    UnknownSigner {
        /// The key, hex.
        key: String,
    },
}

/// Why a block is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The block proof is invalid.
    #[error("block proof: {0}")]
    Proof(#[from] ProofError),
    /// The header is not dynafed.
    #[error("block header is not dynafed")]
    NotDynafed,
    /// Version field other than the one we build.
    #[error("block version {found:#010x}; expected {expected:#010x} (plus the dynafed bit)")]
    WrongVersion {
        /// Version found (dynafed bit masked off).
        found: u32,
        /// Expected version.
        expected: u32,
    },
    /// prev_blockhash is not the parent's hash.
    #[error("prev block hash {found} is not the parent's hash {expected}")]
    WrongPrevHash {
        /// Parent hash.
        expected: elements::BlockHash,
        /// Hash in the header.
        found: elements::BlockHash,
    },
    /// Height is not parent height + 1.
    #[error("block height {found}; expected {expected}")]
    WrongHeight {
        /// parent + 1.
        expected: u32,
        /// Height in the header.
        found: u32,
    },
    /// The parent is at the maximum height.
    #[error("parent height {parent} has no successor")]
    HeightOverflow {
        /// Parent height.
        parent: u32,
    },
    /// Time before the parent's.
    #[error("block time {time} is before the parent's time {parent_time}")]
    TimeBeforeParent {
        /// Block time.
        time: u32,
        /// Parent time.
        parent_time: u32,
    },
    /// Current params are not our compact params.
    #[error("block's current dynafed params are not the federation's compact params")]
    WrongCurrentParams,
    /// Proposed params are not Null.
    #[error("block's proposed dynafed params are not Null")]
    ProposedNotNull,
    /// A proposal must carry an empty witness.
    #[error("proposal carries a non-empty signblock witness ({items} items)")]
    WitnessNotEmpty {
        /// Witness item count.
        items: usize,
    },
    /// No transactions.
    #[error("block has no transactions")]
    NoTransactions,
    /// First tx not coinbase.
    #[error("first transaction is not a coinbase")]
    FirstNotCoinbase,
    /// A transaction after the first is a coinbase too ("bad-cb-multiple").
    #[error("bad-cb-multiple: transaction {index} is a second coinbase")]
    SecondCoinbase {
        /// Its position in the block.
        index: usize,
    },
    /// Coinbase does not follow our rules.
    #[error("invalid coinbase: {reason}")]
    InvalidCoinbase {
        /// What is wrong.
        reason: String,
    },
    /// Merkle root mismatch.
    #[error("merkle root {found} does not match the transactions ({computed})")]
    MerkleRootMismatch {
        /// Computed from txdata.
        computed: elements::TxMerkleNode,
        /// In the header.
        found: elements::TxMerkleNode,
    },
    /// Two transactions of the block have the same txid (also how a merkle-root-preserving mutation of the
    /// transaction list looks, CVE-2012-2459).
    #[error("bad-txns-duplicate: transaction {txid} appears twice in the block")]
    DuplicateTransaction {
        /// The repeated txid.
        txid: elements::Txid,
    },
    /// The coinbase's witness commitment does not match the block's witness data (or is missing while some
    /// transaction has witness data).
    #[error("witness commitment: {reason}")]
    WitnessCommitment {
        /// Elements' reason and what is wrong.
        reason: String,
    },
    /// The coinbase carries witness data that neither the header nor the witness commitment covers (issuance or
    /// peg-in witness fields, output proofs): another member could hold the same block hash with other bytes.
    #[error("uncommitted coinbase witness: {detail}")]
    UncommittedCoinbaseWitness {
        /// Which field.
        detail: String,
    },
    /// Block too heavy.
    #[error("block weight {weight} exceeds the limit {limit}")]
    TooHeavy {
        /// Weight.
        weight: usize,
        /// Limit.
        limit: usize,
    },
}

impl BlockError {
    /// True when the block's transactions do not belong to its header (wrong merkle root, duplicated transactions,
    /// witness data not matching the commitment, uncommitted coinbase witness). Such a body can be produced from a
    /// valid block by anyone who relays it, without changing the block hash: it proves nothing about the block
    /// hash itself, so the hash must not be remembered as invalid, only the message refused. A body that passes
    /// these checks is the only one its hash can have.
    pub fn is_body_mismatch(&self) -> bool {
        matches!(
            self,
            BlockError::MerkleRootMismatch { .. }
                | BlockError::DuplicateTransaction { .. }
                | BlockError::WitnessCommitment { .. }
                | BlockError::UncommittedCoinbaseWitness { .. }
        )
    }
}
