//! `and`: keeps a trace only if every sub-policy keeps it.
//!
//! As in the Collector, `NotSampled` or `InvertNotSampled` from any sub-policy makes the result
//! `NotSampled` (and stops evaluation); anything else, inverted-sampled included, passes.

use super::{Decision, Policy};
use crate::TraceData;

#[derive(Debug)]
pub struct And {
    subs: Vec<Box<dyn Policy>>,
}

impl And {
    pub fn new(subs: Vec<Box<dyn Policy>>) -> Self {
        Self { subs }
    }
}

impl Policy for And {
    fn evaluate(&self, trace: &TraceData, now_ms: u64) -> Decision {
        let refused = self.subs.iter().any(|sub| {
            matches!(
                sub.evaluate(trace, now_ms),
                Decision::NotSampled | Decision::InvertNotSampled
            )
        });
        if refused {
            Decision::NotSampled
        } else {
            Decision::Sampled
        }
    }
}
