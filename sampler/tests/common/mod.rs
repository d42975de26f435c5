//! Builders shared by the sampler's integration tests: policies from Collector YAML, traces from
//! a few spans.
#![allow(dead_code)]

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AttrValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span, Status};
use wbpf_config::parse_tail_sampling_block;
use wbpf_sampler::policy::{build, Policy};
use wbpf_sampler::{Decision, TailSampler, TraceData};

/// Builds one policy from its Collector YAML, written as one flow mapping.
pub fn policy(flow: &str) -> Box<dyn Policy> {
    let text = format!("tail_sampling:\n  policies:\n    - {flow}\n");
    let config = parse_tail_sampling_block(&text, "test.yaml").expect("valid policy");
    build(&config.policies[0]).expect("buildable policy")
}

/// Builds a tail sampler from a whole `tail_sampling:` block.
pub fn sampler(block: &str) -> TailSampler {
    let config = parse_tail_sampling_block(block, "test.yaml").expect("valid block");
    TailSampler::build(&config).expect("buildable block")
}

pub fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

pub fn s(value: &str) -> Value {
    Value::StringValue(value.to_owned())
}

pub fn i(value: i64) -> Value {
    Value::IntValue(value)
}

pub fn b(value: bool) -> Value {
    Value::BoolValue(value)
}

/// A child span running from `start_ms` to `end_ms` after a fixed epoch.
pub fn span(start_ms: u64, end_ms: u64) -> Span {
    const EPOCH_NS: u64 = 1_700_000_000_000_000_000;
    Span {
        trace_id: vec![7; 16],
        span_id: vec![1; 8],
        parent_span_id: vec![2; 8],
        name: "op".to_owned(),
        start_time_unix_nano: EPOCH_NS + start_ms * 1_000_000,
        end_time_unix_nano: EPOCH_NS + end_ms * 1_000_000,
        ..Span::default()
    }
}

/// A 1 ms span with these attributes.
pub fn span_with(attributes: Vec<KeyValue>) -> Span {
    Span {
        attributes,
        ..span(0, 1)
    }
}

pub fn with_status(mut span: Span, code: StatusCode) -> Span {
    span.status = Some(Status {
        code: code as i32,
        ..Status::default()
    });
    span
}

/// A trace of one resource holding `spans`, arrived at time 0.
pub fn trace(spans: Vec<Span>) -> TraceData {
    trace_with_resource(Vec::new(), spans)
}

pub fn trace_with_resource(resource: Vec<KeyValue>, spans: Vec<Span>) -> TraceData {
    let mut trace = TraceData::new([7; 16], 0);
    trace.add_batch(resource, spans, 0);
    trace
}

/// A trace with `count` identical 1 ms spans.
pub fn trace_of(count: usize) -> TraceData {
    trace(vec![span(0, 1); count])
}

/// Evaluates each `(name, trace, expected)` case against the policy written as `flow`, at time 0.
pub fn check(flow: &str, cases: Vec<(&str, TraceData, Decision)>) {
    let policy = policy(flow);
    for (name, trace, expected) in cases {
        assert_eq!(policy.evaluate(&trace, 0), expected, "{flow}: {name}");
    }
}

/// A trace of two spans, the second carrying attribute `key`.
pub fn attr_trace(key: &str, value: AttrValue) -> TraceData {
    trace(vec![span(0, 1), span_with(vec![kv(key, value)])])
}

/// A trace whose resource carries attribute `key`.
pub fn resource_trace(key: &str, value: AttrValue) -> TraceData {
    trace_with_resource(vec![kv(key, value)], vec![span(0, 1)])
}
