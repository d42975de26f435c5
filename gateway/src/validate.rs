//! Validation of incoming OTLP trace requests.
//!
//! A request is rejected as a whole when a span has an invalid id: such a span can never be
//! assembled into a trace, and OTLP asks for 400 / INVALID_ARGUMENT, which clients do not retry.
//! The message names the first offending span by its position in the request.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// Checks every span's ids; returns a message naming the first invalid one.
pub fn validate(request: &ExportTraceServiceRequest) -> Result<(), String> {
    for (r, resource_spans) in request.resource_spans.iter().enumerate() {
        for (s, scope_spans) in resource_spans.scope_spans.iter().enumerate() {
            for (i, span) in scope_spans.spans.iter().enumerate() {
                let at = || format!("resourceSpans[{r}].scopeSpans[{s}].spans[{i}]");
                check_id(&span.trace_id, 16, "traceId").map_err(|m| format!("{}.{m}", at()))?;
                check_id(&span.span_id, 8, "spanId").map_err(|m| format!("{}.{m}", at()))?;
                // Empty and all-zero parent ids both mark a root span.
                let parent = &span.parent_span_id;
                if !parent.is_empty() && parent.iter().any(|b| *b != 0) {
                    check_id(parent, 8, "parentSpanId").map_err(|m| format!("{}.{m}", at()))?;
                }
            }
        }
    }
    Ok(())
}

fn check_id(id: &[u8], len: usize, field: &str) -> Result<(), String> {
    if id.len() != len {
        return Err(format!(
            "{field}: must be {len} bytes ({} hex characters), got {} bytes",
            len * 2,
            id.len()
        ));
    }
    if id.iter().all(|b| *b == 0) {
        return Err(format!("{field}: an all-zero id is invalid"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    fn request(span: Span) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn span() -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            ..Default::default()
        }
    }

    #[test]
    fn accepts_roots_with_empty_parent() {
        assert_eq!(validate(&request(span())), Ok(()));
    }

    #[test]
    fn rejects_zero_short_and_bad_parent_ids_naming_the_field() {
        let zero = Span {
            trace_id: vec![0; 16],
            ..span()
        };
        let message = validate(&request(zero)).unwrap_err();
        assert!(
            message.contains("spans[0].traceId: an all-zero"),
            "{message}"
        );

        let short = Span {
            span_id: vec![2; 4],
            ..span()
        };
        assert!(validate(&request(short))
            .unwrap_err()
            .contains("spanId: must be 8 bytes"));

        let parent = Span {
            parent_span_id: vec![1; 4],
            ..span()
        };
        assert!(validate(&request(parent))
            .unwrap_err()
            .contains("parentSpanId"));
    }

    #[test]
    fn an_all_zero_parent_id_marks_a_root() {
        let root = Span {
            parent_span_id: vec![0; 8],
            ..span()
        };
        assert_eq!(validate(&request(root)), Ok(()));
    }
}
