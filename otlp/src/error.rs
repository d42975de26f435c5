//! The one error type of the OTLP input crate.

use thiserror::Error;

/// Why a request cannot be taken; each message tells the sender what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OtlpError {
    /// The body is not a protobuf `ExportTraceServiceRequest`.
    #[error("invalid OTLP protobuf body: {0}")]
    Protobuf(String),
    /// The body is not an OTLP/JSON `ExportTraceServiceRequest`; `hint`, when not empty, says
    /// what is likely wrong (it starts with a space).
    #[error("invalid OTLP/JSON body: {message}{hint}")]
    Json { message: String, hint: String },
    /// The spans grouped per trace, each group repeating its resource and scope, would take
    /// more than `max_bytes`.
    #[error(
        "request exceeds {max_bytes} bytes once split per trace (each trace repeats its \
         resource and scope); send fewer traces per request"
    )]
    SplitTooLarge { max_bytes: usize },
}
