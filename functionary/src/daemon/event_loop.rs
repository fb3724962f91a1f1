//! The event loop: feeds the consensus core and executes its effects, in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use blocksigner::{Consensus, ConsensusEvent, ConsensusMessage, Effect, Input};
use tokio::sync::{mpsc, watch};

use super::block_source::StoreBlockSource;
use super::signer_thread::{SignOutcome, SignRequest, SignerThread};
use super::startup::LoadedNode;
use super::status::DaemonStatus;
use super::timing::{now_ms, TimingLog};
use crate::config::NodeConfig;
use crate::ledger::{relay, ChainState, LedgerBlockContent};
use crate::p2p::{self, P2pConfig, P2pEvent, P2pHandle};
use crate::rpc::{self, RpcContext};

/// Largest encoded peer message (broadcast frames and block-range responses).
const MAX_MESSAGE_BYTES: usize = blocksigner::MAX_MESSAGE_BYTES;

/// Starts p2p and RPC, then runs until stopped.
pub async fn run(config: NodeConfig, node: LoadedNode) -> anyhow::Result<()> {
    let LoadedNode {
        federation_config,
        federation,
        member_index,
        member_names,
        member_peers,
        member_of_peer,
        keypair,
        guard,
        store,
        consensus_record,
    } = node;
    let me = &member_names[member_index];
    let params = &federation.params;

    let tip = store.tip_header()?;
    let last_signed = guard
        .last_signed()
        .map(|s| (s.height, elements::BlockHash::from_byte_array(s.block_hash)));
    let p2p_signing_key = p2p::dalek_signing_key(&keypair)?;

    // Sockets: p2p first, then RPC; if RPC cannot bind, p2p is shut down before returning the error.
    let listen = match &config.p2p_listen {
        Some(addr) => addr.clone(),
        None => federation_config
            .member_by_name(me)
            .map(|m| m.address.clone())
            .context("own member entry vanished")?,
    };
    let peers = federation_config
        .members
        .iter()
        .filter(|m| &m.name != me)
        .map(|m| (m.peer_id, m.address.clone()))
        .collect();
    let p2p = p2p::start(
        P2pConfig {
            keypair,
            listen: listen.clone(),
            peers,
            max_message_bytes: MAX_MESSAGE_BYTES,
        },
        Arc::new(StoreBlockSource(store.clone())),
    )
    .await
    .with_context(|| format!("p2p listen address {listen}"))?;
    let mut p2p_events = p2p.take_events().context("p2p events already taken")?;

    let status = Arc::new(DaemonStatus {
        p2p: p2p.clone(),
        member_names: member_names.clone(),
        member_of_peer: member_of_peer.clone(),
        consensus: std::sync::Mutex::new(serde_json::Value::Null),
    });
    let (chain_state, mut relay_rx) = ChainState::new(
        store.clone(),
        params,
        chain::mempool::MempoolLimits::default(),
    );
    let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
    let federation_info = federation_info(&federation_config, params, &member_names, member_index);
    let rpc_ctx = RpcContext {
        store: store.clone(),
        params: Arc::new(params.clone()),
        member_names: member_names.clone(),
        federation_info,
        status: status.clone(),
        shutdown: shutdown_tx.clone(),
        ledger: chain_state.clone(),
    };
    let rpc_server = match rpc::start(config.rpc_bind, &config.data_dir, rpc_ctx).await {
        Ok(s) => s,
        Err(e) => {
            p2p.shutdown().await;
            return Err(e).with_context(|| format!("rpc_bind {}", config.rpc_bind));
        }
    };

    let (outcome_tx, mut outcomes) = mpsc::channel::<SignOutcome>(64);
    let signer = SignerThread::spawn(guard, outcome_tx).context("starting the signer thread")?;

    tracing::info!(target: "daemon", member = %me, member_index, tip_height = tip.height, tip = %tip.block_hash(),
        config_hash = %federation_config.config_hash(), genesis = %params.genesis_hash(),
        rpc = %rpc_server.local_addr(), p2p = %listen, "functionaryd started");

    let mut consensus = Consensus::new(
        federation.clone(),
        member_index,
        p2p_signing_key,
        tip,
        consensus_record,
        last_signed,
    )
    .with_content(Box::new(LedgerBlockContent(chain_state.clone())));
    let mut timing = TimingLog::from_env();
    let mut exec = Executor {
        p2p: &p2p,
        signer: &signer,
        store: &store,
        chain_state: &chain_state,
        member_peers: &member_peers,
        timing: &mut timing,
        next_wake_ms: u64::MAX,
        pending_blocks: Vec::new(),
    };

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // Ticks run on an absolute deadline checked on every loop iteration, so a steady stream of peer messages
    // (which wakes the loop constantly) can never starve them: a stale clock would make the core reject every
    // proposal and precommit as out of its round window.
    let tick_every_ms = federation.interval_ms.clamp(50, 1000);
    let mut tick_at_ms = 0u64;
    let mut inputs = Vec::new();
    // Transactions accepted here, waiting for the next relay frame (at most one frame batch per RELAY_INTERVAL_MS).
    let mut relay_pending: Vec<elements::Transaction> = Vec::new();
    let mut relay_at_ms = 0u64;
    let relay_busy: RelayBusy = Arc::default();
    // Set when a part the node cannot work without has stopped: the daemon then exits with an error.
    let mut fatal: Option<&'static str> = None;
    loop {
        let now = now_ms();
        let ticked = now >= tick_at_ms;
        if ticked || !inputs.is_empty() {
            // Every batch of inputs starts with the current time: a message that starts a round must arm its
            // timeouts from now, not from the last scheduled tick.
            inputs.insert(0, Input::Tick { now_ms: now });
        }
        if ticked {
            tick_at_ms = now.saturating_add(tick_every_ms);
        }
        for input in inputs.drain(..) {
            let effects = consensus.handle(input);
            exec.execute(effects)?;
        }
        tick_at_ms = tick_at_ms.min(exec.take_wake_ms());
        if !relay_pending.is_empty() {
            let now = now_ms();
            if now >= relay_at_ms {
                for frame in relay::frames(std::mem::take(&mut relay_pending)) {
                    p2p.broadcast(frame);
                }
                relay_at_ms = now.saturating_add(relay::RELAY_INTERVAL_MS);
            } else {
                tick_at_ms = tick_at_ms.min(relay_at_ms);
            }
        }
        if ticked {
            // What RPC shows; refreshed once per tick (at least every second), not per message.
            if let Ok(mut s) = status.consensus.lock() {
                *s = consensus_json(&consensus, &member_names);
            }
        }
        let sleep = Duration::from_millis(tick_at_ms.saturating_sub(now_ms()));
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            changed = shutdown_rx.changed() => {
                if changed.is_err() || *shutdown_rx.borrow() { break; }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
            outcome = outcomes.recv() => {
                let Some(outcome) = outcome else {
                    fatal = Some("the signer thread stopped");
                    break;
                };
                exec.timing.record("signed", outcome.height, &outcome.block_hash,
                    serde_json::json!({ "hsm_us": outcome.elapsed.as_micros() as u64, "ok": outcome.result.is_ok() }));
                inputs.push(match outcome.result {
                    Ok(signature) => Input::BlockSigned { height: outcome.height, block_hash: outcome.block_hash, signature },
                    Err(reason) => Input::SignFailed { height: outcome.height, block_hash: outcome.block_hash, reason },
                });
            }
            relayed = relay_rx.recv() => {
                if let Some(tx) = relayed {
                    relay_pending.push(tx);
                    while let Ok(tx) = relay_rx.try_recv() {
                        relay_pending.push(tx);
                    }
                }
            }
            event = p2p_events.recv() => {
                let Some(event) = event else {
                    fatal = Some("the p2p task stopped");
                    break;
                };
                let event = match event {
                    P2pEvent::Message { from, bytes } if relay::is_relay_frame(&bytes) => {
                        accept_relayed(&chain_state, &relay_busy, from, bytes);
                        continue;
                    }
                    other => other,
                };
                if let Some(input) = peer_input(event, &member_of_peer, &p2p) {
                    inputs.push(input);
                }
            }
        }
    }
    tracing::info!(target: "daemon", member = %me, "stopping");
    let _ = shutdown_tx.send(true);
    rpc_server.wait().await;
    p2p.shutdown().await;
    if let Some(reason) = fatal {
        anyhow::bail!("{reason}; stopped so that a supervisor restarts the node from disk");
    }
    tracing::info!(target: "daemon", member = %me, "stopped");
    Ok(())
}

