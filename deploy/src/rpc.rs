//! JSON-RPC access to a member of a local federation.

use functionary::cli::rpc_client::RpcClient;

use crate::layout::FederationLayout;

/// An RPC client for member `i` (address from the layout, cookie from its data dir).
pub fn client(layout: &FederationLayout, i: usize) -> RpcClient {
    RpcClient::new(
        layout.members[i].rpc_addr,
        layout.datadir(i).join(".cookie"),
    )
}
