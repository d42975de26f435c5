//! The probe's own counters: what it saw, sent and lost.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the probe's counters since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeStats {
    /// Events read from the ring buffer (each one becomes a trigger span).
    pub events_seen: u64,
    /// Trigger spans the gateway accepted.
    pub triggers_sent: u64,
    /// Trigger spans whose export failed; they are lost.
    pub triggers_failed: u64,
    /// Events the kernel dropped because the ring buffer was full.
    pub events_lost: u64,
    /// Events from threads that had published no trace context (sent in a fresh trace).
    pub triggers_without_context: u64,
    /// Things the kernel could not track because a bounded map was full (pool objects).
    pub untracked: u64,
}

/// Counters updated by the reader task and the exporter, shared with `Probe::stats`.
#[derive(Debug, Default)]
pub struct Counters {
    pub events_seen: AtomicU64,
    pub triggers_sent: AtomicU64,
    pub triggers_failed: AtomicU64,
    pub triggers_without_context: AtomicU64,
    /// Last value read from the kernel's per-CPU counter, kept for when a read fails.
    pub events_lost: AtomicU64,
    /// Last value read from the kernel's per-CPU counter.
    pub untracked: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ProbeStats {
        ProbeStats {
            events_seen: self.events_seen.load(Ordering::Relaxed),
            triggers_sent: self.triggers_sent.load(Ordering::Relaxed),
            triggers_failed: self.triggers_failed.load(Ordering::Relaxed),
            events_lost: self.events_lost.load(Ordering::Relaxed),
            triggers_without_context: self.triggers_without_context.load(Ordering::Relaxed),
            untracked: self.untracked.load(Ordering::Relaxed),
        }
    }
}
