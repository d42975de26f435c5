//! A counting OTLP/gRPC receiver: the downstream of the systems under test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde::Serialize;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

/// Options of `sink`.
#[derive(clap::Args, Debug)]
pub struct SinkArgs {
    #[arg(long, default_value = "127.0.0.1:14317")]
    listen: SocketAddr,
}

#[derive(Debug, Default)]
struct Counts {
    requests: AtomicU64,
    spans: AtomicU64,
    bytes: AtomicU64,
}

/// What `sink` prints when stopped.
#[derive(Debug, Serialize)]
struct Report {
    requests: u64,
    spans: u64,
    bytes: u64,
}

struct Sink(Arc<Counts>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let request = request.into_inner();
        let spans: usize = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        self.0.spans.fetch_add(spans as u64, Ordering::Relaxed);
        let bytes = prost::Message::encoded_len(&request) as u64;
        self.0.bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

pub async fn run(args: SinkArgs) -> anyhow::Result<()> {
    let counts = Arc::new(Counts::default());
    // The Collector's OTLP exporter compresses with gzip by default; bytes are counted decoded.
    let service = TraceServiceServer::new(Sink(Arc::clone(&counts)))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(64 * 1024 * 1024);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_shutdown(args.listen, stop)
        .await?;
    let report = Report {
        requests: counts.requests.load(Ordering::Relaxed),
        spans: counts.spans.load(Ordering::Relaxed),
        bytes: counts.bytes.load(Ordering::Relaxed),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
