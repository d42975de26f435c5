//! The retention window of untriggered traces.

use std::time::Duration;

/// How long an untriggered trace waits for a trigger, counted from its first span.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    window_ms: u64,
}

impl Retention {
    pub fn new(window: Duration) -> Self {
        Self {
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The window's length in milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Traces first seen before this instant have aged out at `now_ms`.
    pub fn cutoff(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.window_ms)
    }

    /// Whether a trace first seen at `first_seen_ms` has aged out at `now_ms`.
    pub fn expired(&self, first_seen_ms: u64, now_ms: u64) -> bool {
        first_seen_ms < self.cutoff(now_ms)
    }

    /// Decisions are remembered for late spans this long after they were made.
    pub fn decision_ttl_ms(&self) -> u64 {
        self.window_ms.saturating_mul(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_expires_only_after_the_whole_window() {
        let retention = Retention::new(Duration::from_secs(10));
        assert!(!retention.expired(1_000, 11_000));
        assert!(retention.expired(1_000, 11_001));
        assert!(
            !retention.expired(5_000, 1_000),
            "no underflow for clocks going back"
        );
    }
}
