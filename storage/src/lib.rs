//! The per-trace span buffer and the export queue, on RocksDB.
//!
//! Spans are stored as opaque blobs keyed by `trace id ‖ sequence number`, so one prefix scan
//! reads a whole trace. Alongside, an expiry index keyed by `first-seen time ‖ trace id` lets
//! the sweeper find aged-out traces without scanning spans, a decisions table remembers which
//! traces were kept so that late spans follow the decision across restarts, and the export
//! queue ([`outbox`]) holds released spans until they are delivered.
//!
//! Every mutation goes through [`WriteSet`], committed as one RocksDB write batch: the caller
//! acknowledges a request only after [`SpanStore::commit`] returned.

mod decision;
mod error;
mod keys;
pub mod outbox;
mod store;
mod write_set;

pub use decision::Decision;
pub use error::StorageError;
pub use keys::TraceId;
pub use outbox::OutboxEntry;
pub use store::{SpanStore, StoreOptions, StoredSpans};
pub use write_set::WriteSet;
