//! Elements-shaped JSON for output scripts (`scriptPubKey` objects of `decoderawtransaction`, `getrawtransaction`,
//! `gettxout`): `asm`, `desc`, `hex`, `address`, `type`, and for peg-out outputs `pegout_chain` plus the same fields
//! of the parent-chain script prefixed `pegout_` (Elements `core_write.cpp` `ScriptToUniv` /
//! `SidechainScriptPubKeyToJSON`, `script/solver.cpp` `Solver`, `script/descriptor.cpp` `InferScript` with no
//! signing provider).
//!
//! Addresses: sidechain scripts are encoded with Elements' custom-chain defaults (`AddressParams::ELEMENTS`:
//! bech32 `ert`, base58 prefixes 235/75), which is what elementsd prints for a custom chain started without
//! `-bech32_hrp`/`-pubkeyprefix`/...; parent-chain (peg-out) scripts with Bitcoin regtest's, the parent chain our
//! peg-outs name.

use elements::script::Instruction;
use serde_json::{Map, Value};

use super::blockjson::script_asm;

/// Elements' `TxoutType` of a script, as `Solver` classifies it (Elements' `OP_TRUE` type only exists with
/// `-anyonecanspendaremine`, which our chain does not have).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptType {
    /// Empty script: an explicit fee output.
    Fee,
    /// Bare public key.
    PubKey,
    /// P2PKH.
    PubKeyHash,
    /// P2SH.
    ScriptHash,
    /// Bare `CHECKMULTISIG`.
    Multisig,
    /// `OP_RETURN` followed only by pushes (peg-outs are of this type).
    NullData,
    /// Pay-to-anchor (`OP_1 <0x4e73>`).
    Anchor,
    /// P2WPKH.
    WitnessV0KeyHash,
    /// P2WSH.
    WitnessV0ScriptHash,
    /// P2TR.
    WitnessV1Taproot,
    /// A witness program of an unknown version.
    WitnessUnknown,
    /// Anything else.
    NonStandard,
}

impl ScriptType {
    /// The name Elements prints (`GetTxnOutputType`).
    pub fn name(self) -> &'static str {
        match self {
            ScriptType::Fee => "fee",
            ScriptType::PubKey => "pubkey",
            ScriptType::PubKeyHash => "pubkeyhash",
            ScriptType::ScriptHash => "scripthash",
            ScriptType::Multisig => "multisig",
            ScriptType::NullData => "nulldata",
            ScriptType::Anchor => "anchor",
            ScriptType::WitnessV0KeyHash => "witness_v0_keyhash",
            ScriptType::WitnessV0ScriptHash => "witness_v0_scripthash",
            ScriptType::WitnessV1Taproot => "witness_v1_taproot",
            ScriptType::WitnessUnknown => "witness_unknown",
            ScriptType::NonStandard => "nonstandard",
        }
    }

    /// Whether Core's `ExtractDestination` yields an address for this type (a bare key has one, but
    /// `ScriptToUniv` does not print it).
    fn has_address(self) -> bool {
        matches!(
            self,
            ScriptType::PubKeyHash
                | ScriptType::ScriptHash
                | ScriptType::Anchor
                | ScriptType::WitnessV0KeyHash
                | ScriptType::WitnessV0ScriptHash
                | ScriptType::WitnessV1Taproot
                | ScriptType::WitnessUnknown
        )
    }
}

/// Which chain a script belongs to (selects the address encoding and the `pegout_` field prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScriptChain {
    Sidechain,
    Parent,
}

/// `(version, program)` of a witness program script: 4 to 42 bytes, `OP_0`/`OP_1..OP_16`, one direct push of
/// 2 to 40 bytes (Core's `CScript::IsWitnessProgram`).
fn witness_program(script: &[u8]) -> Option<(u8, &[u8])> {
    if !(4..=42).contains(&script.len()) {
        return None;
    }
    let first = *script.first()?;
    let version = match first {
        0x00 => 0,
        0x51..=0x60 => first - 0x50,
        _ => return None,
    };
    let push = usize::from(*script.get(1)?);
    if push + 2 != script.len() {
        return None;
    }
    Some((version, script.get(2..)?))
}

/// Core's `CPubKey::ValidSize`: 33 bytes starting 02/03, or 65 bytes starting 04/06/07.
fn valid_pubkey_size(data: &[u8]) -> bool {
    match data.first() {
        Some(0x02 | 0x03) => data.len() == 33,
        Some(0x04 | 0x06 | 0x07) => data.len() == 65,
        _ => false,
    }
}

