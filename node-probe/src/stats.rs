//! The probe's own counters: what it saw, sent and lost, and how long detectors took to load
//! and unload.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::detector::TYPES;

/// A snapshot of the probe's counters since it started.
///
/// Load and unload times are per eBPF object: one object serves every detector of a type, so
/// loading it is each of those detectors' load time. A load runs from the start of the
/// verifier to the attached programs and a running reader; an unload from the detach to the
/// drained ring buffer and stopped background tasks.
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
    /// Objects loaded, at start and by reloads (including those that failed).
    pub object_loads: u64,
    pub load_ns_last: u64,
    pub load_ns_max: u64,
    pub load_ns_total: u64,
    /// Objects unloaded, by reloads and at shutdown.
    pub object_unloads: u64,
    pub unload_ns_last: u64,
    pub unload_ns_max: u64,
    pub unload_ns_total: u64,
}

/// Counters updated by the reader task and the exporter, shared with `Probe::stats`.
#[derive(Debug, Default)]
pub struct Counters {
    pub events_seen: AtomicU64,
    pub triggers_sent: AtomicU64,
    pub triggers_failed: AtomicU64,
    pub triggers_without_context: AtomicU64,
    /// Last total read from the kernel's per-CPU counters, kept for when a read fails.
    pub events_lost: AtomicU64,
    /// Last total read from the kernel's per-CPU counters.
    pub untracked: AtomicU64,
    /// What unloaded objects had counted, read once they were detached.
    pub retired_lost: AtomicU64,
    pub retired_untracked: AtomicU64,
    loads: Timings,
    unloads: Timings,
    /// The same, per detector type, in the order of `detector::TYPES`.
    per_type: [PerType; TYPES.len()],
}

/// Count, last, maximum and total of one kind of duration.
#[derive(Debug, Default)]
struct Timings {
    count: AtomicU64,
    last_ns: AtomicU64,
    max_ns: AtomicU64,
    total_ns: AtomicU64,
}

impl Timings {
    fn record(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.last_ns.store(ns, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
        self.total_ns.fetch_add(ns, Ordering::Relaxed);
    }

    fn snapshot(&self) -> TimingStats {
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
        TimingStats {
            count: load(&self.count),
            last_ns: load(&self.last_ns),
            max_ns: load(&self.max_ns),
            total_ns: load(&self.total_ns),
        }
    }
}

/// Count, last, maximum and total nanoseconds of one kind of operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimingStats {
    pub count: u64,
    pub last_ns: u64,
    pub max_ns: u64,
    pub total_ns: u64,
}

/// Object loads and unloads of one detector type since the probe started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeTimings {
    pub detector_type: &'static str,
    pub loads: TimingStats,
    pub unloads: TimingStats,
}

/// Loads and unloads of one detector type.
#[derive(Debug, Default)]
struct PerType {
    loads: Timings,
    unloads: Timings,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn record_load(&self, detector_type: &str, took: Duration) {
        self.loads.record(took);
        if let Some(per_type) = self.of_type(detector_type) {
            per_type.loads.record(took);
        }
    }

    pub fn record_unload(&self, detector_type: &str, took: Duration) {
        self.unloads.record(took);
        if let Some(per_type) = self.of_type(detector_type) {
            per_type.unloads.record(took);
        }
    }

    /// Loads and unloads per detector type, every type listed.
    pub fn per_type(&self) -> Vec<TypeTimings> {
        TYPES
            .iter()
            .zip(&self.per_type)
            .map(|(&detector_type, per_type)| TypeTimings {
                detector_type,
                loads: per_type.loads.snapshot(),
                unloads: per_type.unloads.snapshot(),
            })
            .collect()
    }

    fn of_type(&self, detector_type: &str) -> Option<&PerType> {
        let at = TYPES.iter().position(|&known| known == detector_type)?;
        self.per_type.get(at)
    }

    pub fn snapshot(&self) -> ProbeStats {
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
        ProbeStats {
            events_seen: load(&self.events_seen),
            triggers_sent: load(&self.triggers_sent),
            triggers_failed: load(&self.triggers_failed),
            events_lost: load(&self.events_lost),
            triggers_without_context: load(&self.triggers_without_context),
            untracked: load(&self.untracked),
            object_loads: load(&self.loads.count),
            load_ns_last: load(&self.loads.last_ns),
            load_ns_max: load(&self.loads.max_ns),
            load_ns_total: load(&self.loads.total_ns),
            object_unloads: load(&self.unloads.count),
            unload_ns_last: load(&self.unloads.last_ns),
            unload_ns_max: load(&self.unloads.max_ns),
            unload_ns_total: load(&self.unloads.total_ns),
        }
    }
}
