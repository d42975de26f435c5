//! A group of mutations committed atomically.

use crate::{Decision, TraceId};

/// A trace leaving the buffer: its span keys are deleted one by one (they were just read, so
/// they are known), which avoids piling range tombstones into the memtable on the hot path.
#[derive(Debug)]
pub(crate) struct Removal {
    pub trace: TraceId,
    pub first_seen_ms: u64,
    /// `None`: delete the whole key range of the trace without reading it.
    pub seqs: Option<Vec<u64>>,
}

/// Mutations gathered from one or more requests, committed as one RocksDB write batch.
#[derive(Debug, Default)]
pub struct WriteSet {
    pub(crate) spans: Vec<(TraceId, Vec<u8>)>,
    pub(crate) new_traces: Vec<(TraceId, u64)>,
    pub(crate) decisions: Vec<(TraceId, Decision)>,
    pub(crate) outbox: Vec<Vec<u8>>,
    pub(crate) removals: Vec<Removal>,
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

    /// Queues an encoded group of spans for export; it stays in the outbox until
    /// [`SpanStore::ack_outbox`](crate::SpanStore::ack_outbox) removes it.
    pub fn enqueue(&mut self, blob: Vec<u8>) {
        self.outbox.push(blob);
    }

    /// Removes a trace whose span sequence numbers are known (from
    /// [`SpanStore::read_spans`](crate::SpanStore::read_spans) or
    /// [`SpanStore::commit`](crate::SpanStore::commit)): those keys and its expiry entry.
    pub fn remove_trace(&mut self, trace: TraceId, first_seen_ms: u64, seqs: Vec<u64>) {
        self.removals.push(Removal {
            trace,
            first_seen_ms,
            seqs: Some(seqs),
        });
    }

    /// Drops a trace without reading it: every key of the trace and its expiry entry.
    pub fn drop_trace(&mut self, trace: TraceId, first_seen_ms: u64) {
        self.removals.push(Removal {
            trace,
            first_seen_ms,
            seqs: None,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
            && self.new_traces.is_empty()
            && self.decisions.is_empty()
            && self.outbox.is_empty()
            && self.removals.is_empty()
    }

    /// How many span groups this set queues for export.
    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// Bytes of span data in this set.
    pub fn span_bytes(&self) -> usize {
        self.bytes
    }
}
