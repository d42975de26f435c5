//! A token bucket like Go's `golang.org/x/time/rate.Limiter`, as the Collector's `rate_limiting`
//! and `bytes_limiting` use it, on an injected clock.
//!
//! The bucket starts full, refills continuously at `rate` tokens per second up to `capacity`, and
//! `try_take(n)` either takes all `n` tokens or none. A request larger than the whole bucket is
//! refused without touching it, so one giant trace cannot drain the budget of the others.

use std::sync::{Mutex, PoisonError};

#[derive(Debug)]
pub struct TokenBucket {
    rate_per_ms: f64,
    capacity: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    /// When `tokens` was last brought up to date; `None` before the first request.
    updated_ms: Option<u64>,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens refilled at `rate_per_second`.
    pub fn new(rate_per_second: f64, capacity: f64) -> Self {
        Self {
            rate_per_ms: rate_per_second / 1000.0,
            capacity,
            state: Mutex::new(State {
                tokens: capacity,
                updated_ms: None,
            }),
        }
    }

    /// Takes `n` tokens at `now_ms` if the bucket holds that many; a clock going backwards
    /// refills nothing.
    /// A bucket refilled at `rate` per second holding `burst` tokens; a `burst` of 0 means
    /// twice the rate, as the Collector defaults it.
    pub fn with_burst(rate: i64, burst: i64) -> Self {
        let rate = rate.max(0) as f64;
        let capacity = if burst > 0 { burst as f64 } else { rate * 2.0 };
        Self::new(rate, capacity)
    }

    pub fn try_take(&self, n: u64, now_ms: u64) -> bool {
        let n = n as f64;
        if n > self.capacity {
            return false;
        }

        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed_ms = state
            .updated_ms
            .map_or(0, |last| now_ms.saturating_sub(last));
        let tokens = (state.tokens + elapsed_ms as f64 * self.rate_per_ms).min(self.capacity);
        state.updated_ms = Some(state.updated_ms.map_or(now_ms, |last| last.max(now_ms)));

        if tokens >= n {
            state.tokens = tokens - n;
            true
        } else {
            state.tokens = tokens;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_up_to_capacity() {
        let bucket = TokenBucket::new(10.0, 20.0);
        assert!(bucket.try_take(20, 0));
        assert!(!bucket.try_take(1, 0));
        assert!(bucket.try_take(5, 500), "half a second refills 5");
        assert!(!bucket.try_take(1, 500));
        assert!(
            bucket.try_take(20, 60_000),
            "a long pause refills only to capacity"
        );
        assert!(!bucket.try_take(1, 60_000));
    }

    #[test]
    fn oversized_requests_leave_the_bucket_alone() {
        let bucket = TokenBucket::new(10.0, 20.0);
        assert!(!bucket.try_take(21, 0));
        assert!(bucket.try_take(20, 0));
        assert!(!bucket.try_take(1, 0), "clock did not move");
        assert!(!bucket.try_take(5, 0));
    }
}