/// Members whose last relay frame is still being validated.
type RelayBusy = Arc<std::sync::Mutex<std::collections::HashSet<libp2p::PeerId>>>;

/// Validates transactions relayed by a member into the mempool, off the event loop (decoding included: script
/// and proof checks take time). At most one frame per member is in flight; a frame arriving while the sender's
/// previous one is still being validated is dropped (a member flooding frames cannot queue unbounded work).
/// Invalid or conflicting transactions are dropped; the sender is a member, so nothing is re-relayed.
fn accept_relayed(
    chain_state: &Arc<ChainState>,
    busy: &RelayBusy,
    from: libp2p::PeerId,
    bytes: Vec<u8>,
) {
    {
        let mut busy = busy.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !busy.insert(from) {
            tracing::debug!(target: "ledger", peer = %from, "relay frame dropped: the previous one is still being validated");
            return;
        }
    }
    let chain_state = Arc::clone(chain_state);
    let busy = Arc::clone(busy);
    tokio::task::spawn_blocking(move || {
        match relay::decode_relay_frame(&bytes) {
            Ok(transactions) => {
                for tx in transactions {
                    let txid = tx.txid();
                    match chain_state.accept(tx) {
                        Ok(accepted) => {
                            tracing::debug!(target: "ledger", %txid, peer = %from, fee = accepted.fee,
                            "relayed transaction accepted")
                        }
                        Err(reason) => {
                            tracing::debug!(target: "ledger", %txid, peer = %from, %reason,
                            "relayed transaction not accepted")
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(target: "ledger", peer = %from, error = %e, "relay frame dropped")
            }
        }
        busy.lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&from);
    });
}

/// Turns a p2p event into a consensus input (None when there is nothing to feed).
fn peer_input(
    event: P2pEvent,
    member_of_peer: &std::collections::HashMap<libp2p::PeerId, usize>,
    p2p: &P2pHandle,
) -> Option<Input> {
    match event {
        P2pEvent::Message { from, bytes } => {
            let Some(&member) = member_of_peer.get(&from) else {
                tracing::warn!(target: "daemon", peer = %from, "message from a peer outside the federation dropped");
                return None;
            };
            match ConsensusMessage::decode(&bytes) {
                Ok(message) => Some(Input::Message {
                    from: member,
                    message,
                }),
                Err(e) => {
                    tracing::warn!(target: "daemon", peer = %from, member, error = %e, "undecodable message dropped");
                    None
                }
            }
        }
        P2pEvent::Blocks {
            from,
            start_height,
            blocks,
        } => {
            let &member = member_of_peer.get(&from)?;
            let mut decoded = Vec::with_capacity(blocks.len());
            for (i, raw) in blocks.iter().enumerate() {
                match elements::encode::deserialize::<elements::Block>(raw) {
                    Ok(b) => decoded.push(b),
                    Err(e) => {
                        tracing::warn!(target: "daemon", peer = %from, height = start_height as usize + i, error = %e,
                            "peer served an undecodable block; disconnecting it");
                        p2p.disconnect(from);
                        break;
                    }
                }
            }
            Some(Input::BlocksFetched {
                from: member,
                blocks: decoded,
            })
        }
        P2pEvent::PeerConnected(peer) => {
            tracing::info!(target: "daemon", %peer, member = ?member_of_peer.get(&peer), "peer connected");
            None
        }
        P2pEvent::PeerDisconnected(peer) => {
            tracing::info!(target: "daemon", %peer, member = ?member_of_peer.get(&peer), "peer disconnected");
            None
        }
    }
}

/// Executes effects against the IO parts.
struct Executor<'a> {
    p2p: &'a P2pHandle,
    signer: &'a SignerThread,
    store: &'a crate::storage::BlockStore,
    chain_state: &'a Arc<ChainState>,
    member_peers: &'a [libp2p::PeerId],
    timing: &'a mut TimingLog,
    next_wake_ms: u64,
    /// Final blocks waiting to be written in one batch.
    pending_blocks: Vec<elements::Block>,
}

impl Executor<'_> {
    /// The earliest wake-up asked for since the last call (u64::MAX if none).
    fn take_wake_ms(&mut self) -> u64 {
        std::mem::replace(&mut self.next_wake_ms, u64::MAX)
    }

    fn flush_blocks(&mut self) -> anyhow::Result<()> {
        let blocks = std::mem::take(&mut self.pending_blocks);
        let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
            return Ok(());
        };
        let (from, to) = (first.header.height, last.header.height);
        // A final block that breaks the ledger rules means this member disagrees with m others (a bug here or a
        // dishonest majority): it stops with the block named instead of storing it.
        tokio::task::block_in_place(|| self.chain_state.check_final_blocks(&blocks)).with_context(
            || format!("final blocks {from}..={to} fail this member's ledger rules"),
        )?;
        tokio::task::block_in_place(|| self.store.put_blocks(&blocks))
            .with_context(|| format!("storing final blocks {from}..={to}"))?;
        tokio::task::block_in_place(|| self.chain_state.blocks_stored(&blocks));
        for block in &blocks {
            self.timing.record(
                "stored",
                block.header.height,
                &block.block_hash(),
                serde_json::json!({}),
            );
        }
        Ok(())
    }

    fn execute(&mut self, effects: Vec<Effect>) -> anyhow::Result<()> {
        let mut effects = effects.into_iter().peekable();
        while let Some(effect) = effects.next() {
            match effect {
                Effect::Broadcast(message) => {
                    if let ConsensusMessage::Proposal(p) = &message {
                        self.timing.record("proposed", p.height, &p.block.block_hash(),
                            serde_json::json!({ "round": p.round, "valid_round": p.valid_round, "proposed_at_ms": p.proposed_at_ms }));
                    }
                    self.p2p.broadcast(message.encode());
                }
                Effect::Persist(record) => {
                    // Our votes and lock must be durable before the messages that follow are sent.
                    let height = record.height;
                    tokio::task::block_in_place(|| {
                        self.store.put_consensus_record(&record.encode())
                    })
                    .with_context(|| format!("storing the consensus record at height {height}"))?;
                }
                Effect::SignBlock {
                    height,
                    block_hash,
                    certificate,
                } => {
                    let certificate = certificate.map(|c| c.encode());
                    if !self.signer.request(SignRequest {
                        height,
                        block_hash,
                        certificate,
                    }) {
                        anyhow::bail!("the signer thread has stopped");
                    }
                }
                Effect::StoreBlock(block) => {
                    // Consecutive final blocks (catch-up) are written in one synced batch; all of them are durable
                    // before any later effect runs. A failure is fatal (the node restarts from what is on disk).
                    self.pending_blocks.push(block);
                    if !matches!(effects.peek(), Some(Effect::StoreBlock(_))) {
                        self.flush_blocks()?;
                    }
                }
                Effect::FetchBlocks {
                    from,
                    start_height,
                    count,
                } => {
                    if let Some(peer) = self.member_peers.get(from) {
                        tracing::info!(target: "daemon", member = from, start_height, count, "fetching blocks");
                        self.p2p.request_blocks(*peer, start_height, count);
                    }
                }
                Effect::WakeAt { at_ms } => self.next_wake_ms = self.next_wake_ms.min(at_ms),
                Effect::Report(event) => {
                    if let ConsensusEvent::Rejected { from, reason } = &event {
                        // A peer that served an invalid or conflicting final block is cut off; the next fetch
                        // asks another peer (the core forgot this one as "ahead").
                        let bad_blocks = matches!(
                            reason,
                            blocksigner::Rejection::InvalidFinalBlock { .. }
                                | blocksigner::Rejection::FetchedBlockGap { .. }
                                | blocksigner::Rejection::ConflictingBlock { .. }
                        );
                        if bad_blocks {
                            if let Some(peer) = self.member_peers.get(*from) {
                                tracing::warn!(target: "daemon", member = from, %reason,
                                    "peer served a bad final block; disconnecting it");
                                self.p2p.disconnect(*peer);
                            }
                        }
                    }
                    report(&event)
                }
            }
        }
        Ok(())
    }
}

