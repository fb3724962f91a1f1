//! The bounded outbound queue of one peer: broadcasts wait here for that peer's writer task. When the peer is slow
//! and the queue is full, the OLDEST frames are dropped (and counted), so a broadcast never waits for a peer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// Frames (length prefix + payload) are taken from the queue in batches of about this many bytes, written with one
/// `write_all` and one flush.
pub(crate) const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Bytes of the big-endian length prefix in front of every frame.
pub(crate) const LENGTH_PREFIX_BYTES: usize = 4;

#[derive(Default)]
struct State {
    frames: VecDeque<Arc<[u8]>>,
    /// Sum of the payload lengths in `frames`.
    bytes: usize,
}

/// A per-peer FIFO of payloads bounded by a frame count and a byte count (a single payload above the byte bound is
/// still kept, alone). Shared between the swarm task (pushes) and the peer's writer task (takes).
pub(crate) struct OutboundQueue {
    state: Mutex<State>,
    ready: Notify,
    max_frames: usize,
    max_bytes: usize,
}

impl OutboundQueue {
    /// An empty queue holding at most `max_frames` frames and `max_bytes` payload bytes.
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> Self {
        OutboundQueue {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            max_frames: max_frames.max(1),
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a payload; returns how many of the oldest frames were dropped to make room.
    pub(crate) fn push(&self, payload: Arc<[u8]>) -> usize {
        let mut state = self.lock();
        state.bytes = state.bytes.saturating_add(payload.len());
        state.frames.push_back(payload);
        let mut dropped = 0;
        while state.frames.len() > 1
            && (state.frames.len() > self.max_frames || state.bytes > self.max_bytes)
        {
            if let Some(old) = state.frames.pop_front() {
                state.bytes = state.bytes.saturating_sub(old.len());
                dropped += 1;
            }
        }
        drop(state);
        self.ready.notify_one();
        dropped
    }

    /// Drops every queued frame (the peer is gone: a member not connected at send time misses the message).
    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.frames.clear();
        state.bytes = 0;
    }

    /// Frames waiting.
    pub(crate) fn len(&self) -> usize {
        self.lock().frames.len()
    }

    /// Waits until at least one frame is queued, then moves frames into `buf` as length-prefixed frames until about
    /// [`MAX_BATCH_BYTES`] are in it (at least one frame). Returns the number of frames taken.
    pub(crate) async fn take_batch(&self, buf: &mut Vec<u8>) -> usize {
        loop {
            // Register interest before checking, so a push between the check and the wait is not missed.
            let notified = self.ready.notified();
            let taken = self.try_take_batch(buf);
            if taken > 0 {
                return taken;
            }
            notified.await;
        }
    }

    /// Like [`OutboundQueue::take_batch`] but returns 0 at once when the queue is empty.
    pub(crate) fn try_take_batch(&self, buf: &mut Vec<u8>) -> usize {
        let mut state = self.lock();
        let mut taken = 0;
        while let Some(front) = state.frames.front() {
            if taken > 0 && buf.len().saturating_add(front.len()) > MAX_BATCH_BYTES {
                break;
            }
            let Some(frame) = state.frames.pop_front() else {
                break;
            };
            state.bytes = state.bytes.saturating_sub(frame.len());
            // Payloads are capped far below u32::MAX by the handle (MAX_MESSAGE_BYTES); saturate defensively.
            let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(&frame);
            taken += 1;
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(byte: u8, len: usize) -> Arc<[u8]> {
        vec![byte; len].into()
    }

    fn split_frames(mut buf: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
            out.push(buf[4..4 + len].to_vec());
            buf = &buf[4 + len..];
        }
        out
    }

    #[test]
    fn drops_the_oldest_when_full_by_count() {
        let q = OutboundQueue::new(3, 1 << 20);
        assert_eq!(q.push(frame(1, 10)), 0);
        assert_eq!(q.push(frame(2, 10)), 0);
        assert_eq!(q.push(frame(3, 10)), 0);
        assert_eq!(q.push(frame(4, 10)), 1);
        assert_eq!(q.push(frame(5, 10)), 1);
        let mut buf = Vec::new();
        assert_eq!(q.try_take_batch(&mut buf), 3);
        assert_eq!(
            split_frames(&buf),
            vec![vec![3; 10], vec![4; 10], vec![5; 10]]
        );
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn drops_the_oldest_when_full_by_bytes_but_keeps_one_large_frame() {
        let q = OutboundQueue::new(100, 25);
        q.push(frame(1, 10));
        q.push(frame(2, 10));
        assert_eq!(q.push(frame(3, 10)), 1, "30 bytes > 25: the oldest goes");
        assert_eq!(
            q.push(frame(4, 100)),
            2,
            "a frame above the byte cap stays, alone"
        );
        let mut buf = Vec::new();
        assert_eq!(q.try_take_batch(&mut buf), 1);
        assert_eq!(split_frames(&buf), vec![vec![4; 100]]);
    }

    #[test]
    fn batches_stop_near_the_batch_size_but_take_at_least_one() {
        let q = OutboundQueue::new(1000, usize::MAX);
        q.push(frame(1, MAX_BATCH_BYTES + 10));
        q.push(frame(2, 10));
        let mut buf = Vec::new();
        assert_eq!(q.try_take_batch(&mut buf), 1);
        buf.clear();
        assert_eq!(q.try_take_batch(&mut buf), 1);
        buf.clear();
        assert_eq!(q.try_take_batch(&mut buf), 0);
        for _ in 0..100 {
            q.push(frame(3, 1000));
        }
        let n = q.try_take_batch(&mut buf);
        assert!(n > 1 && n < 100 && buf.len() <= MAX_BATCH_BYTES, "{n}");
        q.clear();
        assert_eq!(q.len(), 0);
    }

    #[tokio::test]
    async fn take_batch_waits_for_a_push() {
        let q = Arc::new(OutboundQueue::new(10, 1000));
        let q2 = Arc::clone(&q);
        let taker = tokio::spawn(async move {
            let mut buf = Vec::new();
            let n = q2.take_batch(&mut buf).await;
            (n, buf)
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        q.push(frame(7, 3));
        let (n, buf) = taker.await.unwrap();
        assert_eq!((n, buf), (1, vec![0, 0, 0, 3, 7, 7, 7]));
    }
}
