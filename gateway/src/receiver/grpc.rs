//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.

use std::net::SocketAddr;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use super::Ingestor;
use crate::GatewayError;

struct Receiver {
    ingestor: Ingestor,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        match self.ingestor.ingest(request.into_inner()).await {
            Ok(()) => Ok(Response::new(ExportTraceServiceResponse::default())),
            Err(err) => Err(to_status(err)),
        }
    }
}

fn to_status(err: GatewayError) -> Status {
    match err {
        GatewayError::InvalidRequest(message) => {
            warn!(receiver = "grpc", %message, "rejected a malformed request");
            Status::invalid_argument(message)
        }
        GatewayError::TooLarge(message) => Status::resource_exhausted(message),
        other => Status::unavailable(other.to_string()),
    }
}

/// Binds the listener now (so address errors surface at start) and serves until `stop`.
pub async fn serve(
    addr: SocketAddr,
    ingestor: Ingestor,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>), GatewayError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| GatewayError::Bind {
        receiver: "otlp/grpc",
        addr,
        source,
    })?;
    let local = listener.local_addr().unwrap_or(addr);
    info!(receiver = "otlp/grpc", addr = %local, "listening");

    let limit = ingestor.max_request_bytes;
    let service = TraceServiceServer::new(Receiver { ingestor })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));

    Ok((local, async move {
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        let result = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
        if let Err(err) = result {
            warn!(receiver = "otlp/grpc", error = %err, "server ended with an error");
        }
    }))
}
