//! Warnings about what clients do, at most one per interval, counting those left out: a client
//! sending bad requests in a loop cannot flood the log.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::now_ms;

/// One kind of warning's budget: one per `interval_ms`.
#[derive(Debug)]
pub struct Throttle {
    interval_ms: u64,
    next_log_ms: AtomicU64,
    unlogged: AtomicU64,
}

impl Throttle {
    pub const fn new(interval_ms: u64) -> Self {
        Self {
            interval_ms,
            next_log_ms: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
        }
    }

    /// `Some(left_out)` when this occurrence is to be logged, with how many were not logged
    /// since the last one; `None` (and it is counted) otherwise.
    pub fn admit(&self) -> Option<u64> {
        let now = now_ms();
        let due = self.next_log_ms.load(Ordering::Relaxed);
        let mine = now >= due
            && self
                .next_log_ms
                .compare_exchange(
                    due,
                    now + self.interval_ms,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok();
        if mine {
            Some(self.unlogged.swap(0, Ordering::Relaxed))
        } else {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_interval_and_the_next_says_how_many_were_left_out() {
        let throttle = Throttle::new(60_000);
        assert_eq!(throttle.admit(), Some(0));
        assert_eq!(throttle.admit(), None);
        assert_eq!(throttle.admit(), None);
        // Due again (as if the interval had passed): the two left out are reported.
        throttle.next_log_ms.store(0, Ordering::Relaxed);
        assert_eq!(throttle.admit(), Some(2));
    }
}
