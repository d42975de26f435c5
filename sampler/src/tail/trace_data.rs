//! The view of one buffered trace that tail policies evaluate.
//!
//! The gateway builds a [`TraceData`] per trace from what it has stored: the spans grouped by the
//! resource they came with (policies on attributes look at span and resource attributes alike),
//! plus the counters and arrival times the decision timing needs.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use prost::Message;

/// Spans of one trace that arrived with the same resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceBatch {
    /// The resource's attributes (`service.name` and friends).
    pub resource_attributes: Vec<KeyValue>,
    /// The spans, in arrival order.
    pub spans: Vec<SpanFacts>,
}

/// The fields of a span that tail policies read; names, ids, events and links are left out,
/// which makes a waiting trace a fraction of its OTLP size in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanFacts {
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    /// The status code; 0 (UNSET) for a span without a status, as pdata reads it.
    pub status_code: i32,
    pub flags: u32,
    pub trace_state: String,
    pub attributes: Vec<KeyValue>,
}

impl SpanFacts {
    /// The facts of `span` with its attributes replaced by `attributes`.
    pub fn with_attributes(span: &Span, attributes: Vec<KeyValue>) -> Self {
        Self {
            start_time_unix_nano: span.start_time_unix_nano,
            end_time_unix_nano: span.end_time_unix_nano,
            status_code: span.status.as_ref().map_or(0, |status| status.code),
            flags: span.flags,
            trace_state: span.trace_state.clone(),
            attributes,
        }
    }
}

impl From<Span> for SpanFacts {
    fn from(mut span: Span) -> Self {
        let attributes = std::mem::take(&mut span.attributes);
        Self::with_attributes(&span, attributes)
    }
}

/// Everything known about one trace when its decision is made.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceData {
    pub trace_id: [u8; 16],
    /// Spans grouped by resource, in arrival order.
    pub batches: Vec<ResourceBatch>,
    /// Spans received so far (what `rate_limiting`, `span_count` and `composite` count).
    pub span_count: u64,
    /// OTLP protobuf size of the spans and their resources (what `bytes_limiting` counts).
    pub size_bytes: u64,
    /// When the first span arrived, in milliseconds since the Unix epoch.
    pub first_arrival_ms: u64,
    /// When the root span arrived, if it has.
    pub root_arrival_ms: Option<u64>,
}

impl TraceData {
    /// An empty trace whose first span arrives at `now_ms`.
    pub fn new(trace_id: [u8; 16], now_ms: u64) -> Self {
        Self {
            trace_id,
            first_arrival_ms: now_ms,
            ..Self::default()
        }
    }

    /// A trace from OTLP resource spans, all taken as arrived at `arrival_ms`.
    pub fn from_resource_spans(
        trace_id: [u8; 16],
        resource_spans: &[ResourceSpans],
        arrival_ms: u64,
    ) -> Self {
        Self::keeping(trace_id, resource_spans, arrival_ms, <[KeyValue]>::to_vec)
    }

