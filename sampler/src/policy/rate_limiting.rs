//! `rate_limiting`: keeps traces while a token bucket of spans has room for all their spans.
//!
//! The bucket refills at `spans_per_second` and holds `burst_capacity` spans (twice
//! `spans_per_second` if unset), as in the Collector since v0.153, so a trace with more spans than
//! `spans_per_second` still passes within the burst, and one larger than the burst never does.

use wbpf_config::RateLimitingConfig;

use super::token_bucket::TokenBucket;
use super::{Decision, Policy};
use crate::TraceData;

#[derive(Debug)]
pub struct RateLimiting {
    bucket: TokenBucket,
}

impl RateLimiting {
    pub fn new(config: &RateLimitingConfig) -> Self {
        Self {
            bucket: TokenBucket::with_burst(config.spans_per_second, config.burst_capacity),
        }
    }
}

impl Policy for RateLimiting {
    fn evaluate(&self, trace: &TraceData, now_ms: u64) -> Decision {
        if self.bucket.try_take(trace.span_count, now_ms) {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
}
