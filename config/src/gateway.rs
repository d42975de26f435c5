//! The gateway's sections: receivers, storage, sampling and exporters.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::ExportersConfig;

/// Where the gateway listens for OTLP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiversConfig {
    /// OTLP/gRPC `TraceService/Export`.
    pub grpc: SocketAddr,
    /// OTLP/HTTP `POST /v1/traces`, protobuf or JSON.
    pub http: SocketAddr,
    /// Largest accepted request body after decompression, in bytes.
    pub max_request_bytes: usize,
    /// Bytes of requests accepted and not yet committed, across all clients: past it, new
    /// requests are refused with HTTP 503 + `Retry-After` or gRPC `UNAVAILABLE` + `RetryInfo`,
    /// which OTLP exporters retry, instead of queueing without bound.
    pub max_in_flight_bytes: usize,
    /// How long a client may take to send a request's headers over HTTP, and on a kept-alive
    /// connection to start its next request (the Collector's `read_header_timeout`); over gRPC,
    /// to send its first bytes.
    #[serde(with = "crate::duration")]
    pub read_header_timeout: Duration,
    /// How long a client may take to send a request's body over HTTP once its headers are in
    /// (408 past it); how long a gRPC call may take before it is cancelled.
    #[serde(with = "crate::duration")]
    pub read_timeout: Duration,
    /// Credentials every OTLP request must carry; none asked when absent.
    pub auth: Option<crate::AuthConfig>,
    /// Credentials of the probes: when set, only requests carrying them may send trigger spans
    /// (spans with `wbpf.trigger`); other requests' trigger spans are rejected. They also admit
    /// a request where `auth` asks for credentials.
    pub trigger_auth: Option<crate::AuthConfig>,
    /// TLS on both receivers; plaintext when absent.
    pub tls: Option<crate::TlsConfig>,
}

impl Default for ReceiversConfig {
    fn default() -> Self {
        Self {
            grpc: SocketAddr::from(([127, 0, 0, 1], 4317)),
            http: SocketAddr::from(([127, 0, 0, 1], 4318)),
            max_request_bytes: 16 * 1024 * 1024,
            max_in_flight_bytes: 64 * 1024 * 1024,
            read_header_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            auth: None,
            trigger_auth: None,
            tls: None,
        }
    }
}

/// The on-disk span buffer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// RocksDB directory; created if missing.
    pub path: PathBuf,
    /// How long an untriggered trace is kept, counted from its first span.
    #[serde(with = "crate::duration")]
    pub retention: Duration,
    /// fsync the write-ahead log before acknowledging (survives power loss, not only crashes).
    pub sync_writes: bool,
    /// Budget for buffered span bytes (protobuf): past it, the oldest undecided traces are
    /// evicted, whole, and counted in `traces_evicted`.
    pub max_bytes: u64,
    /// Cap on one undecided trace's buffered bytes: later spans of a trace at its cap are
    /// dropped and counted in `spans_over_trace_cap`, so one huge trace cannot fill the budget.
    pub max_trace_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("wbpf-data"),
            retention: Duration::from_secs(600),
            sync_writes: false,
            max_bytes: 8 * 1024 * 1024 * 1024,
            max_trace_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Which sampling mode decides what leaves the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SamplingMode {
    /// Keep exactly the traces that a trigger span named.
    #[default]
    Triggered,
    /// Consistent probability sampling by trace id (`sampling.head`).
    Head,
    /// The Collector's tail-sampling policies (`sampling.tail_sampling`).
    Tail,
}

/// Sampling settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    pub mode: SamplingMode,
    /// How often expired traces are swept from the buffer.
    #[serde(with = "crate::duration")]
    pub sweep_interval: Duration,
    /// Number of decided trace ids remembered in memory for late spans.
    pub decision_cache_size: u64,
    /// Settings of head sampling.
    pub head: Option<crate::HeadSamplingConfig>,
    /// A `tail_sampling:` block as written for the OpenTelemetry Collector.
    pub tail_sampling: Option<crate::TailSamplingConfig>,
    /// Tail-sampling policies (the Collector's syntax) that trigger a trace like a probe does,
    /// as soon as spans that satisfy them arrive.
    pub trigger_rules: Vec<crate::PolicyConfig>,
    /// Modes evaluated in shadow on the same stream: counted per mode, never exported (only
    /// `mode` exports).
    pub compare: Vec<SamplingMode>,
    /// What marks an edge case for the figures of `compare`.
    pub edge_cases: crate::EdgeCasesConfig,
    /// Triggers that also keep traces sharing a resource with the triggered one.
    pub lateral: Option<crate::LateralConfig>,
    /// Matching triggers without trace context to spans by process, thread and time.
    pub correlation: crate::CorrelationConfig,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            mode: SamplingMode::Triggered,
            sweep_interval: Duration::from_secs(1),
            decision_cache_size: 100_000,
            head: None,
            tail_sampling: None,
            trigger_rules: Vec::new(),
            compare: Vec::new(),
            edge_cases: crate::EdgeCasesConfig::default(),
            lateral: None,
            correlation: crate::CorrelationConfig::default(),
        }
    }
}

/// The admin HTTP port: `/metrics` and `POST /v1/triggers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Loopback by default: the admin endpoints are not for the public interface.
    pub listen: SocketAddr,
    /// Credentials every admin request must carry; none asked when absent.
    pub auth: Option<crate::AuthConfig>,
    /// TLS on the admin port; plaintext when absent.
    pub tls: Option<crate::TlsConfig>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            auth: None,
            tls: None,
        }
    }
}

impl SamplingMode {
    /// The mode's name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            SamplingMode::Triggered => "triggered",
            SamplingMode::Head => "head",
            SamplingMode::Tail => "tail",
        }
    }
}

impl SamplingConfig {
    /// The trigger rules as a policy block, for building and validating them.
    pub fn trigger_rules_block(&self) -> Option<crate::TailSamplingConfig> {
        (!self.trigger_rules.is_empty()).then(|| crate::TailSamplingConfig {
            policies: self.trigger_rules.clone(),
            ..Default::default()
        })
    }
}

/// Everything the gateway reads.
#[derive(Debug, Clone, Default)]
pub struct GatewayConfig {
    pub receivers: ReceiversConfig,
    pub storage: StorageConfig,
    pub sampling: SamplingConfig,
    pub exporters: ExportersConfig,
    /// `None` turns the admin port off.
    pub admin: Option<AdminConfig>,
}
