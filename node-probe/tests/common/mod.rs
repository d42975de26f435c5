//! What every end-to-end probe test shares: its turn on the machine, an in-process OTLP/gRPC
//! sink, the target binary and child processes, span accessors, and error rendering.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
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
use tokio::sync::{mpsc, MutexGuard};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use wbpf_config::ProbeConfig;
use wbpf_probe::Probe;

/// Held by each test of a binary: their detectors are machine-wide, so running two at once
/// would let each see the other's workload.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

pub async fn start_sink() -> (SocketAddr, mpsc::UnboundedReceiver<Span>) {
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

/// How a test that watches the machine starts: it waits for its turn ([`SERIAL`], held until
/// the guard drops), logs, and starts a sink; returns the sink's address as a gateway URL.
pub async fn start() -> (
    MutexGuard<'static, ()>,
    String,
    mpsc::UnboundedReceiver<Span>,
) {
    let serial = SERIAL.lock().await;
    init_logging();
    let (addr, spans) = start_sink().await;
    (serial, format!("http://{addr}"), spans)
}

pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("wbpf_probe=debug")
        .try_init();
}

/// Starts the probe or fails the test with the whole error chain.
pub async fn start_probe(config: &ProbeConfig) -> Probe {
    match Probe::start(config).await {
        Ok(probe) => {
            if let Some(failure) = probe.failures().first() {
                panic!("detector failed to start: {failure}");
            }
            probe
        }
        Err(error) => panic!("loading eBPF failed: {}", error_chain(&error)),
    }
}

pub fn target() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wbpf-probe-target"))
}

/// Runs the target with `args` to completion and asserts that it succeeded; returns its pid.
pub async fn run_target(args: &[&str]) -> u32 {
    let (pid, status) = run(Command::new(target()).args(args)).await;
    assert!(status.success(), "target failed: {status}");
    pid
}

/// Runs `command` to completion; returns its pid and exit status.
pub async fn run(command: &mut Command) -> (u32, ExitStatus) {
    let child = command
        .spawn()
        .unwrap_or_else(|error| panic!("spawn {:?}: {error}", command.get_program()));
    let pid = child.id();
    (pid, wait(child).await)
}

/// Waits for `child` to exit, off the test's async workers.
pub async fn wait(mut child: Child) -> ExitStatus {
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("wait task")
        .expect("wait for the child")
}

pub fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

pub fn int(span: &Span, key: &str) -> i64 {
    match attribute(span, key) {
        Some(Value::IntValue(value)) => *value,
        other => panic!("{key} is not an int: {other:?}"),
    }
}

pub fn string<'a>(span: &'a Span, key: &str) -> &'a str {
    match attribute(span, key) {
        Some(Value::StringValue(value)) => value,
        other => panic!("{key} is not a string: {other:?}"),
    }
}

/// The spans of process `pid`.
pub fn from_pid(spans: &[Span], pid: u32) -> Vec<&Span> {
    spans
        .iter()
        .filter(|span| int(span, "process.pid") == i64::from(pid))
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn next_span(spans: &mut mpsc::UnboundedReceiver<Span>) -> Span {
    tokio::time::timeout(Duration::from_secs(10), spans.recv())
        .await
        .expect("a trigger span within 10 s")
        .expect("sink running")
}

/// Every span that arrives within `wait` (several export batch delays).
pub async fn collect(spans: &mut mpsc::UnboundedReceiver<Span>, wait: Duration) -> Vec<Span> {
    let mut collected = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(span)) = tokio::time::timeout_at(deadline, spans.recv()).await {
        collected.push(span);
    }
    collected
}

pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
