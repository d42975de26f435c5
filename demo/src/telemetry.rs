//! The OpenTelemetry tracer provider of one service process, and its logging.
//!
//! Spans go out as OTLP/HTTP protobuf through a batch processor with a short scheduled delay,
//! so they reach the gateway within a fraction of a second. The exporter uses the blocking
//! reqwest client, built here explicitly: the services run no async runtime, and the async
//! client would panic inside the batch processor's thread.
//!
//! With tracing off ([`Telemetry::disabled`]) the services run the same code, but the provider
//! samples nothing and has no exporter: spans still get trace and span ids (so trace context
//! is propagated and announced as usual) but record nothing and never leave the process. It is
//! the baseline against which the cost of tracing is measured.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer};
use opentelemetry_sdk::Resource;
use tracing::info;
use tracing_subscriber::EnvFilter;

use crate::error::DemoError;

/// How often the batch processor exports.
const SCHEDULED_DELAY: Duration = Duration::from_millis(200);
/// Spans buffered per process before the batch processor drops new ones.
const MAX_QUEUE: usize = 16_384;
/// Per-export HTTP timeout.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// One process's tracer provider. Call [`Telemetry::shutdown`] before exiting: it flushes.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Exports spans of `service_name` to the OTLP/HTTP endpoint `endpoint`
    /// (`http://host:4318`; `/v1/traces` is appended unless already there).
    pub fn init(service_name: &'static str, endpoint: &str) -> Result<Self, DemoError> {
        let url = traces_url(endpoint);
        let client = reqwest::blocking::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|error| telemetry_error("build the HTTP client", error))?;
        let exporter = SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|error| telemetry_error("build the OTLP exporter", error))?;

        let batch = BatchConfigBuilder::default()
            .with_scheduled_delay(SCHEDULED_DELAY)
            .with_max_queue_size(MAX_QUEUE)
            .build();
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource(service_name))
            .build();

        info!(service = service_name, endpoint = %url, "exporting spans");
        Ok(Self { provider })
    }

    /// Tracing off: every span is dropped when it starts (not recorded, not exported).
    pub fn disabled(service_name: &'static str) -> Self {
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .with_resource(resource(service_name))
            .build();
        info!(
            service = service_name,
            "tracing off: spans are neither recorded nor exported"
        );
        Self { provider }
    }

    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("wbpf-demo")
    }

    /// Exports every buffered span, then stops the exporter.
    pub fn shutdown(self) -> Result<(), DemoError> {
        self.provider
            .shutdown()
            .map_err(|error| telemetry_error("flush spans", error))
    }
}

fn resource(service_name: &'static str) -> Resource {
    Resource::builder()
        .with_service_name(service_name)
        .with_attribute(KeyValue::new("process.pid", i64::from(std::process::id())))
        .build()
}

/// The OTLP/HTTP traces URL for a base endpoint.
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second initialisation (tests) keeps the first subscriber, which is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn telemetry_error(action: &str, error: impl std::fmt::Display) -> DemoError {
    DemoError::Telemetry {
        reason: format!("cannot {action}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_appends_the_signal_path_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://127.0.0.1:4318/"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://127.0.0.1:4318/v1/traces"),
            "http://127.0.0.1:4318/v1/traces"
        );
    }
}
