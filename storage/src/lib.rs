//! The per-trace span buffer, on RocksDB.
//!
//! Spans are stored as opaque blobs keyed by `trace id ‖ sequence number`, so one prefix scan
//! reads a whole trace and one range delete drops it. Alongside, an expiry index keyed by
//! `first-seen time ‖ trace id` lets the sweeper find aged-out traces without scanning spans,
//! and a decisions table remembers which traces were kept so that late spans follow the
//! decision across restarts.
//!
//! Every mutation goes through [`WriteSet`], committed as one RocksDB write batch: the caller
//! acknowledges a request only after [`SpanStore::commit`] returned.

mod error;
mod keys;
mod store;
mod write_set;

pub use error::StorageError;
pub use keys::TraceId;
pub use store::{Decision, SpanStore, StoreOptions};
pub use write_set::WriteSet;
