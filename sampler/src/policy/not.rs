//! `not`: the opposite of one sub-policy.
//!
//! Only `Sampled` and `NotSampled` are flipped; inverted and dropped verdicts pass through
//! unchanged, as in the Collector.

use super::{Decision, Policy};
use crate::TraceData;

#[derive(Debug)]
pub struct Not {
    sub: Box<dyn Policy>,
}

impl Not {
    pub fn new(sub: Box<dyn Policy>) -> Self {
        Self { sub }
    }
}

impl Policy for Not {
    fn evaluate(&self, trace: &TraceData, now_ms: u64) -> Decision {
        match self.sub.evaluate(trace, now_ms) {
            Decision::Sampled => Decision::NotSampled,
            Decision::NotSampled => Decision::Sampled,
            other => other,
        }
    }
}
