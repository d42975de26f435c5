//! Exponential backoff with jitter between attempts at a failed export.

use std::time::Duration;

use wbpf_config::RetryConfig;

/// The waits between attempts: doubling from the initial interval up to the maximum, each one
/// drawn uniformly between half and all of its nominal value, so gateways that lost the same
/// downstream do not retry in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(config: &RetryConfig) -> Self {
        Self {
            next: config.initial_interval,
            max: config.max_interval,
        }
    }

    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let nominal = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = nominal / 2;
        let jitter_ns = fastrand::u64(0..=half.as_nanos().try_into().unwrap_or(u64::MAX));
        half + Duration::from_nanos(jitter_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_maximum_with_jitter_in_the_upper_half() {
        let config = RetryConfig {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_millis(800),
        };
        let mut backoff = Backoff::new(&config);
        for nominal_ms in [100u64, 200, 400, 800, 800, 800] {
            let wait = backoff.next_wait();
            let nominal = Duration::from_millis(nominal_ms);
            assert!(
                wait >= nominal / 2 && wait <= nominal,
                "{wait:?} for {nominal:?}"
            );
        }
    }
}