/// A multisig count: `OP_1..OP_16`, or a minimal one-byte push of 17..=20.
fn multisig_number(instruction: &Instruction<'_>) -> Option<usize> {
    match instruction {
        Instruction::Op(op) => {
            let code = op.into_u8();
            (0x51..=0x60)
                .contains(&code)
                .then(|| usize::from(code - 0x50))
        }
        Instruction::PushBytes([n]) if (17..=20).contains(n) => Some(usize::from(*n)),
        Instruction::PushBytes(_) => None,
    }
}

/// Core's `MatchMultisig`: `(required, keys)`.
fn match_multisig(script: &elements::Script) -> Option<(usize, Vec<&[u8]>)> {
    if script.as_bytes().last() != Some(&0xae) {
        return None;
    }
    let instructions: Vec<Instruction<'_>> =
        script.instructions().collect::<Result<_, _>>().ok()?;
    let (first, rest) = instructions.split_first()?;
    let required = multisig_number(first)?;
    let mut keys = Vec::new();
    let mut index = 0;
    while let Some(Instruction::PushBytes(data)) = rest.get(index) {
        if !valid_pubkey_size(data) {
            break;
        }
        keys.push(*data);
        index += 1;
    }
    let count = multisig_number(rest.get(index)?)?;
    if count < required || count > 20 || keys.len() != count {
        return None;
    }
    // exactly one instruction (the final OP_CHECKMULTISIG) follows the count
    (rest.len() == index + 2).then_some((required, keys))
}

/// `OP_RETURN` followed only by push opcodes (up to `OP_16`), every push well formed.
fn is_null_data(script: &elements::Script) -> bool {
    let mut instructions = script.instructions();
    match instructions.next() {
        Some(Ok(Instruction::Op(op))) if op.into_u8() == 0x6a => {}
        _ => return false,
    }
    instructions.all(|instruction| match instruction {
        Ok(Instruction::PushBytes(_)) => true,
        Ok(Instruction::Op(op)) => op.into_u8() <= 0x60,
        Err(_) => false,
    })
}

/// Elements' `Solver` classification.
pub fn script_type(script: &elements::Script) -> ScriptType {
    let bytes = script.as_bytes();
    if bytes.is_empty() {
        return ScriptType::Fee;
    }
    if bytes.len() == 23
        && bytes.first() == Some(&0xa9)
        && bytes.get(1) == Some(&0x14)
        && bytes.last() == Some(&0x87)
    {
        return ScriptType::ScriptHash;
    }
    if let Some((version, program)) = witness_program(bytes) {
        return match (version, program.len()) {
            (0, 20) => ScriptType::WitnessV0KeyHash,
            (0, 32) => ScriptType::WitnessV0ScriptHash,
            (1, 32) => ScriptType::WitnessV1Taproot,
            (1, 2) if program == [0x4e, 0x73] => ScriptType::Anchor,
            (0, _) => ScriptType::NonStandard,
            _ => ScriptType::WitnessUnknown,
        };
    }
    if is_null_data(script) {
        return ScriptType::NullData;
    }
    if bare_pubkey(bytes).is_some() {
        return ScriptType::PubKey;
    }
    if bytes.len() == 25 && bytes.starts_with(&[0x76, 0xa9, 0x14]) && bytes.ends_with(&[0x88, 0xac])
    {
        return ScriptType::PubKeyHash;
    }
    if match_multisig(script).is_some() {
        return ScriptType::Multisig;
    }
    ScriptType::NonStandard
}

/// The key of a bare `<key> OP_CHECKSIG` script.
fn bare_pubkey(bytes: &[u8]) -> Option<&[u8]> {
    let (&len, rest) = bytes.split_first()?;
    let (&last, key) = rest.split_last()?;
    (last == 0xac
        && (len == 33 || len == 65)
        && key.len() == usize::from(len)
        && valid_pubkey_size(key))
    .then_some(key)
}

/// The address of a sidechain script, unconfidential, with Elements' custom-chain parameters.
fn sidechain_address(script: &elements::Script) -> Option<String> {
    elements::Address::from_script(script, None, &elements::AddressParams::ELEMENTS)
        .map(|a| a.to_string())
}

