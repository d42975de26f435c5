//! A stop flag that SIGTERM and SIGINT set, polled by every loop of a service.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::error::DemoError;

/// Longest a loop sleeps before looking at the flag again.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// A flag that SIGTERM and SIGINT set. The handlers only set it: spans are flushed by the
    /// normal exit path once every loop has seen it.
    pub fn on_signals() -> Result<Self, DemoError> {
        let shutdown = Self::default();
        for signal in [SIGTERM, SIGINT] {
            signal_hook::flag::register(signal, Arc::clone(&shutdown.0))
                .map_err(|source| DemoError::Signal { signal, source })?;
        }
        Ok(shutdown)
    }

    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Sleeps until `deadline`; returns false, early, if shutdown is requested meanwhile.
    pub fn sleep_until(&self, deadline: Instant) -> bool {
        loop {
            if self.is_requested() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            std::thread::sleep((deadline - now).min(POLL));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_ends_early_on_request() {
        let shutdown = Shutdown::default();
        assert!(shutdown.sleep_until(Instant::now() + Duration::from_millis(5)));
        shutdown.request();
        let started = Instant::now();
        assert!(!shutdown.sleep_until(Instant::now() + Duration::from_secs(10)));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
