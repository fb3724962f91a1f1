//! Configuration of a functionary node.
//!
//! * [`FederationConfig`] — `federation.toml`, identical at every member (chain name, threshold, block interval,
//!   genesis time, members). Its [`FederationConfig::config_hash`] is compared out of band.
//! * [`NodeConfig`] — `node.toml` in the data dir, per member; overridable by environment variables and flags
//!   ([`NodeArgs`]) with the precedence flags > env > `node.toml` > defaults.
//!
//! Everything is validated at load time and every error names the offending key (or the path of the file).

mod duration;
mod error;
mod federation;
mod federation_hash;
mod fields;
mod node;

pub use duration::{format_duration, parse_duration};
pub use error::ConfigError;
pub use federation::{
    FederationConfig, MemberConfig, DEFAULT_BLOCK_INTERVAL, MAX_MEMBERS, MIN_BLOCK_INTERVAL,
};
pub use fields::parse_multiaddr;
pub use node::{
    HsmSection, NodeArgs, NodeConfig, DEFAULT_HSM_KEY_LABEL, DEFAULT_HSM_MODULE, DEFAULT_RPC_BIND,
};
