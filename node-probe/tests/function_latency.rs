//! End to end on the running kernel: real eBPF programs, a real target process, a real
//! OTLP/gRPC sink. Needs root; a failure to load eBPF fails the test with the reason.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use wbpf_config::{ContextConfig, DetectorConfig, FunctionLatencyConfig, ProbeConfig};
use wbpf_probe::Probe;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID: &str = "00f067aa0ba902b7";
const THRESHOLD: Duration = Duration::from_millis(20);

/// Collects every exported span.
struct Sink(mpsc::UnboundedSender<Span>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        for span in spans {
            self.0.send(span).expect("the test holds the receiver");
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn start_sink() -> (SocketAddr, mpsc::UnboundedReceiver<Span>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let addr = listener.local_addr().expect("bound");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Sink(tx)))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    (addr, rx)
}

fn target() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wbpf-probe-target"))
}

/// Runs the target to completion; returns its pid.
async fn run_target(trace_id: &str, sleep_ms: u64) -> u32 {
    let mut child = std::process::Command::new(target())
        .args([trace_id, SPAN_ID, &sleep_ms.to_string()])
        .spawn()
        .expect("spawn the target");
    let pid = child.id();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("wait task")
        .expect("wait for the target");
    assert!(status.success(), "target failed: {status}");
    pid
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

fn int(span: &Span, key: &str) -> i64 {
    match attribute(span, key) {
        Some(Value::IntValue(value)) => *value,
        other => panic!("{key} is not an int: {other:?}"),
    }
}

fn string<'a>(span: &'a Span, key: &str) -> &'a str {
    match attribute(span, key) {
        Some(Value::StringValue(value)) => value,
        other => panic!("{key} is not a string: {other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn next_span(spans: &mut mpsc::UnboundedReceiver<Span>) -> Span {
    tokio::time::timeout(Duration::from_secs(10), spans.recv())
        .await
        .expect("a trigger span within 10 s")
        .expect("sink running")
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_calls_trigger_spans_in_the_published_trace_and_fast_calls_do_not() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("wbpf_probe=debug")
        .try_init();
    let (addr, mut spans) = start_sink().await;
    let config = ProbeConfig {
        gateway: format!("http://{addr}"),
        context: Some(ContextConfig {
            binary: target(),
            symbol: "wbpf_trace_context".to_owned(),
        }),
        detectors: vec![DetectorConfig::FunctionLatency(FunctionLatencyConfig {
            name: Some("test-work".to_owned()),
            binary: target(),
            symbol: "wbpf_test_work".to_owned(),
            threshold: THRESHOLD,
            pid: None,
        })],
    };
    let probe = match Probe::start(&config).await {
        Ok(probe) => probe,
        Err(error) => panic!("loading eBPF failed: {}", error_chain(&error)),
    };

    // A slow call inside a published trace: one trigger, a child of the published span.
    let pid = run_target(TRACE_ID, 60).await;
    let span = next_span(&mut spans).await;
    println!("trigger span: {span:?}");
    assert_eq!(span.name, "wbpf.trigger function_latency");
    assert_eq!(hex(&span.trace_id), TRACE_ID);
    assert_eq!(hex(&span.parent_span_id), SPAN_ID);
    assert!(matches!(
        attribute(&span, "wbpf.trigger"),
        Some(Value::BoolValue(true))
    ));
    assert_eq!(string(&span, "wbpf.detector"), "function_latency");
    assert_eq!(string(&span, "wbpf.detector.name"), "test-work");
    assert_eq!(string(&span, "code.function.name"), "wbpf_test_work");
    assert_eq!(int(&span, "process.pid"), i64::from(pid));
    assert_eq!(
        int(&span, "thread.id"),
        i64::from(pid),
        "the target works on its main thread"
    );
    assert!(int(&span, "wbpf.duration_ns") >= 60_000_000);
    assert_eq!(int(&span, "wbpf.threshold_ns"), THRESHOLD.as_nanos() as i64);
    assert!(attribute(&span, "wbpf.context").is_none());
    let span_ns = span.end_time_unix_nano - span.start_time_unix_nano;
    assert_eq!(span_ns as i64, int(&span, "wbpf.duration_ns"));

    // A fast call: nothing within a bounded wait (several batch delays).
    run_target(TRACE_ID, 1).await;
    let quiet = tokio::time::timeout(Duration::from_millis(1500), spans.recv()).await;
    assert!(quiet.is_err(), "a 1 ms call must not trigger: {quiet:?}");

    // A slow call with no published context: a trigger in a fresh trace, marked as such.
    let pid = run_target("none", 60).await;
    let span = next_span(&mut spans).await;
    assert_ne!(hex(&span.trace_id), TRACE_ID);
    assert!(
        span.parent_span_id.is_empty(),
        "a fresh trace starts at the trigger"
    );
    assert_eq!(string(&span, "wbpf.context"), "none");
    assert_eq!(int(&span, "process.pid"), i64::from(pid));

    let stats = probe.shutdown().await.expect("clean shutdown");
    println!("final stats: {stats:?}");
    assert_eq!(stats.events_seen, 2);
    assert_eq!(stats.triggers_sent, 2);
    assert_eq!(stats.triggers_without_context, 1);
    assert_eq!(stats.events_lost, 0);
    assert_eq!(stats.triggers_failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_symbol_fails_start_naming_the_symbol_and_the_binary() {
    let config = ProbeConfig {
        gateway: "http://127.0.0.1:9".to_owned(),
        context: None,
        detectors: vec![DetectorConfig::FunctionLatency(FunctionLatencyConfig {
            name: None,
            binary: target(),
            symbol: "wbpf_no_such_symbol".to_owned(),
            threshold: THRESHOLD,
            pid: None,
        })],
    };

    let error = match Probe::start(&config).await {
        Ok(probe) => panic!("attached to a missing symbol: {:?}", probe.stats()),
        Err(error) => error,
    };
    let message = error.to_string();
    println!("start failed as expected: {}", error_chain(&error));
    assert!(message.contains("wbpf_no_such_symbol"), "{message}");
    assert!(
        message.contains(&target().display().to_string()),
        "{message}"
    );
}
