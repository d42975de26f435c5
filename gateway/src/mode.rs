//! The sampling mode: when the buffer decides a trace, and how.

use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use wbpf_config::{SamplingConfig, SamplingMode, StorageConfig};
use wbpf_sampler::{Decision, HeadSampler, Retention, TailSampler, TraceData};
use wbpf_storage::TraceId;

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
    pub fn from_config(
        sampling: &SamplingConfig,
        storage: &StorageConfig,
    ) -> Result<Self, GatewayError> {
        let invalid = |message: String| GatewayError::Sampler(message);
        match sampling.mode {
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
            Mode::Head(_) => 0,
            Mode::Tail { wait_ms, .. } => wait_ms.saturating_mul(10).max(60_000),
        }
    }
}

/// Evaluates the tail policies on a buffered trace; returns whether to keep it.
///
/// Known gap: the root's arrival time is not stored, so `decision_wait_after_root_received`
/// is not applied; traces are decided `decision_wait` after their first span.
pub fn evaluate_tail(
    sampler: &TailSampler,
    trace: TraceId,
    first_seen_ms: u64,
    resource_spans: &[ResourceSpans],
    now_ms: u64,
) -> bool {
    let data = TraceData::from_resource_spans(trace.0, resource_spans, first_seen_ms);
    if sampler.exceeds_max_size(&data) {
        return false;
    }
    sampler.evaluate(&data, now_ms).decision == Decision::Sampled
}
