//! `trace_state`: keeps a trace if any span's W3C `tracestate` has `key` set to one of `values`.
//!
//! A span whose `tracestate` is not valid W3C syntax does not match, as in the Collector. Values
//! that could not fit in a tracestate member (empty, or `key=value` of 256 bytes or more) are
//! ignored.

use std::collections::HashSet;

use wbpf_config::TraceStateConfig;

use super::attributes::any_span;
use super::{Decision, Policy};
use crate::head::tracestate;
use crate::TraceData;

#[derive(Debug)]
pub struct TraceState {
    key: String,
    values: HashSet<String>,
}

impl TraceState {
    pub fn new(config: &TraceStateConfig) -> Self {
        let fits = |value: &&String| !value.is_empty() && config.key.len() + value.len() < 256;
        Self {
            key: config.key.clone(),
            values: config.values.iter().filter(fits).cloned().collect(),
        }
    }
}

impl Policy for TraceState {
    fn evaluate(&self, trace: &TraceData, _now_ms: u64) -> Decision {
        any_span(trace, |span| {
            let Some(members) = tracestate::parse(&span.trace_state) else {
                return false;
            };
            let value = members
                .iter()
                .find(|(key, _)| *key == self.key)
                .map(|(_, v)| *v);
            self.values.contains(value.unwrap_or_default())
        })
    }
}
