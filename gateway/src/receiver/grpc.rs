//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`, over TLS with
//! `receivers.tls`, answering `UNAUTHENTICATED` without the credentials `receivers.auth` asks for.
//! With `receivers.trigger_auth`, only requests carrying it may send trigger spans.

use std::net::SocketAddr;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::warn;

use super::grpc_incoming;
use super::grpc_service::{Export, TraceServiceRoute};
use super::{Ingestor, ReadTimeouts};
use crate::guard::{Admitted, Guard};
use crate::throttle::Throttle;
use crate::GatewayError;

/// How often the server pings an idle client, and how long it waits for the answer.
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Warnings about malformed requests: one every 10 s, with how many were left out.
static MALFORMED: Throttle = Throttle::new(10_000);

/// How long an overloaded gateway asks clients to wait before retrying.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Clone)]
struct Receiver {
    ingestor: Ingestor,
}

impl Export for Receiver {
    async fn export(
        &self,
        request: ExportTraceServiceRequest,
        admitted: Admitted,
    ) -> Result<ExportTraceServiceResponse, Status> {
        match self.ingestor.ingest(request, admitted).await {
            Ok(report) => Ok(report.response()),
            Err(err) => Err(to_status(err)),
        }
    }
}

fn to_status(err: GatewayError) -> Status {
    match err {
        GatewayError::InvalidRequest(message) => {
            if let Some(also_rejected) = MALFORMED.admit() {
                let receiver = "otlp/grpc";
                warn!(receiver, %message, also_rejected, "rejected a malformed request");
            }
            Status::invalid_argument(message)
        }
        GatewayError::TooLarge(message) => Status::resource_exhausted(message),
        overloaded @ GatewayError::Overloaded { .. } => {
            // RetryInfo tells OTLP exporters how long to back off before trying again.
            let details = ErrorDetails::with_retry_info(Some(RETRY_AFTER));
            Status::with_error_details(Code::Unavailable, overloaded.to_string(), details)
        }
        other => Status::unavailable(other.to_string()),
    }
}

/// Binds the listener now (so address errors surface at start) and serves until `stop`.
pub async fn serve(
    addr: SocketAddr,
    ingestor: Ingestor,
    guard: &Guard,
    timeouts: ReadTimeouts,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>), GatewayError> {
    let (listener, local) = crate::http_server::bind("otlp/grpc", addr).await?;

    // A call not answered within the body timeout is cancelled; a connection whose client
    // stops answering HTTP/2 pings is closed.
    let builder = tonic::transport::Server::builder()
        .timeout(timeouts.body)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT));
    let mut server = match &guard.tls {
        Some(tls) => tls.grpc_server(builder)?,
        None => builder,
    };
    let limit = ingestor.max_request_bytes;
    let refused = ingestor.clone();
    let service = TraceServiceRoute::new(Receiver { ingestor }, limit);
    let router = if guard.checks_credentials() {
        let interceptor = guard.interceptor(move || refused.count_rejected());
        server.add_service(InterceptedService::new(service, interceptor))
    } else {
        server.add_service(service)
    };
    let incoming = grpc_incoming::incoming(listener, timeouts.header, stop.clone());

    Ok((local, async move {
        let shutdown = async move {
            crate::stop::stopped(&mut stop).await;
        };
        let result = router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
        if let Err(err) = result {
            warn!(receiver = "otlp/grpc", error = %err, "server ended with an error");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_is_unavailable_with_a_retry_delay_the_client_honours() {
        let status = to_status(GatewayError::Overloaded {
            in_flight_limit: 1024,
        });
        assert_eq!(status.code(), Code::Unavailable);
        let retry = status.get_details_retry_info().expect("RetryInfo attached");
        assert_eq!(retry.retry_delay, Some(RETRY_AFTER));
    }
}
