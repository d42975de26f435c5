//! The `exporters` section: where released traces go, and how they are delivered.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Where released traces go. Several exporters may be set at once; each receives every
/// released span.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportersConfig {
    pub otlp: Option<OtlpExporterConfig>,
    pub file: Option<FileExporterConfig>,
    /// Largest export request in protobuf bytes: bigger batches, and single traces bigger than
    /// this, are split, so a downstream's message limit (4 MiB by default in gRPC) is never
    /// reached.
    pub max_batch_bytes: usize,
    /// Backoff between attempts at a batch that failed with a retryable error. Released spans
    /// wait in the export queue on disk until they are delivered, across restarts too.
    pub retry: RetryConfig,
}

impl Default for ExportersConfig {
    fn default() -> Self {
        Self {
            otlp: None,
            file: None,
            max_batch_bytes: 4 * 1024 * 1024,
            retry: RetryConfig::default(),
        }
    }
}

/// Exponential backoff with jitter: the wait doubles from `initial_interval` up to
/// `max_interval`, each wait drawn between half and all of its nominal value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    #[serde(with = "crate::duration")]
    pub initial_interval: Duration,
    #[serde(with = "crate::duration")]
    pub max_interval: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_secs(30),
        }
    }
}

/// Downstream OTLP/gRPC endpoint (Jaeger, a collector).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpExporterConfig {
    /// For example `http://127.0.0.1:4317`.
    pub endpoint: String,
    /// Per-call timeout.
    #[serde(with = "crate::duration", default = "default_export_timeout")]
    pub timeout: Duration,
}

fn default_export_timeout() -> Duration {
    Duration::from_secs(10)
}

/// JSON-lines file: one OTLP/JSON `ExportTraceServiceRequest` per line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileExporterConfig {
    pub path: PathBuf,
}
