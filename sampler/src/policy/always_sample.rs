//! `always_sample`: keeps every trace.

use super::{Decision, Policy};
use crate::TraceData;

#[derive(Debug)]
pub struct AlwaysSample;

impl Policy for AlwaysSample {
    fn evaluate(&self, _trace: &TraceData, _now_ms: u64) -> Decision {
        Decision::Sampled
    }
}
