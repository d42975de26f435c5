//! What each compared mode kept, as shared counters and as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use wbpf_config::SamplingMode;

/// Counters of one mode.
#[derive(Debug, Default)]
pub struct ModeCounters {
    pub traces_decided: AtomicU64,
    pub traces_kept: AtomicU64,
    pub spans_kept: AtomicU64,
    pub bytes_kept: AtomicU64,
    pub edge_cases_captured: AtomicU64,
}

/// Counters of the whole comparison, shared by the shadow thread and `/metrics`.
#[derive(Debug)]
pub struct CompareCounters {
    /// The compared modes, in the order of `sampling.compare`.
    pub modes: Vec<(SamplingMode, ModeCounters)>,
    /// The mode that really exports (`sampling.mode`).
    pub exporting: SamplingMode,
    pub traces_seen: AtomicU64,
    pub spans_seen: AtomicU64,
    pub bytes_seen: AtomicU64,
    /// Traces marked as edge cases, counted when their comparison is complete.
    pub edge_cases_seen: AtomicU64,
    /// Events the shadow could not take because it fell behind; the figures undercount then.
    pub events_dropped: AtomicU64,
}

/// One mode's figures at a point in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeFigures {
    pub mode: String,
    /// Whether this mode is the one exporting.
    pub exporting: bool,
    pub traces_decided: u64,
    pub traces_kept: u64,
    pub spans_kept: u64,
    /// Protobuf bytes of the kept spans: what this mode would export.
    pub bytes_kept: u64,
    /// Edge cases whose trace this mode kept.
    pub edge_cases_captured: u64,
}

/// The whole comparison at a point in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompareSnapshot {
    pub traces_seen: u64,
    pub spans_seen: u64,
    pub bytes_seen: u64,
    pub edge_cases_seen: u64,
    pub events_dropped: u64,
    pub modes: Vec<ModeFigures>,
}

impl CompareCounters {
    pub fn new(modes: &[SamplingMode], exporting: SamplingMode) -> Self {
        Self {
            modes: modes
                .iter()
                .map(|m| (*m, ModeCounters::default()))
                .collect(),
            exporting,
            traces_seen: AtomicU64::new(0),
            spans_seen: AtomicU64::new(0),
            bytes_seen: AtomicU64::new(0),
            edge_cases_seen: AtomicU64::new(0),
            events_dropped: AtomicU64::new(0),
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CompareSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CompareSnapshot {
            traces_seen: get(&self.traces_seen),
            spans_seen: get(&self.spans_seen),
            bytes_seen: get(&self.bytes_seen),
            edge_cases_seen: get(&self.edge_cases_seen),
            events_dropped: get(&self.events_dropped),
            modes: self
                .modes
                .iter()
                .map(|(mode, c)| ModeFigures {
                    mode: mode.as_str().to_owned(),
                    exporting: *mode == self.exporting,
                    traces_decided: get(&c.traces_decided),
                    traces_kept: get(&c.traces_kept),
                    spans_kept: get(&c.spans_kept),
                    bytes_kept: get(&c.bytes_kept),
                    edge_cases_captured: get(&c.edge_cases_captured),
                })
                .collect(),
        }
    }
}
