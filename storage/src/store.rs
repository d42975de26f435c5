//! [`SpanStore`]: the RocksDB database and its column families.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode, Options,
    ReadOptions, WriteBatch, WriteOptions, DB,
};

use crate::keys::{expiry_key, parse_expiry_key, span_key};
use crate::{StorageError, TraceId, WriteSet};

const CF_SPANS: &str = "spans";
const CF_EXPIRY: &str = "expiry";
const CF_DECISIONS: &str = "decisions";

/// A recorded sampling decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The trace was released; its late spans are forwarded at once.
    Keep { decided_at_ms: u64 },
    /// The trace was sampled out; its late spans are dropped.
    Drop { decided_at_ms: u64 },
}

impl Decision {
    /// When the decision was made, in ms since the epoch.
    pub fn decided_at_ms(self) -> u64 {
        match self {
            Decision::Keep { decided_at_ms } | Decision::Drop { decided_at_ms } => decided_at_ms,
        }
    }

    /// Whether the trace is kept.
    pub fn is_keep(self) -> bool {
        matches!(self, Decision::Keep { .. })
    }

    fn encode(self) -> [u8; 9] {
        let mut value = [0u8; 9];
        value[0] = if self.is_keep() { 1 } else { 2 };
        value[1..].copy_from_slice(&self.decided_at_ms().to_be_bytes());
        value
    }

    fn decode(value: &[u8]) -> Result<Self, StorageError> {
        match value {
            [kind @ (1 | 2), rest @ ..] if rest.len() == 8 => {
                let ms = u64::from_be_bytes(rest.try_into().expect("length checked above"));
                Ok(if *kind == 1 {
                    Decision::Keep { decided_at_ms: ms }
                } else {
                    Decision::Drop { decided_at_ms: ms }
                })
            }
            _ => Err(StorageError::Corrupt {
                what: "decision",
                detail: format!("unexpected value of {} bytes", value.len()),
            }),
        }
    }
}

/// How the database is opened.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// fsync the write-ahead log on every commit.
    pub sync_writes: bool,
}

/// The span buffer. Cheap to share behind an `Arc`; RocksDB handles concurrency.
pub struct SpanStore {
    db: DB,
    write_options: WriteOptions,
    next_seq: AtomicU64,
}

impl SpanStore {
    /// Opens or creates the database at `path`.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Self, StorageError> {
        let mut db_options = Options::default();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        db_options.set_compression_type(DBCompressionType::Lz4);
        db_options.increase_parallelism(2);

        let families = [CF_SPANS, CF_EXPIRY, CF_DECISIONS]
            .into_iter()
            .map(|name| ColumnFamilyDescriptor::new(name, family_options(name)));
        let db = DB::open_cf_descriptors(&db_options, path, families).map_err(|source| {
            StorageError::Open {
                path: path.to_owned(),
                source,
            }
        })?;

        let mut write_options = WriteOptions::default();
        write_options.set_sync(options.sync_writes);

        // Sequence numbers only need to be unique within a trace and increase in arrival
        // order; starting from the wall clock in nanoseconds keeps them increasing across
        // restarts without a read on startup.
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();

