//! Real Elements signatures verified by our input script verification: the Liquid mainnet peg-in claim of
//! /work/shared/reference/elements-liquid.md §5.3 (P2WPKH over the claim script, Elements BIP143 sighash with the
//! claimed amount) and the Liquid peg-out transaction of §5.4 (two P2PKH inputs, legacy sighash). Their signatures
//! were made by Elements wallets, so these check our sighashes against Elements itself, not against rust-elements'
//! signer. Hex copied complete from the reference file (upstream: rust-elements `tests/data/1in2out_pegin.hex` and
//! `src/transaction.rs` tests @12441ee).

mod scripts_common;

use chain::ledger::verify_input_scripts;
use elements::confidential::{Asset, Nonce, Value};
use elements::encode::deserialize;
use elements::{Script, Transaction, TxOut, TxOutWitness};
use scripts_common::{ctx, expect_script_rejection};

/// Liquid mainnet peg-in claim, txid 5b3864502171ddc0b15ba959d3cf99c177fb05a58990420a3d27c529b753d599.
const LIQUID_PEGIN_CLAIM_TX: &str = "020000000101557e4c2f0628dfac37ac4411cb6e35dd225c9ba5addff102862daae41b637c990b00004000ffffffff02016d521c38ec1ea15734ae22b7c46064412829c0d0579f0a713d1c04ede979026f0100000000000beb6d0016001421716e7df11103ea809accf1ab2bdd4080449eb7016d521c38ec1ea15734ae22b7c46064412829c0d0579f0a713d1c04ede979026f010000000000000042000000000000000002473044022001a6072622c5e93729239647c2fe7f66f272d7aa2812d7438007e334ee474bde02204ffdcfbbd604587577e025ae934cd99e81462338fdc02599a2d38992b389f37001210255a1c00e0dd2116252a5eb25972d0fea758cad0ab7a5d24878f9d6a19727c1a20608afeb0b0000000000206d521c38ec1ea15734ae22b7c46064412829c0d0579f0a713d1c04ede979026f206fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d619000000000016001441fd857c961affbcbf2e4d1045c566e67d76dfd5fde703020000000e6d76937ac1018b78fe283a8944a814ece2140f11ec5179c7d3c492b825131c6c0a00000000feffffff18e04258d7c83015edf8136fc1bf8f2131d9b68af090260b00d9a0bfdf6010d80b00000000feffffff8efa3a72e3733ba0e9eac82d8a2cb4e793ea62d300f7b30cdd233ffe108e9d6b0c00000000feffffffac11c2632695df72aec04ce04a25de4b37458f601661b7ead396d05182c3f17c0700000000feffffffaeead849b5299e24e4d57561dba357991b0a45520cad3b688e6ca7cb28a40f860b00000000feffffff416d0631f4d5cea49b2792788a61ec794080a73dd8935dbf445144f6c0e0810b0c00000000feffffffe3682c1aaf6a5af8a9e2892aadb43d7d496dce911fd3c12cee8d42491eab00780b00000000feffffffe3682c1aaf6a5af8a9e2892aadb43d7d496dce911fd3c12cee8d42491eab00780600000000fefffffffef923d8b219b40eb7c337c5c2fa70dec7f1dbbe7b6b487ccfac6b191fbfaf790300000000feffffff07ff63b29dd68b4eff0a45c8830f7d4a9908287ec919c9e8d9999510c14b02a10800000000feffffff7671526352f34e9f8acaa93648152ff5409510448aef3657aaaf44023cb23bcf0900000000feffffffabf32bbcae8e67f53871b1ee5d0b5a49810386df6c122ae0f6b1c676b59e17480800000000feffffffb8a915b1d5afe373c2f753373cf98256cf4e8a960d285cb62cd9394f2316a8b40700000000feffffffb353ab262b8d23ba4b67bab0adde47836f9a63d5f597221aba8e7b6516c8e5b50c00000000feffffff0d7e8a9b0100000000160014cdf10594603564acd1ebff1596740d7a27da04a9afb4db0700000000160014e311d2f332c317fd792efd1eca1e3ebd60f5262f4e0a62040000000016001443d7e7908e36b3d674f022da05ec223c3589e93c4e0a620400000000160014506a6a3582c9916d49f946e555dac4090fafa21ba373820000000000160014724716f7fbbe5cce379d28df2bdb57101bf4b0b34e0a6204000000001600149b5ba30ba73140301e2c06013ec8743baae9b5964e0a620400000000160014e9a45eede70eedea3c79e2df76fb2ad176b018298591020000000000160014fc53c7d9e1f378f10f0a02f392bddd5cb4b6e7f64e0a620400000000160014dceadbe1d19b5f01cd297326c052182863e0c75f2c853b0200000000160014c1d31cc004ab8a852d09e0f1b21b9612ca557cdd4e0a6204000000001600147ce8ff3fe3a455de4c7556beae19530015bd2619afeb0b0000000000220020b29f97a86251ea0030726261d7703f4015d2644a8f47c9da24468370f9f2f4614e0a6204000000001600144a617e14b88cd99aecd587b60dbb8f7495302531e7e70c00fd1a0200000520dfb88d3a4d93486a906de316f7d36b9aadbe0665cf4e0000000000000000000051e75174de68a0846322c6807468a8d2e9d3ea3c06cc590d4e4bd4632acd1fbe70ae5866f0550317671357d4351000000e692fd6ac8218da7f8d3e95dc49c9a80ec07e5394ffb3a42f526294a9f8aa3f8733645a9dccd40eb4fb1c9777c28303856afd2c757ea56a0825f8955144ad3241ef8fe75a898e7ede330a18721d6745b9141ef03b7b02e6e58663b07bbfbbc2a9557e4c2f0628dfac37ac4411cb6e35dd225c9ba5addff102862daae41b637c998ec2b24d7489e27acc23b73c6191b2826e2f253745d4749f836d1da7a8430d80e32cbb8c149e8423b32f2e48701de69bca0a5b510715661076a0096ce1c6a800b4c51b4a468dec699b4f013ebc46381a55ea98faf249f936d5fe96ee4f60635134b8302c3fc41d305e116c82633fba821a2f73a9097361bffacc960b006cd69593ae8512f0bdf6121271d75b6ce43d29182e024822c745a0d216df8e69323febca09677d55fb0224c7bb7b01361c09050f5cc1e05965c404c3f2e3b6546b83326d910b78565da835fa54a0d32be2daabebb402d1a2a0e50920e61c3ddaeb0d7bde57e98ef84c8e49613c6e5fa60cf28c60e1334dd8272f8d8a636b4c59109f02760d6712f55ca5c2ba86c81dba5073980b62049fc6099dc1518eaca05c8e3026ecd20ce9d0d50c758aa8fbaeacc3a7503a449b66d740a1dc0af1252c2b5ae28804ff76010000000000";