    /// A trace from OTLP resource spans that keeps of each attribute list what `keep` returns;
    /// counts, sizes and the root's arrival are those of the whole spans.
    pub(super) fn keeping(
        trace_id: [u8; 16],
        resource_spans: &[ResourceSpans],
        arrival_ms: u64,
        keep: impl Fn(&[KeyValue]) -> Vec<KeyValue>,
    ) -> Self {
        let mut data = Self::new(trace_id, arrival_ms);
        for rs in resource_spans {
            let resource = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes);
            let spans = rs.scope_spans.iter().flat_map(|s| &s.spans);
            data.add_spans(resource, spans, arrival_ms, &keep);
        }
        data
    }

    /// Adds spans that arrived together with their resource at `now_ms`, updating the counters.
    pub fn add_batch(&mut self, resource_attributes: Vec<KeyValue>, spans: Vec<Span>, now_ms: u64) {
        if self.root_arrival_ms.is_none() && spans.iter().any(is_root) {
            self.root_arrival_ms = Some(now_ms);
        }
        self.span_count += spans.len() as u64;
        self.size_bytes += encoded_size(&resource_attributes, &spans);
        self.batches.push(ResourceBatch {
            resource_attributes,
            spans: spans.into_iter().map(SpanFacts::from).collect(),
        });
    }

    /// Adds spans that arrived with `resource` at `now_ms`, keeping of each attribute list
    /// what `keep` returns.
    fn add_spans<'a>(
        &mut self,
        resource: &[KeyValue],
        spans: impl Iterator<Item = &'a Span> + Clone,
        now_ms: u64,
        keep: &impl Fn(&[KeyValue]) -> Vec<KeyValue>,
    ) {
        if self.root_arrival_ms.is_none() && spans.clone().any(is_root) {
            self.root_arrival_ms = Some(now_ms);
        }
        self.span_count += spans.clone().count() as u64;
        self.size_bytes += encoded_size(resource, spans.clone());
        let facts = |span: &Span| SpanFacts::with_attributes(span, keep(&span.attributes));
        self.batches.push(ResourceBatch {
            resource_attributes: keep(resource),
            spans: spans.map(facts).collect(),
        });
    }

    /// Whether a root span (one without a parent) has arrived.
    pub fn root_received(&self) -> bool {
        self.root_arrival_ms.is_some()
    }

    /// Every span with its resource's attributes, in arrival order.
    pub fn spans(&self) -> impl Iterator<Item = (&[KeyValue], &SpanFacts)> {
        self.batches.iter().flat_map(|batch| {
            let resource = batch.resource_attributes.as_slice();
            batch.spans.iter().map(move |span| (resource, span))
        })
    }
}

/// Whether `span` is a root: its parent span id is empty (`""` in JSON) or all zero bytes.
pub fn is_root(span: &Span) -> bool {
    span.parent_span_id.iter().all(|byte| *byte == 0)
}

/// The protobuf size these spans take in a `ResourceSpans`, framing included.
fn encoded_size<'a>(
    resource_attributes: &[KeyValue],
    spans: impl IntoIterator<Item = &'a Span>,
) -> u64 {
    let framed = |len: usize| 1 + prost::length_delimiter_len(len) + len;
    let resource: usize = resource_attributes
        .iter()
        .map(|kv| framed(kv.encoded_len()))
        .sum();
    let spans: usize = spans
        .into_iter()
        .map(|span| framed(span.encoded_len()))
        .sum();
    (framed(resource) + framed(spans)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(parent: &[u8]) -> Span {
        Span {
            parent_span_id: parent.to_vec(),
            name: "op".to_owned(),
            ..Span::default()
        }
    }

    #[test]
    fn empty_and_zero_parent_ids_are_roots() {
        assert!(is_root(&span(b"")));
        assert!(is_root(&span(&[0; 8])));
        assert!(!is_root(&span(&[0, 0, 0, 0, 0, 0, 0, 1])));
    }

    #[test]
    fn batches_update_counts_size_and_root_arrival() {
        let mut trace = TraceData::new([1; 16], 1_000);
        trace.add_batch(Vec::new(), vec![span(&[7; 8]), span(&[7; 8])], 1_100);
        assert!(!trace.root_received());
        trace.add_batch(Vec::new(), vec![span(b"")], 1_200);
        trace.add_batch(Vec::new(), vec![span(b"")], 1_300);

        assert_eq!(trace.span_count, 4);
        assert_eq!(trace.root_arrival_ms, Some(1_200));
        assert_eq!(trace.first_arrival_ms, 1_000);
        let spans = 2 * span(&[7; 8]).encoded_len() + 2 * span(b"").encoded_len();
        assert!(
            trace.size_bytes > spans as u64,
            "framing and resources add bytes"
        );
        assert_eq!(trace.spans().count(), 4);
    }
}
