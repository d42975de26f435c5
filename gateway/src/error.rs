//! The one error type of the gateway crate.

use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;
use wbpf_otlp::OtlpError;

#[derive(Debug, Error)]
pub enum GatewayError {
    /// The span store failed.
    #[error(transparent)]
    Storage(#[from] wbpf_storage::StorageError),
    /// The request is malformed; the message names what is wrong. Never retried by clients.
    #[error("{0}")]
    InvalidRequest(String),
    /// The request is larger than the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// The client did not send the whole request body in time.
    #[error("the request body did not arrive within {:?} (receivers.read_timeout)", .0)]
    SlowBody(std::time::Duration),
    /// A group commit failed; the requests in it were not acknowledged.
    #[error("storing spans failed: {0}")]
    Commit(String),
    /// The sampling configuration cannot be built into policies.
    #[error("sampling: {0}")]
    Sampler(String),
    /// A receiver could not listen.
    #[error("cannot listen on {addr} for {receiver}")]
    Bind {
        receiver: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A listener's TLS files cannot be used; `key` is their config key path.
    #[error("{key}: {}: {message}", file.display())]
    Tls {
        key: String,
        file: PathBuf,
        message: String,
    },
    /// A listener's credentials cannot be used.
    #[error("{listener} auth: {message}")]
    Auth {
        listener: &'static str,
        message: String,
    },
    /// The file exporter could not open its output.
    #[error("cannot open export file {path}")]
    ExportFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The OTLP exporter endpoint is not a valid URI.
    #[error("invalid OTLP exporter endpoint {endpoint:?}: {message}")]
    ExporterEndpoint { endpoint: String, message: String },
    /// More request bytes are waiting to be committed than `receivers.max_in_flight_bytes`:
    /// the client should retry after a pause.
    #[error("the gateway is overloaded ({in_flight_limit} request bytes in flight); retry later")]
    Overloaded { in_flight_limit: usize },
    /// The buffer thread is gone (the gateway is shutting down).
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// A background thread could not be started or panicked.
    #[error("gateway thread {name}: {message}")]
    Thread { name: &'static str, message: String },
}

/// Bad bodies are invalid requests; a split over its bound is a request too large.
impl From<OtlpError> for GatewayError {
    fn from(err: OtlpError) -> Self {
        match err {
            OtlpError::Protobuf(_) | OtlpError::Json { .. } => {
                Self::InvalidRequest(err.to_string())
            }
            OtlpError::SplitTooLarge { .. } => Self::TooLarge(err.to_string()),
        }
    }
}
