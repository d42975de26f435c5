//! The OTLP/gRPC pipeline that carries trigger spans to the gateway, with the credentials and
//! TLS settings of `probe.gateway`, so a gateway that asks for them can refuse strangers.
//!
//! A batch span processor (its own thread, exporting through tonic on the caller's tokio
//! runtime) in front of the OTLP exporter, wrapped so the probe can count what the gateway
//! accepted and what was lost. Triggers should reach the gateway quickly, so the batch delay is
//! short. `force_flush` and `shutdown` block until the export finishes: call them off the
//! async reactor.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, SpanData,
    SpanExporter,
};
use opentelemetry_sdk::Resource;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, ClientTlsConfig as TonicTlsConfig, Identity};
use tracing::error;
use wbpf_config::{AuthConfig, ClientTlsConfig, GatewayClientConfig};

use crate::stats::Counters;
use crate::ProbeError;

const SERVICE_NAME: &str = "wbpf-probe";
const BATCH_DELAY: Duration = Duration::from_millis(200);
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the tracer provider exporting to `gateway`, with its credentials and TLS settings.
/// Must run inside a tokio runtime, which must outlive the provider: the gRPC channel lives on
/// it.
pub fn provider(
    gateway: &GatewayClientConfig,
    counters: Arc<Counters>,
) -> Result<SdkTracerProvider, ProbeError> {
    let endpoint = &gateway.endpoint;
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT);
    if let Some(auth) = &gateway.auth {
        builder = builder.with_metadata(metadata(auth)?);
    }
    if let Some(tls) = &gateway.tls {
        builder = builder.with_tls_config(tls_config(endpoint, tls)?);
    }
    let otlp = builder.build().map_err(|source| ProbeError::Exporter {
        gateway: endpoint.clone(),
        source,
    })?;
    let exporter = CountingExporter {
        inner: otlp,
        counters,
        gateway: endpoint.clone(),
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

/// The credentials sent with every export, as gRPC metadata.
fn metadata(auth: &AuthConfig) -> Result<MetadataMap, ProbeError> {
    let invalid = |what: &str| ProbeError::GatewayAuth {
        message: format!("{what} cannot be sent as gRPC metadata"),
    };
    let mut metadata = MetadataMap::new();
    if let Some(token) = &auth.bearer_token {
        let value = MetadataValue::try_from(format!("Bearer {}", token.expose()))
            .map_err(|_| invalid("bearer_token"))?;
        metadata.insert("authorization", value);
    }
    if let Some(key) = &auth.api_key {
        let name = MetadataKey::from_bytes(key.header.to_ascii_lowercase().as_bytes())
            .map_err(|_| invalid("api_key.header"))?;
        let value = MetadataValue::try_from(key.value.expose()).map_err(|_| invalid("api_key"))?;
        metadata.insert(name, value);
    }
    Ok(metadata)
}

/// The gateway's CA, and the probe's certificate when the gateway asks for one (mTLS).
fn tls_config(gateway: &str, tls: &ClientTlsConfig) -> Result<TonicTlsConfig, ProbeError> {
    let read = |file: &Path| {
        std::fs::read(file).map_err(|source| ProbeError::GatewayTls {
            gateway: gateway.to_owned(),
            file: file.to_path_buf(),
            source,
        })
    };
    let ca = Certificate::from_pem(read(&tls.ca_file)?);
    let mut config = TonicTlsConfig::new().ca_certificate(ca);
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(config)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use opentelemetry::trace::{Span as _, Tracer as _};
    use wbpf_config::Secret;

    use super::*;

    const TOKEN: &str = "probe-token-4e2a";

    /// Sends one span through the probe's pipeline; `(sent, failed)` as the probe counted them.
    async fn send_one(gateway: &GatewayClientConfig) -> (u64, u64) {
        let counters = Arc::new(Counters::default());
        let provider = provider(gateway, Arc::clone(&counters)).expect("provider");
        tracer(&provider).start("wbpf.trigger test").end();
        // Flushing blocks until the export is answered: off the reactor.
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown());
        let _ = flushed.await.expect("flush thread");
        let count = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        (
            count(&counters.triggers_sent),
            count(&counters.triggers_failed),
        )
    }

    /// Runs the openssl CLI in `dir`.
    fn openssl(dir: &std::path::Path, args: &[&str]) {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl CLI runs");
        assert!(output.status.success(), "openssl {args:?}: {output:?}");
    }

    /// A CA, a certificate for 127.0.0.1 and a client certificate signed by it, in `dir`.
    fn certificates(dir: &std::path::Path) {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let ca = [
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=test CA",
        ];
        openssl(dir, &[&["req", "-x509"][..], &ec, &ca].concat());
        for (serial, name, extensions) in [
            ("1", "server", "subjectAltName=IP:127.0.0.1\n"),
            ("2", "client", "extendedKeyUsage=clientAuth\n"),
        ] {
            std::fs::write(dir.join(format!("{name}.ext")), extensions).expect("write");
            let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
            let request = ["-keyout", &key, "-out", &csr, "-subj", "/CN=test"];
            openssl(dir, &[&["req"][..], &ec, &request].concat());
            let (ext, pem) = (format!("{name}.ext"), format!("{name}.pem"));
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-set_serial",
                    serial,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                    "-out",
                    &pem,
                ],
            );
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_probe_trusts_the_configured_ca_and_presents_its_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        certificates(dir.path());
        let file = |name: &str| dir.path().join(name);
        let text = format!(
            "receivers:\n  grpc: 127.0.0.1:0\n  http: 127.0.0.1:0\n  tls:\n    \
             cert_file: {}\n    key_file: {}\n    client_ca_file: {}\n\
             admin: null\nstorage: {{path: {}}}\n",
            file("server.pem").display(),
            file("server.key").display(),
            file("ca.pem").display(),
            file("db").display(),
        );
        let config = wbpf_config::parse_str(&text, "tls.yaml").expect("valid config");
        let gateway = wbpf_gateway::Gateway::start(&config.gateway)
            .await
            .expect("gateway");
        let port = gateway.grpc_addr().port();

        let plaintext = GatewayClientConfig::from(format!("http://127.0.0.1:{port}"));
        assert_eq!(
            send_one(&plaintext).await,
            (0, 1),
            "plaintext to a TLS port"
        );
        let mut client = GatewayClientConfig::from(format!("https://127.0.0.1:{port}"));
        client.tls = Some(ClientTlsConfig {
            ca_file: file("ca.pem"),
            cert_file: None,
            key_file: None,
        });
        assert_eq!(
            send_one(&client).await,
            (0, 1),
            "without a client certificate"
        );
        client.tls = Some(ClientTlsConfig {
            ca_file: file("ca.pem"),
            cert_file: Some(file("client.pem")),
            key_file: Some(file("client.key")),
        });
        assert_eq!(
            send_one(&client).await,
            (1, 0),
            "with the client certificate"
        );

        let stats = gateway.shutdown().await.expect("shutdown");
        assert_eq!(stats.spans_received, 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_gateway_asking_for_a_token_refuses_probes_without_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "receivers:\n  grpc: 127.0.0.1:0\n  http: 127.0.0.1:0\n  \
             auth: {{bearer_token: {TOKEN}}}\nadmin: null\nstorage: {{path: {}}}\n",
            dir.path().join("db").display()
        );
        let config = wbpf_config::parse_str(&text, "auth.yaml").expect("valid config");
        let gateway = wbpf_gateway::Gateway::start(&config.gateway)
            .await
            .expect("gateway");
        let mut client = GatewayClientConfig::from(format!("http://{}", gateway.grpc_addr()));

        assert_eq!(send_one(&client).await, (0, 1), "without the token");
        client.auth = Some(AuthConfig {
            bearer_token: Some(Secret::new(TOKEN)),
            api_key: None,
        });
        assert_eq!(send_one(&client).await, (1, 0), "with the token");

        let stats = gateway.shutdown().await.expect("shutdown");
        assert_eq!((stats.requests_rejected, stats.spans_received), (1, 1));
    }
}
