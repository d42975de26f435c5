//! The sampling mode: when the buffer decides a trace, and how.

use wbpf_config::{SamplingConfig, SamplingMode, StorageConfig};
use wbpf_sampler::{Decision, HeadSampler, Retention, TailOutcome, TailSampler, TraceData};

use crate::GatewayError;

/// One of the three modes of `sampling.mode`.
pub enum Mode {
    /// Buffer every span; keep what a trigger names; delete the rest after the retention window.
    Triggered { retention: Retention },
    /// Decide each trace on arrival from its trace id; nothing is buffered.
    Head(HeadSampler),
    /// Buffer for `decision_wait`, then evaluate the Collector's policies.
    Tail { sampler: TailSampler, wait_ms: u64 },
}

impl Mode {
    /// The mode that exports: `sampling.mode`.
    pub fn from_config(
        sampling: &SamplingConfig,
        storage: &StorageConfig,
    ) -> Result<Self, GatewayError> {
        Self::build(sampling.mode, sampling, storage)
    }

    /// `mode` with its settings from `sampling` and `storage`; also used for shadow modes.
    pub fn build(
        mode: SamplingMode,
        sampling: &SamplingConfig,
        storage: &StorageConfig,
    ) -> Result<Self, GatewayError> {
        let invalid = |message: String| GatewayError::Sampler(message);
        match mode {
            SamplingMode::Triggered => Ok(Mode::Triggered {
                retention: Retention::new(storage.retention),
            }),
            SamplingMode::Head => {
                let config = sampling
                    .head
                    .as_ref()
                    .ok_or_else(|| invalid("mode head needs sampling.head".to_owned()))?;
                let sampler =
                    HeadSampler::from_config(config).map_err(|e| invalid(e.to_string()))?;
                Ok(Mode::Head(sampler))
            }
            SamplingMode::Tail => {
                let config = sampling
                    .tail_sampling
                    .as_ref()
                    .ok_or_else(|| invalid("mode tail needs sampling.tail_sampling".to_owned()))?;
                let sampler = TailSampler::build(config).map_err(|e| invalid(e.to_string()))?;
                let wait_ms = u64::try_from(config.decision_wait.as_millis()).unwrap_or(u64::MAX);
                Ok(Mode::Tail { sampler, wait_ms })
            }
        }
    }

    /// Traces first seen before this instant are due: expired (triggered) or to be evaluated
    /// (tail). `None` in head mode, which buffers nothing.
    pub fn due_before(&self, now_ms: u64) -> Option<u64> {
        match self {
            Mode::Triggered { retention } => Some(retention.cutoff(now_ms)),
            Mode::Head(_) => None,
            Mode::Tail { wait_ms, .. } => Some(now_ms.saturating_sub(*wait_ms)),
        }
    }

    /// How long decisions are remembered for late spans.
    pub fn decision_ttl_ms(&self) -> u64 {
        match self {
            Mode::Triggered { retention } => retention.decision_ttl_ms(),
            // Head decisions follow from the trace id alone; remembering them for a minute
            // only keeps a trace sent in several requests from being counted several times.
            Mode::Head(_) => 60_000,
            Mode::Tail { wait_ms, .. } => wait_ms.saturating_mul(10).max(60_000),
        }
    }

    /// When a trace must be decided at the latest, counted from its first span: the
    /// retention window (triggered), `decision_wait` (tail), at once (head).
    pub fn horizon_ms(&self) -> u64 {
        match self {
            Mode::Triggered { retention } => retention.window_ms(),
            Mode::Head(_) => 0,
            Mode::Tail { wait_ms, .. } => *wait_ms,
        }
    }
}

/// Evaluates the tail policies on a buffered trace. A trace over `maximum_trace_size_bytes`
/// is not sampled without evaluating policies (`None`), as in the Collector.
pub fn evaluate_tail(sampler: &TailSampler, data: &TraceData, now_ms: u64) -> Option<TailOutcome> {
    if sampler.exceeds_max_size(data) {
        return None;
    }
    let clock = std::time::Instant::now();
    let nanos = || u64::try_from(clock.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Some(sampler.evaluate_timed(data, now_ms, nanos))
}

/// Whether an evaluation keeps its trace.
pub fn keeps(outcome: Option<&TailOutcome>) -> bool {
    outcome.is_some_and(|outcome| outcome.decision == Decision::Sampled)
}
