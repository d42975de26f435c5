//! The OTLP/gRPC exporter, to Jaeger or any collector.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use tracing::warn;
use wbpf_config::OtlpExporterConfig;

use super::Failure;
use crate::GatewayError;

pub struct OtlpExporter {
    endpoint: String,
    client: TraceServiceClient<Channel>,
}

impl OtlpExporter {
    /// Prepares a lazily connected channel: a downstream that is not up yet is not an error.
    pub fn new(
        config: &OtlpExporterConfig,
        max_message_bytes: usize,
    ) -> Result<Self, GatewayError> {
        let channel = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|err| GatewayError::ExporterEndpoint {
                endpoint: config.endpoint.clone(),
                message: err.to_string(),
            })?
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .connect_lazy();
        // A lone span may exceed the batch limit; let it go and let the downstream judge it.
        let client = TraceServiceClient::new(channel)
            .max_encoding_message_size(max_message_bytes.max(64 * 1024 * 1024))
            .max_decoding_message_size(16 * 1024 * 1024);
        Ok(Self {
            endpoint: config.endpoint.clone(),
            client,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends one request once.
    pub async fn export(&mut self, request: &ExportTraceServiceRequest) -> Result<(), Failure> {
        match self.client.export(request.clone()).await {
            Ok(response) => {
                if let Some(partial) = response.into_inner().partial_success {
                    if partial.rejected_spans > 0 {
                        warn!(
                            endpoint = %self.endpoint,
                            rejected = partial.rejected_spans,
                            message = %partial.error_message,
                            "downstream rejected some spans"
                        );
                    }
                }
                Ok(())
            }
            Err(status) => Err(Failure {
                retryable: retryable(status.code()),
                reason: reason(&status, &self.endpoint),
            }),
        }
    }
}

/// What went wrong, with a hint where the usual cause is an endpoint that is not OTLP/gRPC.
fn reason(status: &tonic::Status, endpoint: &str) -> String {
    let reason = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        // What a connection to an HTTP/1.1 server (an OTLP/HTTP port) ends in.
        Code::Cancelled | Code::Unknown => format!(
            "{reason} (if this persists, check that {endpoint} is an OTLP/gRPC receiver: an \
             OTLP/HTTP port such as 4318 does not speak gRPC)"
        ),
        _ => reason,
    }
}

/// The codes OTLP says a client retries; anything else means the data itself was refused.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::ResourceExhausted
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Cancelled
            | Code::OutOfRange
            | Code::DataLoss
            | Code::Unknown
    )
}
