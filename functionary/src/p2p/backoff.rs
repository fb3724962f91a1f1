//! Exponential redial backoff: a delay that doubles after every failure up to a cap and resets on success.

use std::time::Duration;

/// The redial delay schedule of one peer.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A schedule starting at `initial` and doubling up to `max`.
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.min(max);
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next attempt; the one after it will be twice as long (capped).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// Back to the initial delay (after a successful connection).
    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }

    /// Jump to the longest delay (after we dropped the peer on purpose).
    pub(crate) fn saturate(&mut self) {
        self.next = self.max;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let delays: Vec<u128> = (0..9).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(
            delays,
            vec![100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]
        );
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        b.saturate();
        assert_eq!(b.next_delay(), Duration::from_secs(5));
    }
}
