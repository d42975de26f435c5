//! Grouping the spans of a request by trace.
//!
//! Each trace's spans keep the resource and scope they arrived with, so the spans of one trace
//! form a list of self-contained `ResourceSpans` that can be stored and exported unchanged.
//! Repeating the resource and scope per trace makes a request of many traces grow when split;
//! the split is bounded so that this growth cannot exhaust memory.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;

use crate::OtlpError;

/// The spans of one trace from one request.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSpans {
    pub trace_id: [u8; 16],
    /// One piece per scope the trace had spans in, each with its resource and scope, in the
    /// order of the request.
    pub pieces: Vec<ResourceSpans>,
    /// Spans in all pieces.
    pub spans: u64,
}

/// Groups the spans of `request` by trace id, in the order traces first appear.
///
/// Spans whose trace id is not 16 bytes are skipped: validation rejects them first. Fails once
/// the pieces, each encoded with its resource and scope, exceed `max_bytes` in total.
pub fn by_trace(
    request: ExportTraceServiceRequest,
    max_bytes: usize,
) -> Result<Vec<TraceSpans>, OtlpError> {
    let mut total = 0usize;
    let mut traces: Vec<TraceSpans> = Vec::new();
    let mut index: HashMap<[u8; 16], usize> = HashMap::new();

    for resource_spans in request.resource_spans {
        for scope_spans in resource_spans.scope_spans {
            let mut per_trace: Vec<([u8; 16], Vec<_>)> = Vec::new();
            let mut in_scope: HashMap<[u8; 16], usize> = HashMap::new();
            for span in scope_spans.spans {
                let Ok(trace_id) = <[u8; 16]>::try_from(span.trace_id.as_slice()) else {
                    continue;
                };
                let at = *in_scope.entry(trace_id).or_insert_with(|| {
                    per_trace.push((trace_id, Vec::new()));
                    per_trace.len() - 1
                });
                per_trace[at].1.push(span);
            }

            for (trace_id, spans) in per_trace {
                let count = spans.len() as u64;
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
                    return Err(OtlpError::SplitTooLarge { max_bytes });
                }

                let at = *index.entry(trace_id).or_insert_with(|| {
                    traces.push(TraceSpans {
                        trace_id,
                        pieces: Vec::new(),
                        spans: 0,
                    });
                    traces.len() - 1
                });
                traces[at].pieces.push(piece);
                traces[at].spans += count;
            }
        }
    }
    Ok(traces)
}

/// Joins the pieces of one trace into one `ResourceSpans` per distinct resource, as a request:
/// the form in which a trace is stored and exported.
pub fn merge(pieces: Vec<ResourceSpans>) -> ExportTraceServiceRequest {
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
    ExportTraceServiceRequest {
        resource_spans: out,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
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

    fn scope(name: &str, spans: Vec<Span>) -> ScopeSpans {
        ScopeSpans {
            scope: Some(InstrumentationScope {
                name: name.into(),
                ..Default::default()
            }),
            spans,
            ..Default::default()
        }
    }

    fn names(request: &ExportTraceServiceRequest) -> Vec<(&str, Vec<&str>)> {
        let scopes = request.resource_spans.iter().flat_map(|r| &r.scope_spans);
        scopes
            .map(|s| {
                let scope = s.scope.as_ref().map_or("", |scope| scope.name.as_str());
                (scope, s.spans.iter().map(|s| s.name.as_str()).collect())
            })
            .collect()
    }

    #[test]
    fn groups_by_trace_in_order_keeping_resource_and_scope() {
        let resource = Resource {
            dropped_attributes_count: 7,
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource.clone()),
                scope_spans: vec![
                    scope("a", vec![span(2, 1), span(1, 2), span(2, 3)]),
                    scope("b", vec![span(1, 4)]),
                ],
                ..Default::default()
            }],
        };

        let traces = by_trace(request, usize::MAX).expect("within the limit");
        let ids: Vec<_> = traces.iter().map(|t| (t.trace_id[0], t.spans)).collect();
        assert_eq!(ids, [(2, 2), (1, 2)]);
        assert_eq!(traces[1].pieces.len(), 2);

        let merged = merge(traces[1].pieces.clone());
        assert_eq!(merged.resource_spans.len(), 1);
        assert_eq!(merged.resource_spans[0].resource, Some(resource));
        assert_eq!(names(&merged), [("a", vec!["s2"]), ("b", vec!["s4"])]);
    }

    #[test]
    fn skips_spans_without_a_16_byte_trace_id() {
        let short = Span {
            trace_id: vec![1; 4],
            ..span(0, 9)
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![scope("a", vec![short, span(3, 1)])],
                ..Default::default()
            }],
        };
        let traces = by_trace(request, usize::MAX).expect("within the limit");
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].trace_id, [3; 16]);
    }

    #[test]
    fn refuses_a_request_whose_split_exceeds_the_bound() {
        let resource = Resource {
            dropped_attributes_count: 1,
            ..Default::default()
        };
        let spans = (1..=50).map(|trace| span(trace, 1)).collect();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource),
                scope_spans: vec![scope("a", spans)],
                ..Default::default()
            }],
        };
        let max_bytes = request.encoded_len();
        let err = by_trace(request, max_bytes).expect_err("resource repeated per trace");
        assert_eq!(err, OtlpError::SplitTooLarge { max_bytes });
    }
}
