//! Splitting an OTLP request into one group of spans per trace.
//!
//! Each group keeps the resource and scope of its spans, so a trace read back from storage is
//! a list of self-contained `ResourceSpans` that export unchanged.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;
use wbpf_sampler::tail::is_root;
use wbpf_sampler::{is_trigger, Decision, TailSampler, TraceData};
use wbpf_storage::TraceId;

use crate::correlate::{observe, Activity, Orphan};
use crate::lateral::{touches, Touch};

/// The spans of one trace from one request.
#[derive(Debug)]
pub struct TraceGroup {
    pub trace: TraceId,
    /// Encoded `ResourceSpans` holding only this trace's spans.
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
}

/// Per-trace accumulation while splitting.
#[derive(Default)]
struct Pending {
    pieces: Vec<ResourceSpans>,
    spans: u64,
    has_trigger: bool,
    trace_state: String,
    has_root: bool,
    touches: Vec<Touch>,
    activities: Vec<Activity>,
    orphans: Vec<Orphan>,
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
    let max_bytes = options.max_bytes;
    let mut total = 0usize;
    let mut groups: HashMap<TraceId, Pending> = HashMap::new();

    for resource_spans in request.resource_spans {
        for scope_spans in resource_spans.scope_spans {
            let mut per_trace: HashMap<TraceId, Vec<_>> = HashMap::new();
            for span in scope_spans.spans {
                let Some(trace) = TraceId::from_slice(&span.trace_id) else {
                    continue;
                };
                per_trace.entry(trace).or_default().push(span);
            }
            for (trace, spans) in per_trace {
                let entry = groups.entry(trace).or_default();
                if let (0, Some(first)) = (entry.spans, spans.first()) {
                    entry.trace_state = first.trace_state.clone();
                }
                entry.spans += spans.len() as u64;
                for span in &spans {
                    let trigger = is_trigger(span);
                    entry.has_trigger |= trigger;
                    entry.has_root |= is_root(span);
                    if !options.lateral_keys.is_empty() {
                        touches(&options.lateral_keys, span, trigger, &mut entry.touches);
                    }
                    if options.correlate {
                        let resource = resource_spans.resource.as_ref();
                        let resource = resource.map_or(&[][..], |r| r.attributes.as_slice());
                        let (activities, orphans) = (&mut entry.activities, &mut entry.orphans);
                        observe(resource, span, trigger, activities, orphans);
                    }
                }
                let piece = ResourceSpans {
                    resource: resource_spans.resource.clone(),
                    scope_spans: vec![ScopeSpans {
                        scope: scope_spans.scope.clone(),
                        spans,
                        schema_url: scope_spans.schema_url.clone(),
                    }],
                    schema_url: resource_spans.schema_url.clone(),
                };
                total = total.saturating_add(piece.encoded_len());
                if total > max_bytes {
                    return Err(format!(
                        "request exceeds {max_bytes} bytes once split per trace (each trace \
                         repeats its resource and scope); send fewer traces per request"
                    ));
                }
                entry.pieces.push(piece);
            }
        }
    }

    let rules = options.rules.as_deref();
    Ok(groups
        .into_iter()
        .map(|(trace, pending)| TraceGroup {
            trace,
            has_trigger: pending.has_trigger
                || matches_rules(rules, trace, &pending.pieces, now_ms),
            blob: merge(pending.pieces).encode_to_vec(),
            spans: pending.spans,
            trace_state: pending.trace_state,
            has_root: pending.has_root,
            touches: pending.touches,
            activities: pending.activities,
            orphans: pending.orphans,
        })
        .collect())
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

/// Concatenates the pieces of one trace into one `ResourceSpans` per distinct resource.
fn merge(pieces: Vec<ResourceSpans>) -> ResourceSpansList {
    let mut out: Vec<ResourceSpans> = Vec::new();
    for piece in pieces {
        match out
            .iter_mut()
            .find(|r| r.resource == piece.resource && r.schema_url == piece.schema_url)
        {
            Some(existing) => existing.scope_spans.extend(piece.scope_spans),
            None => out.push(piece),
        }
    }
    ResourceSpansList {
        resource_spans: out,
    }
}

/// The stored form of a trace group: an `ExportTraceServiceRequest` on the wire, so a stored
/// blob is itself a valid OTLP message.
pub type ResourceSpansList = ExportTraceServiceRequest;

/// Decodes a stored blob back into its resource spans.
pub fn decode_blob(blob: &[u8]) -> Result<Vec<ResourceSpans>, prost::DecodeError> {
    ExportTraceServiceRequest::decode(blob).map(|r| r.resource_spans)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::Span;

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
