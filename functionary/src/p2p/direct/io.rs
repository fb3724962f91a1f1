//! The tasks that drive broadcast streams: one writer per peer (drains the peer's [`OutboundQueue`] onto our
//! outbound stream) and one reader per inbound stream (length-prefixed frames, size-capped, delivered straight to
//! the daemon's event channel with the sender taken from the authenticated connection).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::swarm::{ConnectionId, Stream};
use libp2p::PeerId;
use tokio::sync::mpsc;

use super::queue::{OutboundQueue, LENGTH_PREFIX_BYTES};
use crate::p2p::handle::{lock, Shared};
use crate::p2p::{unix_ms, P2pEvent};

/// Delivers events to the daemon: never blocks; a full channel drops the event and counts it.
#[derive(Clone)]
pub(crate) struct EventSink {
    pub(crate) events: mpsc::Sender<P2pEvent>,
    pub(crate) shared: Arc<Mutex<Shared>>,
}

impl EventSink {
    /// Sends `event` to the daemon, or drops and counts it when the channel is full.
    pub(crate) fn emit(&self, event: P2pEvent) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                lock(&self.shared).counters.events_dropped += 1;
                tracing::warn!(target: "p2p", ?event, "p2p event channel full; event dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::trace!(target: "p2p", "p2p event receiver dropped");
            }
        }
    }
}

/// A writer task that stopped: the event loop then opens another stream if the peer is still connected.
#[derive(Debug)]
pub(crate) struct WriterStopped {
    pub(crate) peer: PeerId,
    /// Identifies the writer, so a report from a writer that was already replaced is ignored.
    pub(crate) writer_id: u64,
    pub(crate) error: String,
}

/// Reports from the stream tasks to the swarm task.
#[derive(Debug)]
pub(crate) enum LinkNotice {
    /// A writer stopped (its stream failed).
    WriterStopped(WriterStopped),
    /// Time to open a new outbound stream on `connection` if the peer still has no writer.
    Reopen {
        peer: PeerId,
        connection: ConnectionId,
    },
}

/// Writes the peer's queued broadcasts onto `stream` in batches until a write fails. Reports the failure on
/// `notices`.
pub(crate) async fn run_writer(
    peer: PeerId,
    writer_id: u64,
    mut stream: Stream,
    queue: Arc<OutboundQueue>,
    notices: mpsc::Sender<LinkNotice>,
) {
    let mut buf = Vec::with_capacity(super::queue::MAX_BATCH_BYTES + LENGTH_PREFIX_BYTES);
    let error = loop {
        buf.clear();
        let frames = queue.take_batch(&mut buf).await;
        let written = async {
            stream.write_all(&buf).await?;
            stream.flush().await
        }
        .await;
        if let Err(e) = written {
            break e.to_string();
        }
        tracing::trace!(target: "p2p", %peer, frames, bytes = buf.len(), "broadcast frames written");
    };
    tracing::debug!(target: "p2p", %peer, %error, "broadcast stream closed");
    let _ = notices
        .send(LinkNotice::WriterStopped(WriterStopped {
            peer,
            writer_id,
            error,
        }))
        .await;
}

/// Why a reader stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadEnd {
    /// The peer closed the stream between frames (or the connection ended).
    Closed,
    /// The frame header announced more than the cap.
    Oversized { len: usize },
    /// The stream ended inside a frame or failed.
    Broken(String),
}

/// Reads one length-prefixed frame of at most `max` payload bytes. `Ok(None)` on a clean end before a frame.
pub(crate) async fn read_frame<R: futures::AsyncRead + Unpin>(
    io: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, ReadEnd> {
    let mut header = [0u8; LENGTH_PREFIX_BYTES];
    let mut got = 0;
    while got < header.len() {
        let Some(rest) = header.get_mut(got..) else {
            break;
        };
        match io.read(rest).await {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ReadEnd::Broken("stream ended inside a frame header".into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return match e.kind() {
                    std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                        if got == 0 =>
                    {
                        Ok(None)
                    }
                    _ => Err(ReadEnd::Broken(e.to_string())),
                }
            }
        }
    }
    let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    if len > max {
        return Err(ReadEnd::Oversized { len });
    }
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload)
        .await
        .map_err(|e| ReadEnd::Broken(format!("frame of {len} bytes cut short: {e}")))?;
    Ok(Some(payload))
}