        Ok(Self {
            db,
            write_options,
            next_seq: AtomicU64::new(start),
        })
    }

    /// Commits `set` as one write batch through the write-ahead log.
    pub fn commit(&self, set: WriteSet) -> Result<(), StorageError> {
        if set.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        let spans = self.cf(CF_SPANS);
        let expiry = self.cf(CF_EXPIRY);
        let decisions = self.cf(CF_DECISIONS);

        for (trace, blob) in &set.spans {
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            batch.put_cf(spans, span_key(*trace, seq), blob);
        }
        for (trace, first_seen_ms) in &set.new_traces {
            batch.put_cf(expiry, expiry_key(*first_seen_ms, *trace), []);
        }
        for (trace, decision) in &set.decisions {
            batch.put_cf(decisions, trace.0, decision.encode());
        }

        self.db
            .write_opt(batch, &self.write_options)
            .map_err(StorageError::io("write batch"))
    }

    /// Every stored span blob of `trace`, in arrival order.
    pub fn read_trace(&self, trace: TraceId) -> Result<Vec<Vec<u8>>, StorageError> {
        let mut read_options = ReadOptions::default();
        if let Some(end) = trace.successor() {
            read_options.set_iterate_upper_bound(end.to_vec());
        }
        let mode = IteratorMode::From(&trace.0, Direction::Forward);
        let iter = self
            .db
            .iterator_cf_opt(self.cf(CF_SPANS), read_options, mode);

        let mut blobs = Vec::new();
        for item in iter {
            let (key, value) = item.map_err(StorageError::io("read trace"))?;
            if !key.starts_with(&trace.0) {
                break;
            }
            blobs.push(value.into_vec());
        }
        Ok(blobs)
    }

    /// Drops every span of `trace` and its expiry entry.
    pub fn delete_trace(&self, trace: TraceId, first_seen_ms: u64) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        let mut end = [0u8; 24];
        match trace.successor() {
            Some(next) => end[..16].copy_from_slice(&next),
            None => end = [0xff; 24],
        }
        batch.delete_range_cf(self.cf(CF_SPANS), span_key(trace, 0), end);
        batch.delete_cf(self.cf(CF_EXPIRY), expiry_key(first_seen_ms, trace));
        self.db
            .write_opt(batch, &self.write_options)
            .map_err(StorageError::io("delete trace"))
    }

    /// Buffered traces first seen before `before_ms`, oldest first, at most `limit`.
    pub fn expired(
        &self,
        before_ms: u64,
        limit: usize,
    ) -> Result<Vec<(u64, TraceId)>, StorageError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_EXPIRY), IteratorMode::Start) {
            let (key, _) = item.map_err(StorageError::io("scan expiry index"))?;
            let (ms, trace) = parse_expiry_key(&key).ok_or_else(|| StorageError::Corrupt {
                what: "expiry key",
                detail: format!("{} bytes", key.len()),
            })?;
            if ms >= before_ms || out.len() >= limit {
                break;
            }
            out.push((ms, trace));
        }
        Ok(out)
    }

    /// Every buffered trace with its first-seen time, to rebuild in-memory state on start.
    pub fn buffered_traces(&self) -> Result<Vec<(u64, TraceId)>, StorageError> {
        self.expired(u64::MAX, usize::MAX)
    }

    /// The recorded decision for `trace`, if any.
    pub fn decision(&self, trace: TraceId) -> Result<Option<Decision>, StorageError> {
        let value = self
            .db
            .get_pinned_cf(self.cf(CF_DECISIONS), trace.0)
            .map_err(StorageError::io("read decision"))?;
        value.map(|v| Decision::decode(&v)).transpose()
    }

    /// Forgets decisions made before `before_ms`; returns how many were dropped.
    pub fn prune_decisions(&self, before_ms: u64) -> Result<usize, StorageError> {
        let cf = self.cf(CF_DECISIONS);
        let mut batch = WriteBatch::default();
        let mut pruned = 0;
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item.map_err(StorageError::io("scan decisions"))?;
            if Decision::decode(&value)?.decided_at_ms() < before_ms {
                batch.delete_cf(cf, key);
                pruned += 1;
            }
        }
        if pruned > 0 {
            self.db
                .write_opt(batch, &self.write_options)
                .map_err(StorageError::io("prune decisions"))?;
        }
        Ok(pruned)
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("every column family is created by open()")
    }
}

fn family_options(name: &str) -> Options {
    let mut options = Options::default();
    options.set_compression_type(DBCompressionType::Lz4);
    if name == CF_SPANS {
        // Span blobs are written once and read at most once: larger write buffers mean
        // fewer flushes, and most traces are deleted before they are ever compacted.
        options.set_write_buffer_size(64 * 1024 * 1024);
    }
    options
}
