//! What the RPC layer shows about peers and consensus.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::p2p::P2pHandle;
use crate::rpc::NodeStatusSource;

/// Live status shared by the event loop (writer) and the RPC server (reader).
pub struct DaemonStatus {
    pub p2p: P2pHandle,
    pub member_names: Vec<String>,
    pub member_of_peer: HashMap<libp2p::PeerId, usize>,
    pub consensus: Mutex<serde_json::Value>,
}

impl NodeStatusSource for DaemonStatus {
    fn peer_info(&self) -> serde_json::Value {
        let peers = self
            .p2p
            .peers()
            .into_iter()
            .map(|p| {
                let member = self.member_of_peer.get(&p.peer_id).copied();
                serde_json::json!({
                    "peer_id": p.peer_id.to_string(),
                    "member": member.and_then(|i| self.member_names.get(i)).cloned(),
                    "member_index": member,
                    "addr": p.addr.to_string(),
                    "connected": p.connected,
                    "connected_since_ms": p.connected_since_ms,
                    "last_message_ms": p.last_message_ms,
                    "messages_in": p.messages_in,
                    "messages_out": p.messages_out,
                })
            })
            .collect();
        serde_json::Value::Array(peers)
    }

    fn consensus_info(&self) -> serde_json::Value {
        self.consensus
            .lock()
            .map(|v| v.clone())
            .unwrap_or(serde_json::Value::Null)
    }
}
