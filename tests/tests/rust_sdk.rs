//! The Rust OpenTelemetry SDK exports over OTLP/gRPC to a gateway on a real socket with a
//! real RocksDB directory: triggers release their traces, and a restart loses neither
//! buffered spans nor decisions.

use std::path::Path;
use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanKind, TraceContextExt, TraceFlags, TraceState, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::{SdkTracerProvider, SimpleSpanProcessor};
use opentelemetry_sdk::Resource;
use wbpf_config::{FileExporterConfig, GatewayConfig};
use wbpf_gateway::Gateway;

fn config(dir: &Path, export: &Path) -> GatewayConfig {
    let mut config = GatewayConfig::default();
    config.receivers.grpc = "127.0.0.1:0".parse().unwrap();
    config.receivers.http = "127.0.0.1:0".parse().unwrap();
    config.storage.path = dir.join("rocksdb");
    config.exporters.file = Some(FileExporterConfig {
        path: export.to_owned(),
    });
    config
}

/// A provider whose spans are exported one by one, so each `end()` is acknowledged before
/// the next step of the test.
fn sdk_provider(gateway: &Gateway) -> SdkTracerProvider {
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://{}", gateway.grpc_addr()))
        .build()
        .unwrap();
    SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name("rust-sdk-test")
                .build(),
        )
        .with_span_processor(SimpleSpanProcessor::new(exporter))
        .build()
}

/// Span names per exported trace id.
fn exported(path: &Path) -> std::collections::HashMap<String, Vec<String>> {
    let mut out = std::collections::HashMap::new();
    for span in wbpf_tests::exported_spans(path) {
        out.entry(hex::encode(&span.trace_id))
            .or_insert_with(Vec::new)
            .push(span.name);
    }
    out
}

/// Three spans in one trace; returns its context.
fn make_trace(provider: &SdkTracerProvider, name: &str) -> SpanContext {
    let tracer = provider.tracer("wbpf-test");
    tracer.in_span(name.to_owned(), |cx| {
        tracer
            .span_builder("child")
            .with_kind(SpanKind::Client)
            .start_with_context(&tracer, &cx);
        tracer.in_span("grandchild", |_| {});
        cx.span().span_context().clone()
    })
}

fn trigger(provider: &SdkTracerProvider, target: &SpanContext) {
    let tracer = provider.tracer("wbpf-test-probe");
    let parent = SpanContext::new(
        target.trace_id(),
        target.span_id(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let cx = Context::new().with_remote_span_context(parent);
    tracer
        .span_builder("wbpf.trigger test")
        .with_attributes([KeyValue::new("wbpf.trigger", true)])
        .start_with_context(&tracer, &cx);
}

async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn off_reactor<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_traces_are_released_only_when_triggered() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("out.jsonl");
    let gateway = Gateway::start(&config(dir.path(), &export)).await.unwrap();
    let provider = sdk_provider(&gateway);

    let (kept, dropped) = off_reactor({
        let provider = provider.clone();
        move || {
            let kept = make_trace(&provider, "kept");
            let dropped = make_trace(&provider, "dropped");
            trigger(&provider, &kept);
            (kept, dropped)
        }
    })
    .await;

    let kept_id = kept.trace_id().to_string();
    assert!(eventually(|| exported(&export).get(&kept_id).map_or(0, Vec::len) == 4).await);
    let mut names = exported(&export)[&kept_id].clone();
    names.sort();
    assert_eq!(names, ["child", "grandchild", "kept", "wbpf.trigger test"]);
    assert!(!exported(&export).contains_key(&dropped.trace_id().to_string()));

    off_reactor(move || provider.shutdown()).await.unwrap();
    let stats = gateway.shutdown().await.unwrap();
    assert_eq!(stats.traces_received, 2);
    assert_eq!(stats.traces_released, 1);
    assert_eq!(stats.spans_exported, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_buffered_spans_and_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("out.jsonl");

    // First life: one trace buffered, another decided before its spans arrive.
    let gateway = Gateway::start(&config(dir.path(), &export)).await.unwrap();
    let provider = sdk_provider(&gateway);
    let buffered = off_reactor({
        let provider = provider.clone();
        move || make_trace(&provider, "buffered")
    })
    .await;
    let early = SpanContext::new(
        opentelemetry::trace::TraceId::from_hex("5b8efff798038103d269b633813fc60c").unwrap(),
        opentelemetry::trace::SpanId::from_hex("eee19b7ec3c1b174").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    off_reactor({
        let provider = provider.clone();
        let early = early.clone();
        move || trigger(&provider, &early)
    })
    .await;
    off_reactor(move || provider.shutdown()).await.unwrap();
    gateway.shutdown().await.unwrap();

    // Second life on the same directory.
    let gateway = Gateway::start(&config(dir.path(), &export)).await.unwrap();
    assert_eq!(gateway.stats().traces_buffered, 1);
    let provider = sdk_provider(&gateway);
    let buffered_id = buffered.trace_id().to_string();
    off_reactor({
        let provider = provider.clone();
        move || {
            trigger(&provider, &buffered);
            // A late span of the trace decided before the restart follows that decision.
            let tracer = provider.tracer("wbpf-test");
            let cx = Context::new().with_remote_span_context(early.clone());
            tracer.span_builder("late").start_with_context(&tracer, &cx);
        }
    })
    .await;

    let early_id = "5b8efff798038103d269b633813fc60c".to_owned();
    let done = eventually(|| {
        let got = exported(&export);
        got.get(&buffered_id).map_or(0, Vec::len) == 4
            && got.get(&early_id).map_or(0, Vec::len) == 2
    })
    .await;
    assert!(done, "{:?}", exported(&export));

    off_reactor(move || provider.shutdown()).await.unwrap();
    gateway.shutdown().await.unwrap();
}
