//! The gateway's own counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by the receivers, the buffer and the exporters.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub requests_rejected: AtomicU64,
    pub requests_refused_overload: AtomicU64,
    pub spans_received: AtomicU64,
    pub bytes_received: AtomicU64,
    pub traces_received: AtomicU64,
    pub triggers: AtomicU64,
    pub lateral_triggers: AtomicU64,
    pub correlated_triggers: AtomicU64,
    pub traces_released: AtomicU64,
    pub late_spans_forwarded: AtomicU64,
    pub traces_expired: AtomicU64,
    pub spans_exported: AtomicU64,
    pub bytes_exported: AtomicU64,
    pub export_failures: AtomicU64,
    pub export_retries: AtomicU64,
    pub export_queue: AtomicU64,
    pub traces_buffered: AtomicU64,
    pub traces_sampled_out: AtomicU64,
    pub late_spans_dropped: AtomicU64,
    pub traces_evicted: AtomicU64,
    pub spans_over_trace_cap: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> GatewayStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        GatewayStats {
            requests: get(&self.requests),
            requests_rejected: get(&self.requests_rejected),
            requests_refused_overload: get(&self.requests_refused_overload),
            spans_received: get(&self.spans_received),
            bytes_received: get(&self.bytes_received),
            traces_received: get(&self.traces_received),
            triggers: get(&self.triggers),
            lateral_triggers: get(&self.lateral_triggers),
            correlated_triggers: get(&self.correlated_triggers),
            traces_released: get(&self.traces_released),
            late_spans_forwarded: get(&self.late_spans_forwarded),
            traces_expired: get(&self.traces_expired),
            spans_exported: get(&self.spans_exported),
            bytes_exported: get(&self.bytes_exported),
            export_failures: get(&self.export_failures),
            export_retries: get(&self.export_retries),
            export_queue: get(&self.export_queue),
            traces_buffered: get(&self.traces_buffered),
            traces_sampled_out: get(&self.traces_sampled_out),
            late_spans_dropped: get(&self.late_spans_dropped),
            traces_evicted: get(&self.traces_evicted),
            spans_over_trace_cap: get(&self.spans_over_trace_cap),
        }
    }
}

/// A point-in-time copy of the gateway's counters.
///
/// Bytes are protobuf-encoded OTLP sizes, so received and exported figures compare directly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GatewayStats {
    pub requests: u64,
    pub requests_rejected: u64,
    /// Requests refused because too many request bytes were waiting to be committed.
    pub requests_refused_overload: u64,
    pub spans_received: u64,
    pub bytes_received: u64,
    /// Distinct traces seen for the first time.
    pub traces_received: u64,
    /// Trigger spans received.
    pub triggers: u64,
    /// Traces kept because they shared a resource with a triggered trace.
    pub lateral_triggers: u64,
    /// Traces kept because a trigger without context matched their process, thread and time.
    pub correlated_triggers: u64,
    pub traces_released: u64,
    pub late_spans_forwarded: u64,
    pub traces_expired: u64,
    pub spans_exported: u64,
    pub bytes_exported: u64,
    /// Export requests an exporter refused for good (not retryable).
    pub export_failures: u64,
    /// Export attempts that failed and were tried again.
    pub export_retries: u64,
    /// Span groups waiting in the export queue on disk.
    pub export_queue: u64,
    pub traces_buffered: u64,
    /// Traces decided not sampled (head or tail mode).
    pub traces_sampled_out: u64,
    /// Spans of sampled-out traces that arrived after the decision.
    pub late_spans_dropped: u64,
    /// Undecided traces evicted, whole, because the buffer was over `storage.max_bytes`.
    pub traces_evicted: u64,
    /// Spans dropped because their trace was at `storage.max_trace_bytes`.
    pub spans_over_trace_cap: u64,
}
