//! Configuration of a functionary node.
//!
//! * [`FederationConfig`] — `federation.toml`, identical at every member (chain name, threshold, block interval,
//!   genesis time, round timeout, peg wallet, members). Its [`FederationConfig::config_hash`] is compared out of band.
//! * [`NodeConfig`] — `node.toml` in the data dir, per member; overridable by environment variables and flags
//!   ([`NodeArgs`]) with the precedence flags > env > `node.toml` > defaults.
//!
//! Everything is validated at load time and every error names the offending key (or the path of the file).

mod duration;
mod error;
mod federation;
mod federation_hash;
mod fields;
mod initial_coins;
mod node;
mod peg_wallet;
mod signer;

pub use duration::{format_duration, parse_duration};
pub use error::ConfigError;
pub use federation::{
    default_round_timeout, FederationConfig, MemberConfig, DEFAULT_BLOCK_INTERVAL,
    MAX_DEFAULT_ROUND_TIMEOUT, MAX_MEMBERS, MIN_BLOCK_INTERVAL, MIN_DEFAULT_ROUND_TIMEOUT,
};
pub use fields::{
    check_member_name, parse_ed25519_peer_id, parse_multiaddr, parse_secp256k1_pubkey,
};
pub use initial_coins::{InitialCoinsConfig, MAX_MONEY};
pub use node::{
    HsmSection, NodeArgs, NodeConfig, DEFAULT_HSM_KEY_LABEL, DEFAULT_HSM_MODULE,
    DEFAULT_HSM_PEG_KEY_LABEL, DEFAULT_RPC_BIND,
};
pub use peg_wallet::{PegWalletConfig, MAX_CSV_TIMELOCK, MAX_EMERGENCY_KEYS};
pub use signer::{
    SignerMode, SignerSection, DEFAULT_SIGNER_CONNECT_TIMEOUT, DEFAULT_SIGNER_SOCKET,
};
