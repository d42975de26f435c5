//! Turning queued span groups into export requests of bounded size.
//!
//! Downstreams refuse messages over a limit (4 MiB by default in gRPC), so requests are cut at
//! `max_bytes` of protobuf. A single trace larger than that is split between its spans; a
//! single span larger than that goes alone, as it cannot be split.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;

/// Bytes a message of `len` bytes adds to its parent: field tag, length prefix, body.
fn field_len(len: usize) -> usize {
    1 + prost::length_delimiter_len(len) + len
}

/// Packs `resource_spans` into requests of at most `max_bytes` each (except a lone span that
/// is larger by itself), keeping their order.
pub fn into_requests(
    resource_spans: Vec<ResourceSpans>,
    max_bytes: usize,
) -> Vec<ExportTraceServiceRequest> {
    let mut requests = Vec::new();
    let mut current = Vec::new();
    let mut current_bytes = 0;
    for resource in resource_spans {
        for piece in split_resource(resource, max_bytes) {
            let len = field_len(piece.encoded_len());
            if current_bytes + len > max_bytes && !current.is_empty() {
                requests.push(ExportTraceServiceRequest {
                    resource_spans: std::mem::take(&mut current),
                });
                current_bytes = 0;
            }
            current_bytes += len;
            current.push(piece);
        }
    }
    if !current.is_empty() {
        requests.push(ExportTraceServiceRequest {
            resource_spans: current,
        });
    }
    requests
}

/// Splits one resource's spans into pieces that each fit `max_bytes`, repeating the resource
/// and scope in every piece.
fn split_resource(resource: ResourceSpans, max_bytes: usize) -> Vec<ResourceSpans> {
    if field_len(resource.encoded_len()) <= max_bytes {
        return vec![resource];
    }
    let empty = ResourceSpans {
        scope_spans: Vec::new(),
        ..resource.clone()
    };
    let base = field_len(empty.encoded_len());

    let mut pieces = Vec::new();
    let mut piece = empty.clone();
    let mut piece_bytes = base;
    for scope in resource.scope_spans {
        let empty_scope = ScopeSpans {
            spans: Vec::new(),
            ..scope.clone()
        };
        let scope_base = field_len(empty_scope.encoded_len());
        let mut open: Option<(ScopeSpans, usize)> = None;
        for span in scope.spans {
            let len = field_len(span.encoded_len());
            let open_bytes = open.as_ref().map_or(scope_base, |(_, bytes)| *bytes);
            if piece_bytes + open_bytes + len > max_bytes && (open.is_some() || piece_bytes > base)
            {
                if let Some((scope, _)) = open.take() {
                    piece.scope_spans.push(scope);
                }
                pieces.push(std::mem::replace(&mut piece, empty.clone()));
                piece_bytes = base;
            }
            let (scope, bytes) = open.get_or_insert_with(|| (empty_scope.clone(), scope_base));
            scope.spans.push(span);
            *bytes += len;
        }
        if let Some((scope, bytes)) = open {
            piece.scope_spans.push(scope);
            piece_bytes += bytes;
        }
    }
    if !piece.scope_spans.is_empty() {
        pieces.push(piece);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::Span;

    use super::*;

    fn resource(name: &str, spans: usize, payload: usize) -> ResourceSpans {
        let spans = (0..spans)
            .map(|i| Span {
                trace_id: vec![1; 16],
                span_id: vec![i as u8 + 1; 8],
                name: "x".repeat(payload),
                ..Default::default()
            })
            .collect();
        ResourceSpans {
            resource: Some(Resource {
                dropped_attributes_count: name.len() as u32,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: name.to_owned(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn span_names(requests: &[ExportTraceServiceRequest]) -> usize {
        requests
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }

    #[test]
    fn small_groups_share_one_request() {
        let requests = into_requests(vec![resource("a", 2, 10), resource("b", 2, 10)], 4096);
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].resource_spans.len(), 2);
    }

    #[test]
    fn requests_stay_under_the_limit_and_keep_every_span() {
        let groups = (0..50)
            .map(|i| resource(&format!("r{i}"), 5, 200))
            .collect();
        let requests = into_requests(groups, 4096);
        assert!(requests.len() > 1);
        for request in &requests {
            assert!(request.encoded_len() <= 4096, "{}", request.encoded_len());
        }
        assert_eq!(span_names(&requests), 250);
    }

    #[test]
    fn one_trace_larger_than_the_limit_is_split_between_its_spans() {
        let requests = into_requests(vec![resource("big", 100, 500)], 8 * 1024);
        assert!(requests.len() >= 6, "{} requests", requests.len());
        for request in &requests {
            assert!(
                request.encoded_len() <= 8 * 1024,
                "{}",
                request.encoded_len()
            );
            let scope = &request.resource_spans[0].scope_spans[0];
            assert_eq!(scope.scope.as_ref().unwrap().name, "big");
        }
        assert_eq!(span_names(&requests), 100);
    }

    #[test]
    fn a_span_larger_than_the_limit_goes_alone() {
        let requests = into_requests(vec![resource("huge", 3, 10_000)], 4096);
        assert_eq!(requests.len(), 3);
        assert_eq!(span_names(&requests), 3);
    }
}
