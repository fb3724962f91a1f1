//! Catch-up bookkeeping: the one outstanding block fetch (R14) and the buffer of next-height messages (R16).

use std::collections::BTreeMap;

use crate::message::ConsensusMessage;
use crate::rules::{FETCH_TIMEOUT_INTERVALS, MAX_FUTURE_MESSAGES_PER_MEMBER};

/// Rate limiter for [`crate::Effect::FetchBlocks`]: at most one outstanding fetch.
#[derive(Debug, Default)]
pub(crate) struct FetchTracker {
    /// When the outstanding fetch was sent (our clock, ms), and to whom.
    outstanding: Option<(u64, usize)>,
    /// The highest tip height a peer told us about, and that peer.
    best_peer: Option<(u32, usize)>,
}

impl FetchTracker {
    /// Remembers that `peer` is at least at `height`.
    pub(crate) fn note_peer_height(&mut self, peer: usize, height: u32) {
        if self.best_peer.is_none_or(|(best, _)| height > best) {
            self.best_peer = Some((height, peer));
        }
    }

    /// The best known peer height above `tip_height`, if any.
    pub(crate) fn ahead_of(&self, tip_height: u32) -> Option<(u32, usize)> {
        self.best_peer.filter(|(height, _)| *height > tip_height)
    }

    /// Whether a new fetch may be sent now. A fetch that went unanswered for [`FETCH_TIMEOUT_INTERVALS`] slots
    /// is abandoned and its peer forgotten as "ahead" (it may be gone, or stalling us on purpose), so the next
    /// `Status` from another peer picks who is asked next.
    pub(crate) fn may_fetch(&mut self, now_ms: u64, interval_ms: u64) -> bool {
        match self.outstanding {
            None => true,
            Some((sent_at, peer)) => {
                let expired = now_ms
                    >= sent_at
                        .saturating_add(interval_ms.max(1).saturating_mul(FETCH_TIMEOUT_INTERVALS));
                if expired {
                    self.outstanding = None;
                    self.forget_peer(peer);
                }
                expired
            }
        }
    }

    /// Records a fetch sent to `peer` at `now_ms`.
    pub(crate) fn sent(&mut self, now_ms: u64, peer: usize) {
        self.outstanding = Some((now_ms, peer));
    }

    /// An answer arrived: another fetch is allowed.
    pub(crate) fn answered(&mut self) {
        self.outstanding = None;
    }

    /// `peer` answered without progress: stop trusting its claimed height until it tells us again.
    pub(crate) fn forget_peer(&mut self, peer: usize) {
        if self.best_peer.is_some_and(|(_, best)| best == peer) {
            self.best_peer = None;
        }
    }

    /// Whether a fetch is outstanding.
    pub(crate) fn is_outstanding(&self) -> bool {
        self.outstanding.is_some()
    }
}

/// Messages for the height after the one being decided, replayed when the tip advances.
#[derive(Debug, Default)]
pub(crate) struct FutureBuffer {
    by_sender: BTreeMap<usize, Vec<ConsensusMessage>>,
}

impl FutureBuffer {
    /// Buffers `message` from `from`; false if that sender's buffer is full.
    pub(crate) fn push(&mut self, from: usize, message: ConsensusMessage) -> bool {
        let queue = self.by_sender.entry(from).or_default();
        if queue.contains(&message) {
            return true;
        }
        if queue.len() >= MAX_FUTURE_MESSAGES_PER_MEMBER {
            return false;
        }
        queue.push(message);
        true
    }

    /// Removes everything; returns the messages for `height` (older ones are dropped, newer ones kept).
    pub(crate) fn take_for_height(&mut self, height: u32) -> Vec<(usize, ConsensusMessage)> {
        let mut ready = Vec::new();
        for (from, queue) in self.by_sender.iter_mut() {
            let (now, later): (Vec<_>, Vec<_>) = std::mem::take(queue)
                .into_iter()
                .filter(|m| m.height() >= height)
                .partition(|m| m.height() == height);
            ready.extend(now.into_iter().map(|message| (*from, message)));
            *queue = later;
        }
        self.by_sender.retain(|_, queue| !queue.is_empty());
        ready
    }
}