/// The address of a parent-chain script, with Bitcoin regtest's parameters.
fn parent_address(script: &elements::Script) -> Option<String> {
    let script = bitcoin::Script::from_bytes(script.as_bytes());
    bitcoin::Address::from_script(script, bitcoin::Network::Regtest)
        .ok()
        .map(|a| a.to_string())
}

/// Core's `InferDescriptor` with no signing provider (keys known from the script only): `pk()`, `multi()`,
/// `rawtr()` when the keys are valid, else `addr()` when there is an address, else `raw()`; with its checksum.
fn inferred_descriptor(
    script: &elements::Script,
    kind: ScriptType,
    address: Option<&str>,
) -> String {
    let bytes = script.as_bytes();
    let valid_key = |key: &[u8]| secp256k1::PublicKey::from_slice(key).is_ok();
    let body = match kind {
        ScriptType::PubKey => bare_pubkey(bytes)
            .filter(|key| valid_key(key))
            .map(|key| format!("pk({})", hex::encode(key))),
        ScriptType::Multisig => match_multisig(script)
            .filter(|(_, keys)| keys.iter().all(|key| valid_key(key)))
            .map(|(required, keys)| {
                let keys: Vec<String> = keys.iter().map(hex::encode).collect();
                format!("multi({required},{})", keys.join(","))
            }),
        ScriptType::WitnessV1Taproot => bytes
            .get(2..)
            .filter(|key| secp256k1::XOnlyPublicKey::from_slice(key).is_ok())
            .map(|key| format!("rawtr({})", hex::encode(key))),
        _ => None,
    };
    let body = body.unwrap_or_else(|| match address {
        Some(address) => format!("addr({address})"),
        None => format!("raw({})", hex::encode(bytes)),
    });
    match descriptor_checksum(&body) {
        Some(checksum) => format!("{body}#{checksum}"),
        None => body,
    }
}

/// The descriptor checksum of BIP-380 (Core's `DescriptorChecksum`); `None` for a character outside its set.
pub fn descriptor_checksum(descriptor: &str) -> Option<String> {
    const INPUT_CHARSET: &str =
        "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ";
    const CHECKSUM_CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    fn polymod(c: u64, value: u64) -> u64 {
        let c0 = c >> 35;
        let mut c = ((c & 0x7_ffff_ffff) << 5) ^ value;
        for (bit, generator) in [
            0xf5_dee5_1989_u64,
            0xa9_fdca_3312,
            0x1b_ab10_e32d,
            0x37_06b1_677a,
            0x64_4d62_6ffd,
        ]
        .into_iter()
        .enumerate()
        {
            if c0 & (1 << bit) != 0 {
                c ^= generator;
            }
        }
        c
    }
    let mut c = 1u64;
    let mut class = 0u64;
    let mut class_count = 0;
    for ch in descriptor.chars() {
        let position = INPUT_CHARSET.find(ch)? as u64;
        c = polymod(c, position & 31);
        class = class * 3 + (position >> 5);
        class_count += 1;
        if class_count == 3 {
            c = polymod(c, class);
            class = 0;
            class_count = 0;
        }
    }
    if class_count > 0 {
        c = polymod(c, class);
    }
    for _ in 0..8 {
        c = polymod(c, 0);
    }
    c ^= 1;
    (0..8)
        .map(|j| {
            let index = ((c >> (5 * (7 - j))) & 31) as usize;
            CHECKSUM_CHARSET.get(index).map(|b| char::from(*b))
        })
        .collect()
}

fn push_script_fields(out: &mut Map<String, Value>, script: &elements::Script, chain: ScriptChain) {
    let prefix = match chain {
        ScriptChain::Sidechain => "",
        ScriptChain::Parent => "pegout_",
    };
    let kind = script_type(script);
    let address = if kind.has_address() {
        match chain {
            ScriptChain::Sidechain => sidechain_address(script),
            ScriptChain::Parent => parent_address(script),
        }
    } else {
        None
    };
    out.insert(format!("{prefix}asm"), Value::from(script_asm(script)));
    out.insert(
        format!("{prefix}desc"),
        Value::from(inferred_descriptor(script, kind, address.as_deref())),
    );
    out.insert(
        format!("{prefix}hex"),
        Value::from(hex::encode(script.as_bytes())),
    );
    if let Some(address) = address {
        out.insert(format!("{prefix}address"), Value::from(address));
    }
    out.insert(format!("{prefix}type"), Value::from(kind.name()));
}