/// Liquid peg-out transaction with two P2PKH inputs, txid 3fe0239f003127e294dd8aad10a91da4998084859159907f90c984823021c1cb.
const LIQUID_PEGOUT_TX: &str = "0200000000021c39a226160dd8962eb273772950f0b603c319a8e4aa9912c9e8e36b5bdf71a2000000006a473044022071212fcde89d1055d5b74f17a162b3dbe5348ac8527a131dab5dcf8a97d67d2f02202edf12f3c69fed1fa0c23da608e6aded86dd5c7b09da42f61b453c3a838e8cab012103557f25ff40f976670ddf59c71938bade91684b76ad69dfed27049de2afec59e5feffffff853db31f986dd89c81fe87a84f385d7099c5ea841d762b26b03166e5e798dfbe000000006a473044022042c70729fb50930179a9d76f5febbda5b0ee50e62febf92de4dd10b9393554d802203140b107519243e4110c065017c8ae1ac04843f94b3f20a1e5faf7343dd76159012102797ffcf7ccc8e2012a90e71962901a1ad740f2a28f2f563c76f9eb42a8100f5efeffffff03016d521c38ec1ea15734ae22b7c46064412829c0d0579f0a713d1c04ede979026f0100000000000f7869001976a914216d878ebff0c623909889265d8dc1ab26e2ff4388ac016d521c38ec1ea15734ae22b7c46064412829c0d0579f0a713d1c04ede979026f0100000000000186a000fd02026a206fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d61900000000001976a914df662e2dd70fd82acba2d252cc897cb6e618093288ac21025f756509f5dbac47d54c9ef5ccf49895a4dbac4759005a74375f66c480e6c0864da1010ce552be292c37e7242d7e58e678a19349021d22f2712ea68de397b66167d141b09f98e3294e05b51c1469bab3ddb7096f5aa2817e218d137879fb54dbe1659353e6e64add9cb2d6f9e8647bd1ca94d9a6a80d193d76f115596f7bcc8a07eaf85c738f31f4fb192b785aa2934bcb5e4f6a7b444da2bc64da3527a33cc7f0792630f57b92ba07dd0e472d5e2e08b2bca8f1c06e18a07f226dac8acbcc1dfafe8be893d9c5092808b1decfbb955c5f82968bed609b0b2e2c55abe4b0c12bc0c7ea3976e0af2c6aadab3c90ed862a9846fc1a1c20ef220a050538d3c9ff12669653f9b055606dd45fe66f18aa819c8cda5c1b224dc19c0fbf028133d1256588834ea14cb44a84da3af83443657f9ff3eaa14216dc4ed06a92c0ce19be4fe066c9d830ee3acdd3062b9336ace12cc5935953284946bf6bc5c89f9a13d37dddd63e85173174a164f4b68cbc94d347b3d4a7e4ec79044b049375cc7b43b7657123b80f5834afca696b6bc7bf47fa67742e1caa609424cba3ec9d9d156b5909debd0475d91d31134acce50420c2ea694e2c2ea477a0bd14e670bccb42a0fb7009b41ee86a016d521c38ec1ea15734ae22b7c46064412829c0d0579f0a713d1c04ede979026f0100000000000006fc000054840300";

