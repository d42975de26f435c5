//! Validation of incoming OTLP trace requests, span by span.
//!
//! A span that can never be assembled into a trace is removed from the request and the rest is
//! kept; the receivers then answer with OTLP `partial_success`, counting the rejected spans and
//! naming the first problem by its position in the request. Rejected are spans whose trace id
//! is not 16 bytes or is all zero, whose span id is not 8 bytes or is all zero, and whose parent
//! span id is neither empty or all zero (a root) nor 8 bytes.
//!
//! What [`crate::limits`] bounds is repaired instead, and reported as a warning in
//! `partial_success` with `rejected_spans: 0`, as OTLP allows.
//!
//! When every span of a request is rejected nothing is accepted, which is not a partial
//! success: the request fails as a whole with 400 / `INVALID_ARGUMENT`, OTLP's answer to bad
//! data, which clients do not retry.

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::limits::{limit_attributes, limit_span};

/// What validation removed and repaired in one request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Spans in the request as received.
    pub spans: u64,
    /// Spans removed.
    pub rejected: u64,
    /// Spans, scopes and resources changed to fit the limits.
    pub repaired: u64,
    first_rejection: Option<String>,
    first_repair: Option<String>,
}

impl Report {
    /// Whether the request had spans and none of them was kept.
    pub fn all_rejected(&self) -> bool {
        self.spans > 0 && self.rejected == self.spans
    }

    /// What was wrong, naming the first rejected and the first repaired field; empty if
    /// nothing was.
    pub fn message(&self) -> String {
        let rejected = self.first_rejection.as_ref().map(|first| {
            let (n, of) = (self.rejected, self.spans);
            format!("rejected {n} of {of} spans, first at {first}")
        });
        let repaired = self.first_repair.as_ref().map(|first| {
            let places = match self.repaired {
                1 => "1 place".to_owned(),
                n => format!("{n} places"),
            };
            format!("clamped or dropped data in {places}, first at {first}")
        });
        [rejected, repaired]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The OTLP answer: `partial_success` when anything was rejected or repaired.
    pub fn response(&self) -> ExportTraceServiceResponse {
        let message = self.message();
        let partial_success = (!message.is_empty()).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(self.rejected).unwrap_or(i64::MAX),
            error_message: message,
        });
        ExportTraceServiceResponse { partial_success }
    }

    fn reject(&mut self, at: impl FnOnce() -> String, problem: String) {
        self.rejected += 1;
        if self.first_rejection.is_none() {
            self.first_rejection = Some(format!("{}.{problem}", at()));
        }
    }

    fn repair(&mut self, at: impl FnOnce() -> String, problem: Option<String>) {
        let Some(problem) = problem else {
            return;
        };
        self.repaired += 1;
        if self.first_repair.is_none() {
            self.first_repair = Some(format!("{}.{problem}", at()));
        }
    }
}

/// Removes the spans that cannot be stored and repairs those over the limits.
pub fn validate(request: &mut ExportTraceServiceRequest) -> Report {
    validate_with(request, |_| None)
}

