//! Splitting an OTLP request into one group of spans per trace, with what the buffer needs
//! to know about each group.
//!
//! The grouping itself is [`wbpf_otlp::split`]; this adds, per trace, whether it carries a
//! trigger or satisfies a trigger rule, its root and `tracestate`, and the notes lateral and
//! context-free triggers match against, and encodes the group as the blob the buffer stores.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use prost::Message;
use wbpf_otlp::split::{by_trace, merge, TraceSpans};
use wbpf_sampler::tail::is_root;
use wbpf_sampler::tail::Projection;
use wbpf_sampler::{is_trigger, Decision, TailSampler, TraceData};
use wbpf_storage::TraceId;

use crate::correlate::{observe, Activity, Orphan};
use crate::lateral::{touches, Touch};

/// The spans of one trace from one request.
#[derive(Debug)]
pub struct TraceGroup {
    pub trace: TraceId,
    /// Encoded `ExportTraceServiceRequest` holding only this trace's spans.
    pub blob: Vec<u8>,
    pub spans: u64,
    /// Whether any of the spans is a trigger.
    pub has_trigger: bool,
    /// The W3C `tracestate` of the first span, for head sampling.
    pub trace_state: String,
    /// Whether a root span (no parent) is among the spans.
    pub has_root: bool,
    /// Uses of shared resources, for lateral triggers.
    pub touches: Vec<Touch>,
    /// Time ranges of the spans per process and thread, for triggers without context.
    pub activities: Vec<Activity>,
    /// Triggers without trace context among the spans.
    pub orphans: Vec<Orphan>,
    /// What the tail policies read of these spans, when tail mode decides the trace.
    pub summary: Option<TraceData>,
}

/// What a split needs besides the request.
#[derive(Debug, Default, Clone)]
pub struct SplitOptions {
    /// Policies that trigger a trace as a trigger span would.
    pub rules: Option<Arc<TailSampler>>,
    /// Span attribute keys naming shared resources (`sampling.lateral.attributes`).
    pub lateral_keys: Arc<[String]>,
    /// Whether to note processes and threads of spans (`sampling.correlation.enabled`).
    pub correlate: bool,
    /// Most bytes the groups may take, resources repeated per trace.
    pub max_bytes: usize,
    /// Tail mode: what its policies read, kept per group so the decision needs no read back.
    pub projection: Option<Arc<Projection>>,
}

/// Splits a validated request. Spans with ids of the wrong length were rejected earlier.
///
/// A group whose spans satisfy one of the `rules` counts as triggered, as if it carried a
/// trigger span (so an ERROR status can keep its trace the moment it arrives).
///
/// Each group repeats its resource and scope, so a request of many traces sharing one large
/// resource grows when split. The split stops with an error once the groups exceed
/// `max_bytes`, before they can exhaust memory.
pub fn split(
    request: ExportTraceServiceRequest,
    options: &SplitOptions,
    now_ms: u64,
) -> Result<Vec<TraceGroup>, String> {
    let traces = by_trace(request, options.max_bytes).map_err(|err| err.to_string())?;
    let groups = traces
        .into_iter()
        .map(|trace| group(trace, options, now_ms));
    Ok(groups.collect())
}

/// Notes what the buffer needs about one trace's spans and encodes them.
fn group(trace: TraceSpans, options: &SplitOptions, now_ms: u64) -> TraceGroup {
    let mut spans = trace.pieces.iter().flat_map(|piece| &piece.scope_spans);
    let first = spans.find_map(|scope| scope.spans.first());
    let mut group = TraceGroup {
        trace: TraceId(trace.trace_id),
        blob: Vec::new(),
        spans: trace.spans,
        has_trigger: false,
        trace_state: first
            .map(|span| span.trace_state.clone())
            .unwrap_or_default(),
        has_root: false,
        touches: Vec::new(),
        activities: Vec::new(),
        orphans: Vec::new(),
        summary: None,
    };

    for piece in &trace.pieces {
        let resource = piece.resource.as_ref();
        let resource = resource.map_or(&[][..], |r| r.attributes.as_slice());
        for span in piece.scope_spans.iter().flat_map(|scope| &scope.spans) {
            let trigger = is_trigger(span);
            group.has_trigger |= trigger;
            group.has_root |= is_root(span);
            if !options.lateral_keys.is_empty() {
                touches(&options.lateral_keys, span, trigger, &mut group.touches);
            }
            if options.correlate {
                let (activities, orphans) = (&mut group.activities, &mut group.orphans);
                observe(resource, span, trigger, activities, orphans);
            }
        }
    }

    let rules = options.rules.as_deref();
    group.has_trigger =
        group.has_trigger || matches_rules(rules, group.trace, &trace.pieces, now_ms);
    if let Some(projection) = &options.projection {
        let summary = projection.trace_data(trace.trace_id, &trace.pieces, now_ms);
        group.summary = Some(summary);
    }
    group.blob = merge(trace.pieces).encode_to_vec();
    group
}

/// Whether the spans of one group satisfy a trigger rule.
fn matches_rules(
    rules: Option<&TailSampler>,
    trace: TraceId,
    resource_spans: &[ResourceSpans],
    now_ms: u64,
) -> bool {
    let Some(rules) = rules else {
        return false;
    };
    let data = TraceData::from_resource_spans(trace.0, resource_spans, now_ms);
    rules.evaluate(&data, now_ms).decision == Decision::Sampled
}

/// Decodes a stored blob, an `ExportTraceServiceRequest` of one trace, into its resource
/// spans.
pub fn decode_blob(blob: &[u8]) -> Result<Vec<ResourceSpans>, prost::DecodeError> {
    ExportTraceServiceRequest::decode(blob).map(|r| r.resource_spans)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span};

    use super::*;

    fn span(trace: u8, id: u8) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: format!("s{id}"),
            ..Default::default()
        }
    }

    #[test]
    fn groups_spans_by_trace_keeping_resource_and_scope() {
        let resource = Resource {
            dropped_attributes_count: 7,
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource.clone()),
                scope_spans: vec![ScopeSpans {
                    spans: vec![span(1, 1), span(2, 2), span(1, 3)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };

        let options = SplitOptions {
            max_bytes: usize::MAX,
            ..SplitOptions::default()
        };
        let mut groups = split(request, &options, 0).unwrap();
        groups.sort_by_key(|g| g.trace);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].spans, 2);

        let decoded = decode_blob(&groups[0].blob).unwrap();
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].resource, Some(resource));
        let names: Vec<_> = decoded[0].scope_spans[0]
            .spans
            .iter()
            .map(|s| &s.name)
            .collect();
        assert_eq!(names, ["s1", "s3"]);
    }
}