fn decode(hex_tx: &str) -> Transaction {
    deserialize(&hex::decode(hex_tx).expect("hex")).expect("an Elements transaction")
}

fn explicit_out(asset: elements::AssetId, value: u64, script_pubkey: Script) -> TxOut {
    TxOut {
        asset: Asset::Explicit(asset),
        value: Value::Explicit(value),
        nonce: Nonce::Null,
        script_pubkey,
        witness: TxOutWitness::default(),
    }
}

/// The output a peg-in input claims, as Elements builds it (`GetPeginOutputFromWitness`): explicit asset and value
/// from the peg-in witness, the claim script as scriptPubKey.
fn claimed_output(tx: &Transaction, value_delta: u64) -> TxOut {
    let pegin = tx.input[0].pegin_data().expect("peg-in witness");
    explicit_out(
        pegin.asset_id,
        pegin.value + value_delta,
        Script::from(pegin.claim_script.to_bytes()),
    )
}

#[test]
fn real_liquid_pegin_claim_signature_verifies_with_the_claimed_amount_only() {
    let tx = decode(LIQUID_PEGIN_CLAIM_TX);
    assert_eq!(
        tx.txid().to_string(),
        "5b3864502171ddc0b15ba959d3cf99c177fb05a58990420a3d27c529b753d599"
    );
    let spent = vec![claimed_output(&tx, 0)];
    assert_eq!(spent[0].value, Value::Explicit(781_231));
    assert_eq!(
        hex::encode(spent[0].script_pubkey.as_bytes()),
        "001441fd857c961affbcbf2e4d1045c566e67d76dfd5"
    );
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));

    // The same signature against one satoshi more: the BIP143 sighash commits to the amount.
    let more = vec![claimed_output(&tx, 1)];
    expect_script_rejection(verify_input_scripts(&ctx(), &tx, &more), 0);
}

/// P2PKH script of the public key pushed last by `script_sig`.
fn p2pkh_of_pushed_key(script_sig: &Script) -> Script {
    let Some(Ok(elements::script::Instruction::PushBytes(key))) = script_sig.instructions().last()
    else {
        panic!("scriptSig does not end with a push");
    };
    let key = bitcoin::PublicKey::from_slice(key).expect("a public key");
    Script::new_p2pkh(&key.pubkey_hash())
}

#[test]
fn real_liquid_p2pkh_signatures_verify_and_are_bound_to_their_input() {
    let tx = decode(LIQUID_PEGOUT_TX);
    assert_eq!(
        tx.txid().to_string(),
        "3fe0239f003127e294dd8aad10a91da4998084859159907f90c984823021c1cb"
    );
    let asset = match tx.output[0].asset {
        Asset::Explicit(asset) => asset,
        other => panic!("expected an explicit asset, got {other:?}"),
    };
    let spent: Vec<TxOut> = tx
        .input
        .iter()
        .map(|input| explicit_out(asset, 1_000_000, p2pkh_of_pushed_key(&input.script_sig)))
        .collect();
    assert_eq!(verify_input_scripts(&ctx(), &tx, &spent), Ok(()));

    // Input 0 carrying input 1's scriptSig, against an output of input 1's key: the key matches, the signature
    // commits to the other input.
    let mut swapped = tx.clone();
    swapped.input[0].script_sig = tx.input[1].script_sig.clone();
    let mut spent_swapped = spent.clone();
    spent_swapped[0].script_pubkey = spent[1].script_pubkey.clone();
    expect_script_rejection(verify_input_scripts(&ctx(), &swapped, &spent_swapped), 0);
}
