//! A group of mutations committed atomically.

use crate::{Decision, TraceId};

/// Mutations gathered from one or more requests, committed as one RocksDB write batch.
#[derive(Debug, Default)]
pub struct WriteSet {
    pub(crate) spans: Vec<(TraceId, Vec<u8>)>,
    pub(crate) new_traces: Vec<(TraceId, u64)>,
    pub(crate) decisions: Vec<(TraceId, Decision)>,
    pub(crate) bytes: usize,
}

impl WriteSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Buffers an encoded group of spans of `trace`.
    pub fn put_spans(&mut self, trace: TraceId, blob: Vec<u8>) {
        self.bytes += blob.len();
        self.spans.push((trace, blob));
    }

    /// Registers a trace seen for the first time, for expiry after the retention window.
    pub fn new_trace(&mut self, trace: TraceId, first_seen_ms: u64) {
        self.new_traces.push((trace, first_seen_ms));
    }

    /// Records a sampling decision, so late spans and restarts follow it.
    pub fn decide(&mut self, trace: TraceId, decision: Decision) {
        self.decisions.push((trace, decision));
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.new_traces.is_empty() && self.decisions.is_empty()
    }

    /// Bytes of span data in this set.
    pub fn span_bytes(&self) -> usize {
        self.bytes
    }
}
