//! The wBPF gateway.
//!
//! OTLP arrives on the receivers (gRPC and HTTP), is validated and split per trace, and handed
//! to the buffer, a single thread that owns the RocksDB span store: it commits spans in group
//! write batches before the request is acknowledged, moves a trace to the export queue on disk
//! when a trigger span for it arrives, forwards late spans of released traces at once, deletes
//! untriggered traces when they age out of the retention window, and evicts the oldest whole
//! traces when the buffer is over its byte budget. In tail mode the same buffer
//! holds each trace for `decision_wait` and then evaluates the Collector's policies on it; in
//! head mode nothing is buffered and each trace is decided on arrival from its trace id.
//!
//! ```text
//! receivers ──Ingest──▶ buffer (RocksDB) ──released──▶ export queue ──▶ exporters
//! ```

mod admin;
mod auth;
mod buffer;
mod clock;
mod compare;
pub mod const_metrics;
mod correlate;
mod error;
mod export;
mod guard;
pub mod http_server;
mod lateral;
mod metrics;
mod mode;
mod policy_metrics;
mod receiver;
mod split;
mod stats;
mod stop;
mod throttle;
mod tls;

pub use compare::{CompareReader, CompareSnapshot, ModeFigures};
pub use error::GatewayError;
pub use stats::GatewayStats;

mod gateway;
pub use gateway::Gateway;
