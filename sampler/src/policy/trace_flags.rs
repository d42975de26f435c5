//! `trace_flags`: keeps a trace if any span carries the W3C sampled flag.
//!
//! An upstream head sampler (or the application) already chose the trace; this policy honours it.

use super::attributes::any_span;
use super::{Decision, Policy};
use crate::TraceData;

/// The W3C trace-context `sampled` bit in the low byte of OTLP `Span.flags`.
const SAMPLED_FLAG: u32 = 0x01;

#[derive(Debug)]
pub struct TraceFlags;

impl Policy for TraceFlags {
    fn evaluate(&self, trace: &TraceData, _now_ms: u64) -> Decision {
        any_span(trace, |span| span.flags & SAMPLED_FLAG != 0)
    }
}