/// The `scriptPubKey` object of an output: the script's own fields, and for a peg-out (`OP_RETURN <32-byte
/// genesis> <script> ...`, Elements' `IsPegoutScript`) `pegout_chain` (display order) and the parent script's
/// fields prefixed `pegout_`.
pub fn script_pubkey_json(script: &elements::Script) -> Value {
    let mut out = Map::new();
    push_script_fields(&mut out, script, ScriptChain::Sidechain);
    if let Some(pegout) = chain::ledger::parse_pegout_script(script) {
        let mut genesis = pegout.parent_genesis;
        genesis.reverse();
        out.insert("pegout_chain".into(), Value::from(hex::encode(genesis)));
        let parent_script = elements::Script::from(pegout.destination);
        push_script_fields(&mut out, &parent_script, ScriptChain::Parent);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_published_vectors() {
        // vectors from rust-miniscript / elements-miniscript tests (Core's descriptor_tests)
        assert_eq!(
            descriptor_checksum(
                "pk(020000000000000000000000000000000000000000000000000000000000000002)"
            )
            .as_deref(),
            Some("7yxkn84h")
        );
        assert_eq!(
            descriptor_checksum("tr(A,{pk(B),pk(C)})").as_deref(),
            Some("y0uc9t6x")
        );
        assert_eq!(
            descriptor_checksum("elpkh(tpubD6NzVbkrYhZ4XHndKkuB8FifXm8r5FQHwrN6oZuWCz13qb93rtgKvD4PQsqC4HP4yhV3tA2fqr2RbY5mNXfM7RxXUoeABoDtsFUq2zJq6YK/44'/1'/0'/0/*)").as_deref(),
            Some("g7zpd3we")
        );
        assert_eq!(descriptor_checksum("pk(\u{1F496})"), None);
    }

    #[test]
    fn script_types_follow_the_solver() {
        let script = |h: &str| elements::Script::from(hex::decode(h).expect("hex"));
        assert_eq!(script_type(&script("")), ScriptType::Fee);
        assert_eq!(
            script_type(&script("0014df662e2dd70fd82acba2d252cc897cb6e6180932")),
            ScriptType::WitnessV0KeyHash
        );
        assert_eq!(
            script_type(&script(
                "76a914df662e2dd70fd82acba2d252cc897cb6e618093288ac"
            )),
            ScriptType::PubKeyHash
        );
        assert_eq!(
            script_type(&script("a914df662e2dd70fd82acba2d252cc897cb6e618093287")),
            ScriptType::ScriptHash
        );
        assert_eq!(script_type(&script("6a")), ScriptType::NullData);
        assert_eq!(script_type(&script("6a0401020304")), ScriptType::NullData);
        assert_eq!(script_type(&script("6aac")), ScriptType::NonStandard);
        assert_eq!(script_type(&script("51024e73")), ScriptType::Anchor);
        assert_eq!(
            script_type(&script(&("5120".to_string() + &"11".repeat(32)))),
            ScriptType::WitnessV1Taproot
        );
        assert_eq!(script_type(&script("5202abcd")), ScriptType::WitnessUnknown);
        assert_eq!(script_type(&script("51")), ScriptType::NonStandard);
        let key = "02".to_string() + &"11".repeat(32);
        assert_eq!(
            script_type(&script(&format!("21{key}ac"))),
            ScriptType::PubKey
        );
        assert_eq!(
            script_type(&script(&format!("5121{key}21{key}52ae"))),
            ScriptType::Multisig
        );
        // count mismatch
        assert_eq!(
            script_type(&script(&format!("5121{key}53ae"))),
            ScriptType::NonStandard
        );
    }

    #[test]
    fn script_json_has_address_desc_and_type() {
        let wpkh = elements::Script::from(
            hex::decode("0014df662e2dd70fd82acba2d252cc897cb6e6180932").expect("hex"),
        );
        let json = script_pubkey_json(&wpkh);
        let address = json["address"].as_str().expect("address");
        assert!(address.starts_with("ert1q"), "{address}");
        assert_eq!(json["type"], "witness_v0_keyhash");
        let desc = json["desc"].as_str().expect("desc");
        assert!(desc.starts_with(&format!("addr({address})#")), "{desc}");
        let fee = script_pubkey_json(&elements::Script::new());
        assert_eq!(fee["type"], "fee");
        assert_eq!(fee["asm"], "");
        assert!(fee["desc"]
            .as_str()
            .is_some_and(|d| d.starts_with("raw()#")));
        assert!(fee.get("address").is_none());
    }
}
