//! Triggers without trace context, matched to traces by process, thread and time, over real
//! OTLP/gRPC and a real RocksDB directory.

use std::collections::BTreeSet;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use wbpf_gateway::Gateway;
use wbpf_tests::{attribute, exported_by_trace, gateway_config_retaining, send_spans, test_span};

const MS: u64 = 1_000_000;

/// An application span of process `pid`, thread `tid`, from `start_ms` to `end_ms` after
/// the test's epoch.
fn app_span(trace: u8, pid: i64, tid: i64, start_ms: u64, end_ms: u64) -> Span {
    let mut span = test_span([trace; 16], trace);
    let epoch = span.start_time_unix_nano;
    span.start_time_unix_nano = epoch + start_ms * MS;
    span.end_time_unix_nano = epoch + end_ms * MS;
    span.attributes = vec![
        attribute("process.pid", Value::IntValue(pid)),
        attribute("thread.id", Value::IntValue(tid)),
    ];
    span
}

/// A probe's trigger span sent without trace context, for an event at `at_ms`.
fn orphan_trigger(trace: u8, pid: i64, tid: i64, at_ms: u64) -> Span {
    let mut span = test_span([trace; 16], trace);
    let event = span.start_time_unix_nano + at_ms * MS;
    span.attributes = vec![
        attribute("wbpf.trigger", Value::BoolValue(true)),
        attribute("wbpf.context", Value::StringValue("none".to_owned())),
        attribute("process.pid", Value::IntValue(pid)),
        attribute("thread.id", Value::IntValue(tid)),
        attribute(
            "wbpf.event_time_unix_nano",
            Value::IntValue(i64::try_from(event).unwrap()),
        ),
    ];
    span
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_without_context_keeps_the_trace_its_thread_was_serving_at_that_time() {
    let dir = tempfile::tempdir().unwrap();
    let sampling = "sampling:\n  sweep_interval: 100ms\n";
    let config = gateway_config_retaining(dir.path(), "1s", sampling);
    let gateway = Gateway::start(&config).await.unwrap();

    // Same process and time, other thread (not kept); other process (not kept); same thread
    // but earlier (not kept); the serving thread (kept).
    send_spans(
        gateway.grpc_addr(),
        vec![
            app_span(1, 4242, 1, 100, 200),
            app_span(2, 4242, 2, 100, 200),
            app_span(3, 999, 1, 100, 200),
            app_span(4, 4242, 1, 0, 90),
        ],
    )
    .await;
    send_spans(gateway.grpc_addr(), vec![orphan_trigger(9, 4242, 1, 150)]).await;
    // The enclosing request span ends, and so arrives, after the trigger.
    send_spans(gateway.grpc_addr(), vec![app_span(5, 4242, 1, 50, 400)]).await;

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let stats = gateway.shutdown().await.unwrap();
    let exported: BTreeSet<String> = exported_by_trace(&dir.path().join("out.jsonl"))
        .into_keys()
        .collect();
    let expected: BTreeSet<String> = [1u8, 5, 9].iter().map(|i| hex::encode([*i; 16])).collect();
    assert_eq!(exported, expected);
    assert_eq!(stats.correlated_triggers, 2);
    assert_eq!(stats.traces_expired, 3);
}