/// Reads broadcasts from one inbound stream of `peer` and delivers them until the stream ends or misbehaves. An
/// oversized or broken frame resets the stream (it is dropped without a close) and is counted as rejected.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_reader(
    peer: PeerId,
    connection: ConnectionId,
    peer_index: usize,
    mut stream: Stream,
    max_message_bytes: usize,
    sink: EventSink,
    readers: Arc<AtomicUsize>,
) {
    let end = loop {
        match read_frame(&mut stream, max_message_bytes).await {
            Ok(Some(bytes)) => {
                let now = unix_ms();
                if let Some(status) = lock(&sink.shared).peers.get_mut(peer_index) {
                    status.messages_in += 1;
                    status.last_message_ms = Some(now);
                }
                sink.emit(P2pEvent::Message { from: peer, bytes });
            }
            Ok(None) => break ReadEnd::Closed,
            Err(end) => break end,
        }
    };
    readers.fetch_sub(1, Ordering::Relaxed);
    match end {
        ReadEnd::Closed => {
            tracing::debug!(target: "p2p", %peer, %connection, "inbound broadcast stream ended")
        }
        ReadEnd::Oversized { len } => {
            lock(&sink.shared).counters.rejected_messages += 1;
            tracing::warn!(target: "p2p", %peer, %connection, len, max = max_message_bytes,
                "peer sent a broadcast frame above max_message_bytes; resetting its stream");
        }
        ReadEnd::Broken(error) => {
            lock(&sink.shared).counters.rejected_messages += 1;
            tracing::warn!(target: "p2p", %peer, %connection, %error, "broken broadcast frame; resetting the stream");
        }
    }
    // Dropping the stream without closing it resets it (yamux RST).
    drop(stream);
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    async fn frames(bytes: Vec<u8>, max: usize) -> (Vec<Vec<u8>>, Option<ReadEnd>) {
        let mut io = Cursor::new(bytes);
        let mut out = Vec::new();
        loop {
            match read_frame(&mut io, max).await {
                Ok(Some(f)) => out.push(f),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[tokio::test]
    async fn frames_round_trip_and_hostile_input_is_an_error() {
        let (got, end) = frames(vec![0, 0, 0, 2, 7, 8, 0, 0, 0, 0, 0, 0, 0, 1, 9], 10).await;
        assert_eq!(got, vec![vec![7, 8], vec![], vec![9]]);
        assert_eq!(end, None);

        let (got, end) = frames(vec![0, 0, 0, 11], 10).await;
        assert!(got.is_empty());
        assert_eq!(end, Some(ReadEnd::Oversized { len: 11 }));

        let (_, end) = frames(u32::MAX.to_be_bytes().to_vec(), 10).await;
        assert!(matches!(end, Some(ReadEnd::Oversized { .. })));

        let (got, end) = frames(vec![0, 0, 0, 1, 5, 0, 0], 10).await;
        assert_eq!(got, vec![vec![5]]);
        assert!(matches!(end, Some(ReadEnd::Broken(_))), "{end:?}");

        let (_, end) = frames(vec![0, 0, 0, 5, 1, 2], 10).await;
        assert!(matches!(end, Some(ReadEnd::Broken(_))), "{end:?}");
    }

    #[tokio::test]
    async fn random_bytes_never_panic_the_frame_reader() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..2000 {
            let len = rng.gen_range(0..64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let _ = frames(bytes, 32).await;
        }
    }
}
