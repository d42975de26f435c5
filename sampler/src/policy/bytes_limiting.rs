//! `bytes_limiting`: keeps traces while a token bucket of bytes has room for their whole size.
//!
//! The bucket refills at `bytes_per_second` and holds `burst_capacity` bytes (twice
//! `bytes_per_second` if unset), as in the Collector. The size is [`TraceData::size_bytes`], the
//! OTLP protobuf size of the spans, which is what the Collector measures too.

use wbpf_config::BytesLimitingConfig;

use super::token_bucket::TokenBucket;
use super::{Decision, Policy};
use crate::TraceData;

#[derive(Debug)]
pub struct BytesLimiting {
    bucket: TokenBucket,
}

impl BytesLimiting {
    pub fn new(config: &BytesLimitingConfig) -> Self {
        Self {
            bucket: TokenBucket::with_burst(config.bytes_per_second, config.burst_capacity),
        }
    }
}

impl Policy for BytesLimiting {
    fn evaluate(&self, trace: &TraceData, now_ms: u64) -> Decision {
        if self.bucket.try_take(trace.size_bytes, now_ms) {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
}