/// As [`validate`], and also removes the spans for which `refuse` names a problem (written as
/// `field: message`, reported after the span's position like the others).
pub fn validate_with(
    request: &mut ExportTraceServiceRequest,
    mut refuse: impl FnMut(&Span) -> Option<String>,
) -> Report {
    let mut report = Report::default();
    for (r, resource_spans) in request.resource_spans.iter_mut().enumerate() {
        if let Some(resource) = resource_spans.resource.as_mut() {
            let dropped = &mut resource.dropped_attributes_count;
            let repair = limit_attributes(&mut resource.attributes, dropped);
            let repair = repair.map(|problem| format!("attributes{problem}"));
            report.repair(|| format!("resourceSpans[{r}].resource"), repair);
        }

        for (s, scope_spans) in resource_spans.scope_spans.iter_mut().enumerate() {
            let at = |suffix: &str| format!("resourceSpans[{r}].scopeSpans[{s}]{suffix}");
            if let Some(scope) = scope_spans.scope.as_mut() {
                let dropped = &mut scope.dropped_attributes_count;
                let repair = limit_attributes(&mut scope.attributes, dropped);
                let repair = repair.map(|problem| format!("attributes{problem}"));
                report.repair(|| at(".scope"), repair);
            }

            let mut i = 0;
            scope_spans.spans.retain_mut(|span| {
                let index = i;
                let at = || at(&format!(".spans[{index}]"));
                i += 1;
                report.spans += 1;
                if let Err(problem) = check_ids(span) {
                    report.reject(at, problem);
                    return false;
                }
                if let Some(problem) = refuse(span) {
                    report.reject(at, problem);
                    return false;
                }
                report.repair(at, limit_span(span));
                true
            });
        }
    }
    report
}

fn check_ids(span: &Span) -> Result<(), String> {
    check_id(&span.trace_id, 16, "traceId")?;
    check_id(&span.span_id, 8, "spanId")?;
    // Empty and all-zero parent ids both mark a root span.
    let parent = &span.parent_span_id;
    if !parent.is_empty() && parent.iter().any(|b| *b != 0) {
        check_id(parent, 8, "parentSpanId")?;
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
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    use super::*;

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
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

    fn kept(request: &ExportTraceServiceRequest) -> usize {
        request.resource_spans[0].scope_spans[0].spans.len()
    }

    #[test]
    fn accepts_roots_with_empty_or_all_zero_parent() {
        let zero_parent = Span {
            parent_span_id: vec![0; 8],
            ..span()
        };
        let mut request = request(vec![span(), zero_parent]);
        let report = validate(&mut request);
        assert_eq!(
            report,
            Report {
                spans: 2,
                ..Report::default()
            }
        );
        assert_eq!(report.response().partial_success, None);
        assert_eq!(kept(&request), 2);
    }

    #[test]
    fn rejects_bad_ids_keeping_the_good_spans_and_naming_the_first_bad_field() {
        let zero = Span {
            trace_id: vec![0; 16],
            ..span()
        };
        let short = Span {
            span_id: vec![2; 4],
            ..span()
        };
        let parent = Span {
            parent_span_id: vec![1; 4],
            ..span()
        };
        let mut request = request(vec![span(), zero, short, parent, span()]);
        let report = validate(&mut request);

        assert_eq!((report.spans, report.rejected), (5, 3));
        assert!(!report.all_rejected());
        assert_eq!(kept(&request), 2);
        let partial = report.response().partial_success.expect("partial success");
        assert_eq!(partial.rejected_spans, 3);
        assert_eq!(
            partial.error_message,
            "rejected 3 of 5 spans, first at \
             resourceSpans[0].scopeSpans[0].spans[1].traceId: an all-zero id is invalid"
        );
    }

    #[test]
    fn a_request_of_only_bad_spans_is_all_rejected() {
        let short = Span {
            span_id: vec![2; 4],
            ..span()
        };
        let report = validate(&mut request(vec![short]));
        assert!(report.all_rejected());
        assert!(report
            .message()
            .contains("spans[0].spanId: must be 8 bytes"));
    }

    #[test]
    fn repairs_are_a_warning_with_nothing_rejected() {
        let backwards = Span {
            start_time_unix_nano: 2,
            end_time_unix_nano: 1,
            ..span()
        };
        let mut request = request(vec![span(), backwards]);
        let report = validate(&mut request);
        let partial = report.response().partial_success.expect("a warning");
        assert_eq!(partial.rejected_spans, 0);
        assert!(
            partial
                .error_message
                .contains("first at resourceSpans[0].scopeSpans[0].spans[1].endTimeUnixNano"),
            "{}",
            partial.error_message
        );
        assert_eq!(kept(&request), 2);
    }
}
