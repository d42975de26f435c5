//! `drop`: vetoes the trace (`Dropped`) if every sub-policy matches it.
//!
//! Same evaluation as `and`, with `Dropped` instead of `Sampled` when all sub-policies pass. The
//! tail sampler evaluates drop policies before the others, as the Collector does.

use super::{Decision, Policy};
use crate::TraceData;

#[derive(Debug)]
pub struct Drop {
    subs: Vec<Box<dyn Policy>>,
}

impl Drop {
    pub fn new(subs: Vec<Box<dyn Policy>>) -> Self {
        Self { subs }
    }
}

impl Policy for Drop {
    fn evaluate(&self, trace: &TraceData, now_ms: u64) -> Decision {
        let spared = self.subs.iter().any(|sub| {
            matches!(
                sub.evaluate(trace, now_ms),
                Decision::NotSampled | Decision::InvertNotSampled
            )
        });
        if spared {
            Decision::NotSampled
        } else {
            Decision::Dropped
        }
    }
}
