//! The buffer's byte budget and per-trace cap, over real OTLP/gRPC and a real RocksDB
//! directory: eviction takes the oldest whole traces, and one huge trace cannot crowd out the
//! others.

use std::path::Path;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use wbpf_gateway::Gateway;
use wbpf_tests::{attribute, exported_by_trace, send_spans, test_span};

const PAYLOAD: usize = 2_000;

fn config(dir: &Path, storage: &str) -> wbpf_config::GatewayConfig {
    let text = format!(
        "receivers: {{grpc: 127.0.0.1:0, http: 127.0.0.1:0}}\nadmin: null\n\
         storage:\n  path: {}\n  retention: 10m\n{storage}\
         exporters:\n  file:\n    path: {}\n",
        dir.join("rocksdb").display(),
        dir.join("out.jsonl").display(),
    );
    wbpf_config::parse_str(&text, "test.yaml")
        .expect("the test config is valid")
        .gateway
}

/// A span carrying about 2 KB of attribute data.
fn heavy_span(trace: [u8; 16], id: u8) -> Span {
    Span {
        attributes: vec![attribute(
            "payload",
            Value::StringValue("x".repeat(PAYLOAD)),
        )],
        ..test_span(trace, id)
    }
}

fn trace_id(n: u16) -> [u8; 16] {
    let mut id = [0x5a; 16];
    id[14..].copy_from_slice(&n.to_be_bytes());
    id
}

/// Spans exported for `trace`, after giving the exporter time to write.
async fn exported_count(dir: &Path, trace: [u8; 16]) -> usize {
    tokio::time::sleep(Duration::from_millis(500)).await;
    exported_by_trace(&dir.join("out.jsonl"))
        .get(&hex::encode(trace))
        .map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_byte_budget_the_oldest_whole_traces_are_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 64 * 1024;
    let storage = format!("  max_bytes: {budget}\n");
    let gateway = Gateway::start(&config(dir.path(), &storage)).await.unwrap();
    let grpc = gateway.grpc_addr();

    // The oldest trace, then many more, then the newest, each with two spans.
    for n in 0..=100u16 {
        send_spans(grpc, vec![heavy_span(trace_id(n), 1)]).await;
        send_spans(grpc, vec![heavy_span(trace_id(n), 2)]).await;
        if n == 0 || n == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let stats = gateway.stats();
    assert!(stats.traces_evicted > 0, "{stats:?}");
    let kept_bytes = stats.traces_buffered * 2 * PAYLOAD as u64;
    assert!(
        kept_bytes <= budget,
        "{} traces buffered",
        stats.traces_buffered
    );
    assert_eq!(
        stats.traces_buffered + stats.traces_evicted,
        101,
        "{stats:?}"
    );

    gateway.trigger(trace_id(100)).await.unwrap();
    assert_eq!(
        exported_count(dir.path(), trace_id(100)).await,
        2,
        "newest kept whole"
    );
    gateway.trigger(trace_id(0)).await.unwrap();
    assert_eq!(
        exported_count(dir.path(), trace_id(0)).await,
        0,
        "oldest evicted whole"
    );
    gateway.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_huge_trace_is_capped_and_the_others_are_kept_whole() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 16 * 1024;
    let storage = format!("  max_trace_bytes: {cap}\n");
    let gateway = Gateway::start(&config(dir.path(), &storage)).await.unwrap();
    let grpc = gateway.grpc_addr();
    let huge = trace_id(1);
    let small = trace_id(2);

    for id in 1..=40u8 {
        send_spans(grpc, vec![heavy_span(huge, id)]).await;
        if id % 10 == 0 {
            send_spans(grpc, vec![heavy_span(small, id)]).await;
        }
    }

    let stats = gateway.stats();
    assert!(stats.spans_over_trace_cap > 0, "{stats:?}");
    gateway.trigger(small).await.unwrap();
    assert_eq!(exported_count(dir.path(), small).await, 4);
    gateway.trigger(huge).await.unwrap();
    let kept = exported_count(dir.path(), huge).await;
    assert!(
        kept > 0 && kept * PAYLOAD <= cap,
        "{kept} spans of the huge trace kept"
    );
    assert_eq!(kept as u64 + stats.spans_over_trace_cap, 40);
    gateway.shutdown().await.unwrap();
}
