//! The devnet faucet: a well-known key whose P2WPKH output the devnet's genesis pays (`[initial_coins]`), so that a
//! local federation has coins to move before peg-ins exist. Its secret is public (SHA-256 of
//! [`DEVNET_FAUCET_LABEL`]): never configure it on a chain that matters.

use bitcoin::hashes::{hash160, sha256, Hash};

/// The label whose SHA-256 is the faucet's secret key.
pub const DEVNET_FAUCET_LABEL: &str = "functionary-devnet-faucet";
/// Satoshis the devnet genesis pays to the faucet (1,000,000 coins).
pub const DEVNET_FAUCET_AMOUNT: u64 = 1_000_000 * 100_000_000;
/// File in the federation directory describing the faucet (secret, script, amount).
pub const FAUCET_FILE: &str = "faucet.json";

/// The faucet's secret key bytes.
pub fn faucet_secret() -> [u8; 32] {
    sha256::Hash::hash(DEVNET_FAUCET_LABEL.as_bytes()).to_byte_array()
}

/// The faucet's P2WPKH scriptPubKey (`0x00 0x14 HASH160(compressed public key)`).
pub fn faucet_script() -> anyhow::Result<Vec<u8>> {
    let secret = secp256k1::SecretKey::from_slice(&faucet_secret())?;
    let public = secret.public_key(secp256k1::SECP256K1).serialize();
    let mut script = vec![0x00, 0x14];
    script.extend_from_slice(hash160::Hash::hash(&public).as_byte_array());
    Ok(script)
}

/// The contents of [`FAUCET_FILE`].
pub fn faucet_json() -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::json!({
        "warning": "well-known development key: anyone can spend these coins; never use it on a real chain",
        "secret_key_hex": hex::encode(faucet_secret()),
        "script_pubkey_hex": hex::encode(faucet_script()?),
        "amount_sat": DEVNET_FAUCET_AMOUNT,
        "outpoint": "vout 1 of the genesis coinbase (getblock <getblockhash 0> 2)",
    }))
}
