//! Shared helpers of the end-to-end tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A gateway config parsed from YAML as a user writes it: ephemeral ports, the admin port on,
/// RocksDB in `dir/rocksdb`, a file exporter to `dir/out.jsonl`, and `extra` YAML appended
/// (a `sampling:` block, for example).
pub fn gateway_config(dir: &Path, extra: &str) -> wbpf_config::GatewayConfig {
    gateway_config_retaining(dir, "10m", extra)
}

/// [`gateway_config`] with `storage.retention` set.
pub fn gateway_config_retaining(
    dir: &Path,
    retention: &str,
    extra: &str,
) -> wbpf_config::GatewayConfig {
    let text = format!(
        "receivers:\n  grpc: 127.0.0.1:0\n  http: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n\
         storage:\n  path: {}\n  retention: {retention}\n\
         exporters:\n  file:\n    path: {}\n{extra}",
        dir.join("rocksdb").display(),
        dir.join("out.jsonl").display(),
    );
    wbpf_config::parse_str(&text, "test.yaml")
        .expect("the test config is valid")
        .gateway
}

/// A 10 ms span of `trace` with span id `[id; 8]`, no parent.
pub fn test_span(trace: [u8; 16], id: u8) -> Span {
    Span {
        trace_id: trace.to_vec(),
        span_id: vec![id; 8],
        name: format!("span-{id}"),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_010_000_000,
        ..Default::default()
    }
}

/// A span attribute.
pub fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// Sends `spans` in one OTLP/gRPC export request and expects it accepted.
pub async fn send_spans(grpc: SocketAddr, spans: Vec<Span>) {
    let mut client = TraceServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("the gateway accepts connections");
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    client
        .export(request)
        .await
        .expect("the export is accepted");
}

/// Exported spans per hex trace id.
pub fn exported_by_trace(path: &Path) -> HashMap<String, Vec<Span>> {
    let mut out: HashMap<String, Vec<Span>> = HashMap::new();
    for span in exported_spans(path) {
        out.entry(hex::encode(&span.trace_id))
            .or_default()
            .push(span);
    }
    out
}

/// The body of `GET /metrics` on the admin port.
pub async fn scrape(admin: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(admin)
        .await
        .expect("the admin port accepts connections");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response read");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// The value of the sample `series` (name and labels exactly as printed) in a scrape.
pub fn metric(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// Every span in a JSON-lines export file; none if the file does not exist yet.
///
/// The exporter may be writing while the test reads: only complete lines count.
pub fn exported_spans(path: &Path) -> Vec<Span> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .flat_map(|line| {
            let request: ExportTraceServiceRequest =
                serde_json::from_str(line).expect("the export file holds OTLP/JSON lines");
            request
                .resource_spans
                .into_iter()
                .flat_map(|r| r.scope_spans)
                .flat_map(|s| s.spans)
        })
        .collect()
}
