//! What the OTLP fuzz targets run on a decoded request: the gateway's path from a request to
//! what it stores, without the storage.
//!
//! A request is validated, split per trace, checked against trigger rules and head sampling
//! (which read span attributes and `tracestate`), and each trace encoded as the stored blob and
//! read back, then written as the file exporter writes it and read back again. On the way the invariants the buffer relies on are asserted, so breaking one is a
//! finding just as a panic in the code is.

use std::sync::OnceLock;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use wbpf_otlp::split::{by_trace, merge};
use wbpf_otlp::validate::validate;
use wbpf_sampler::head::with_threshold;
use wbpf_sampler::tail::is_root;
use wbpf_sampler::{is_trigger, HeadSampler, TailSampler, TraceData};

/// The gateway's bound on a split request with the default `receivers.max_request_bytes`.
const MAX_SPLIT_BYTES: usize = 4 * 16 * 1024 * 1024;
/// Any fixed time: the rules only compare times.
const NOW_MS: u64 = 1_700_000_000_000;

/// Trigger rules of every policy type, from the config test fixtures.
fn rules() -> &'static [TailSampler] {
    static RULES: OnceLock<Vec<TailSampler>> = OnceLock::new();
    RULES.get_or_init(|| {
        let fixtures = [
            (
                "readme_practical_example.yaml",
                include_str!("../../config/tests/fixtures/readme_practical_example.yaml"),
            ),
            (
                "newer_policies.yaml",
                include_str!("../../config/tests/fixtures/newer_policies.yaml"),
            ),
        ];
        let build = |(file, text)| {
            let config = wbpf_config::parse_tail_sampling_block(text, file)
                .expect("the fixture is a valid tail_sampling block");
            TailSampler::build(&config).expect("the fixture's policies build")
        };
        fixtures.into_iter().map(build).collect()
    })
}

fn spans(request: &ExportTraceServiceRequest) -> impl Iterator<Item = &Span> {
    let scopes = request.resource_spans.iter().flat_map(|r| &r.scope_spans);
    scopes.flat_map(|s| &s.spans)
}

/// Runs a decoded request through validation, the split and the samplers, as the receivers do.
pub fn ingest(mut request: ExportTraceServiceRequest) {
    let report = validate(&mut request);
    let _ = report.response();
    let kept = spans(&request).count() as u64;
    assert_eq!(
        report.spans - report.rejected,
        kept,
        "validation counts what it removes"
    );
    for span in spans(&request) {
        assert_eq!(
            (span.trace_id.len(), span.span_id.len()),
            (16, 8),
            "ids were checked"
        );
    }
    let again = validate(&mut request.clone());
    assert_eq!(
        (again.rejected, again.repaired),
        (0, 0),
        "a validated request is valid"
    );

    let Ok(traces) = by_trace(request, MAX_SPLIT_BYTES) else {
        return;
    };
    assert_eq!(
        traces.iter().map(|t| t.spans).sum::<u64>(),
        kept,
        "no span lost in the split"
    );

    let head = HeadSampler::new(10.0).expect("a valid percentage");
    for trace in traces {
        let mut first_state = None;
        for piece in &trace.pieces {
            for span in piece.scope_spans.iter().flat_map(|s| &s.spans) {
                let _ = (is_trigger(span), is_root(span));
                first_state.get_or_insert(span.trace_state.as_str());
            }
        }
        let state = first_state.expect("a trace has a span");
        let decision = head.decide(&trace.trace_id, state);
        let _ = with_threshold(state, decision.threshold);

        let data = TraceData::from_resource_spans(trace.trace_id, &trace.pieces, NOW_MS);
        for rules in rules() {
            let _ = rules.evaluate(&data, NOW_MS);
        }

        let blob = merge(trace.pieces).encode_to_vec();
        let stored = wbpf_otlp::decode::protobuf(&blob[..]).expect("a stored trace decodes");
        assert_eq!(
            spans(&stored).count() as u64,
            trace.spans,
            "the blob holds the trace"
        );
        exported_as_json(&stored);
    }
}

/// What the file exporter writes for a stored trace is OTLP/JSON that the gateway reads back
/// to the same trace (compared as JSON: a NaN is not equal to itself).
fn exported_as_json(stored: &ExportTraceServiceRequest) {
    let line = serde_json::to_string(stored).expect("a stored trace encodes as JSON");
    let read = wbpf_otlp::decode::json(line.as_bytes()).expect("an exported line decodes");
    let again = serde_json::to_string(&read).expect("a decoded line encodes as JSON");
    assert_eq!(line, again, "an exported line reads back to the same trace");
}
