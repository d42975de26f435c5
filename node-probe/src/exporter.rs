//! The OTLP/gRPC pipeline that carries trigger spans to the gateway.
//!
//! A batch span processor (its own thread, exporting through tonic on the caller's tokio
//! runtime) in front of the OTLP exporter, wrapped so the probe can count what the gateway
//! accepted and what was lost. Triggers should reach the gateway quickly, so the batch delay is
//! short. `force_flush` and `shutdown` block until the export finishes: call them off the
//! async reactor.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, SpanData,
    SpanExporter,
};
use opentelemetry_sdk::Resource;
use tracing::error;

use crate::stats::Counters;
use crate::ProbeError;

const SERVICE_NAME: &str = "wbpf-probe";
const BATCH_DELAY: Duration = Duration::from_millis(200);
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the tracer provider exporting to `gateway`. Must run inside a tokio runtime, which
/// must outlive the provider: the gRPC channel lives on it.
pub fn provider(gateway: &str, counters: Arc<Counters>) -> Result<SdkTracerProvider, ProbeError> {
    let otlp = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(gateway)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|source| ProbeError::Exporter {
            gateway: gateway.to_owned(),
            source,
        })?;
    let exporter = CountingExporter {
        inner: otlp,
        counters,
        gateway: gateway.to_owned(),
    };

    let batch = BatchConfigBuilder::default()
        .with_scheduled_delay(BATCH_DELAY)
        .build();
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch)
        .build();
    let resource = Resource::builder()
        .with_service_name(SERVICE_NAME)
        .with_attribute(KeyValue::new("host.name", host_name()))
        .build();

    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        // Triggers are always recorded, whatever OTEL_TRACES_SAMPLER says.
        .with_sampler(Sampler::AlwaysOn)
        .with_resource(resource)
        .build())
}

/// The tracer trigger spans are created with.
pub fn tracer(provider: &SdkTracerProvider) -> SdkTracer {
    use opentelemetry::trace::TracerProvider as _;

    let scope = InstrumentationScope::builder(SERVICE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    provider.tracer_with_scope(scope)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Counts spans per export outcome; an export failure loses its spans, so it logs at ERROR.
#[derive(Debug)]
struct CountingExporter<E> {
    inner: E,
    counters: Arc<Counters>,
    gateway: String,
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => Counters::add(&self.counters.triggers_sent, spans),
            Err(err) => {
                Counters::add(&self.counters.triggers_failed, spans);
                error!(gateway = %self.gateway, spans, error = %err, "trigger spans lost");
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
