//! The OTLP/gRPC exporter, to Jaeger or any collector.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use tracing::{error, warn};
use wbpf_config::OtlpExporterConfig;

use crate::GatewayError;

/// Attempts per batch before it is dropped and counted as an export failure.
const MAX_ATTEMPTS: u32 = 10;

pub struct OtlpExporter {
    endpoint: String,
    client: TraceServiceClient<Channel>,
}

impl OtlpExporter {
    /// Prepares a lazily connected channel: a downstream that is not up yet is not an error.
    pub fn new(config: &OtlpExporterConfig) -> Result<Self, GatewayError> {
        let channel = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|err| GatewayError::ExporterEndpoint {
                endpoint: config.endpoint.clone(),
                message: err.to_string(),
            })?
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .connect_lazy();
        let client = TraceServiceClient::new(channel)
            .max_encoding_message_size(usize::MAX)
            .max_decoding_message_size(16 * 1024 * 1024);
        Ok(Self {
            endpoint: config.endpoint.clone(),
            client,
        })
    }

    /// Sends one batch, retrying transient failures with exponential backoff.
    pub async fn export(&mut self, request: ExportTraceServiceRequest) -> bool {
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=MAX_ATTEMPTS {
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
                    return true;
                }
                Err(status) if retryable(status.code()) && attempt < MAX_ATTEMPTS => {
                    warn!(
                        endpoint = %self.endpoint,
                        attempt,
                        code = ?status.code(),
                        message = status.message(),
                        "export failed; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(status) => {
                    error!(
                        endpoint = %self.endpoint,
                        code = ?status.code(),
                        message = status.message(),
                        "export failed; batch dropped"
                    );
                    return false;
                }
            }
        }
        false
    }
}

fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::ResourceExhausted
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Cancelled
            | Code::Unknown
    )
}
