//! `latency`: keeps traces that took long, measured from the earliest span start to the latest
//! span end, whatever happened in between.
//!
//! Like the Collector, the check runs after each span with the running minimum and maximum, so
//! with an upper bound a trace is kept if it was inside `(threshold_ms, upper_threshold_ms]` at
//! any point while its spans were read in arrival order. Without an upper bound the running
//! duration only grows and the check is simply `duration > threshold_ms`: strictly, as in the
//! Collector since v0.157 (earlier releases also kept a trace of exactly `threshold_ms`).

use wbpf_config::LatencyConfig;

use super::attributes::any_span;
use super::{Decision, Policy};
use crate::TraceData;

#[derive(Debug)]
pub struct Latency {
    threshold_ms: i64,
    /// 0 = no upper bound.
    upper_threshold_ms: i64,
}

impl Latency {
    pub fn new(config: &LatencyConfig) -> Self {
        Self {
            threshold_ms: config.threshold_ms,
            upper_threshold_ms: config.upper_threshold_ms,
        }
    }

    fn matches(&self, duration_ms: i64) -> bool {
        if self.upper_threshold_ms == 0 {
            duration_ms > self.threshold_ms
        } else {
            self.threshold_ms < duration_ms && duration_ms <= self.upper_threshold_ms
        }
    }
}

impl Policy for Latency {
    fn evaluate(&self, trace: &TraceData, _now_ms: u64) -> Decision {
        // 0 means "not seen yet", as in the Collector; a span starting at the epoch is not real.
        let (mut min_start, mut max_end) = (0u64, 0u64);
        any_span(trace, |span| {
            if min_start == 0 || span.start_time_unix_nano < min_start {
                min_start = span.start_time_unix_nano;
            }
            if max_end == 0 || span.end_time_unix_nano > max_end {
                max_end = span.end_time_unix_nano;
            }
            // Go's Duration.Milliseconds truncates toward zero; so does integer division.
            let nanos = i128::from(max_end) - i128::from(min_start);
            let duration_ms = i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX);
            self.matches(duration_ms)
        })
    }
}