fn report(event: &ConsensusEvent) {
    match event {
        ConsensusEvent::Finalized { .. } => {
            tracing::info!(target: "consensus", event = ?event, "block final")
        }
        ConsensusEvent::Rejected { .. } => {
            tracing::debug!(target: "consensus", event = ?event, "input rejected")
        }
        _ => tracing::debug!(target: "consensus", event = ?event),
    }
}

fn consensus_json(consensus: &Consensus, names: &[String]) -> serde_json::Value {
    let s = consensus.status();
    let name = |i: Option<usize>| i.and_then(|i| names.get(i)).cloned();
    serde_json::json!({
        "member": name(Some(s.member)),
        "tip_height": s.tip_height,
        "tip_hash": s.tip_hash.to_string(),
        "deciding_height": s.height,
        "round": s.round,
        "step": format!("{:?}", s.step).to_lowercase(),
        "proposer": name(Some(s.proposer)),
        "locked_on": s.locked.map(|(round, h)| serde_json::json!({ "round": round, "block": h.to_string() })),
        "decided": s.decided.map(|h| h.to_string()),
        "candidate_blocks": s.proposals,
        "best_prevote_count": s.best_prevote_count,
        "best_precommit_count": s.best_precommit_count,
        "best_signature_count": s.best_signature_count,
        "fetching_blocks": s.fetching,
    })
}

fn federation_info(
    config: &crate::config::FederationConfig,
    params: &chain::FederationParams,
    names: &[String],
    me: usize,
) -> serde_json::Value {
    let members: Vec<_> = params
        .sorted_keys()
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let m = config.member_by_name(&names[i]);
            serde_json::json!({
                "index": i,
                "name": names[i],
                "block_pubkey": key.to_string(),
                "peer_id": m.map(|m| m.peer_id.to_string()),
                "address": m.map(|m| m.address.to_string()),
            })
        })
        .collect();
    serde_json::json!({
        "chain": params.chain_name(),
        "config_hash": config.config_hash(),
        "genesis_hash": params.genesis_hash().to_string(),
        "threshold": params.threshold(),
        "members": members,
        "block_interval_ms": config.block_interval.as_millis() as u64,
        "signblockscript": hex::encode(params.signblockscript().as_bytes()),
        "witness_script": hex::encode(params.witness_script().as_bytes()),
        "self": { "index": me, "name": names[me] },
    })
}
