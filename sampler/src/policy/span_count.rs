//! `span_count`: keeps traces with `min_spans..=max_spans` spans; `max_spans: 0` has no maximum.

use wbpf_config::SpanCountConfig;

use super::{Decision, Policy};
use crate::TraceData;

#[derive(Debug)]
pub struct SpanCount {
    min: u64,
    /// `None` when `max_spans` is 0.
    max: Option<u64>,
}

impl SpanCount {
    pub fn new(config: &SpanCountConfig) -> Self {
        let min = u64::try_from(config.min_spans).unwrap_or(0);
        let max = u64::try_from(config.max_spans).ok().filter(|max| *max != 0);
        Self { min, max }
    }
}

impl Policy for SpanCount {
    fn evaluate(&self, trace: &TraceData, _now_ms: u64) -> Decision {
        let count = trace.span_count;
        if count >= self.min && self.max.is_none_or(|max| count <= max) {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
}
