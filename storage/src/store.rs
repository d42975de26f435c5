//! [`SpanStore`]: the RocksDB database and its column families.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode, Options,
    ReadOptions, WriteBatch, WriteOptions, DB,
};

use crate::keys::{expiry_key, outbox_key, parse_expiry_key, parse_outbox_key, span_key};
use crate::write_set::Removal;
use crate::{Decision, StorageError, TraceId, WriteSet};

const CF_SPANS: &str = "spans";
const CF_EXPIRY: &str = "expiry";
const CF_DECISIONS: &str = "decisions";
pub(crate) const CF_OUTBOX: &str = "outbox";

/// How the database is opened.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// fsync the write-ahead log on every commit.
    pub sync_writes: bool,
    /// Skip the write-ahead log: faster commits, but a crash loses what was not yet flushed
    /// to disk, acknowledged or not. Off only for measurements and disposable data.
    pub disable_wal: bool,
}

/// The spans of one trace as read from the store, in arrival order.
#[derive(Debug, Default)]
pub struct StoredSpans {
    /// Sequence numbers of the stored groups, for [`WriteSet::remove_trace`].
    pub seqs: Vec<u64>,
    /// The encoded span groups.
    pub blobs: Vec<Vec<u8>>,
}

/// The span buffer. Cheap to share behind an `Arc`; RocksDB handles concurrency.
pub struct SpanStore {
    pub(crate) db: DB,
    pub(crate) write_options: WriteOptions,
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

        let families = [CF_SPANS, CF_EXPIRY, CF_DECISIONS, CF_OUTBOX]
            .into_iter()
            .map(|name| ColumnFamilyDescriptor::new(name, family_options(name)));
        std::fs::create_dir_all(path).map_err(|source| StorageError::CreateDir {
            path: path.to_owned(),
            source,
        })?;
        let db = DB::open_cf_descriptors(&db_options, path, families).map_err(|source| {
            let path = path.to_owned();
            // "While lock file: <path>/LOCK: Resource temporarily unavailable" when another
            // process has it open, "lock hold by current process" when this one does.
            let message: &str = source.as_ref();
            if message.contains("While lock file") || message.contains("lock hold by current") {
                StorageError::InUse { path }
            } else {
                StorageError::Open { path, source }
            }
        })?;

        let mut write_options = WriteOptions::default();
        write_options.set_sync(options.sync_writes);
        write_options.disable_wal(options.disable_wal);

        // Sequence numbers increase in arrival order, across restarts too: they start from the
        // wall clock in nanoseconds, and never below the newest export queued, because the
        // exporter reads its queue from the last key it delivered onwards.
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let mut store = Self {
            db,
            write_options,
            next_seq: AtomicU64::new(clock),
        };
        if let Some(last) = store.last_outbox_seq()? {
            store.next_seq = AtomicU64::new(clock.max(last.saturating_add(1)));
        }
        Ok(store)
    }

    /// Commits `set` as one write batch through the write-ahead log. Returns the sequence
    /// number each span group was stored under, in the order they were put: with these the
    /// caller can later remove a trace without reading it.
    pub fn commit(&self, set: WriteSet) -> Result<Vec<u64>, StorageError> {
        if set.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = WriteBatch::default();
        let spans = self.cf(CF_SPANS);
        let expiry = self.cf(CF_EXPIRY);
        let decisions = self.cf(CF_DECISIONS);
        let outbox = self.cf(CF_OUTBOX);

        let mut seqs = Vec::with_capacity(set.spans.len());
        for (trace, blob) in &set.spans {
            let seq = self.seq();
            batch.put_cf(spans, span_key(*trace, seq), blob);
            seqs.push(seq);
        }
        for (trace, first_seen_ms) in &set.new_traces {
            batch.put_cf(expiry, expiry_key(*first_seen_ms, *trace), []);
        }
        for (trace, decision) in &set.decisions {
            batch.put_cf(decisions, trace.0, decision.encode());
        }
        for blob in &set.outbox {
            batch.put_cf(outbox, outbox_key(self.seq()), blob);
        }
        for removal in &set.removals {
            self.remove(&mut batch, removal);
        }

        self.db
            .write_opt(batch, &self.write_options)
            .map_err(StorageError::io("write batch"))?;
        Ok(seqs)
    }

    /// Every stored span group of `trace`, in arrival order, with its sequence number.
    pub fn read_spans(&self, trace: TraceId) -> Result<StoredSpans, StorageError> {
        let mut read_options = ReadOptions::default();
        if let Some(end) = trace.successor() {
            read_options.set_iterate_upper_bound(end.to_vec());
        }
        let mode = IteratorMode::From(&trace.0, Direction::Forward);
        let iter = self
            .db
            .iterator_cf_opt(self.cf(CF_SPANS), read_options, mode);

        let mut stored = StoredSpans::default();
        for item in iter {
            let (key, value) = item.map_err(StorageError::io("read trace"))?;
            if !key.starts_with(&trace.0) {
                break;
            }
            let seq = key[16..].try_into().map(u64::from_be_bytes).map_err(|_| {
                StorageError::Corrupt {
                    what: "span key",
                    detail: format!("{} bytes", key.len()),
                }
            })?;
            stored.seqs.push(seq);
            stored.blobs.push(value.into_vec());
        }
        Ok(stored)
    }

    /// Every stored span group of `trace`, in arrival order.
    pub fn read_trace(&self, trace: TraceId) -> Result<Vec<Vec<u8>>, StorageError> {
        self.read_spans(trace).map(|stored| stored.blobs)
    }

    /// Drops every span of `trace` and its expiry entry.
    pub fn delete_trace(&self, trace: TraceId, first_seen_ms: u64) -> Result<(), StorageError> {
        let mut set = WriteSet::new();
        set.drop_trace(trace, first_seen_ms);
        self.commit(set).map(drop)
    }

    /// Buffered traces first seen in `[from_ms, before_ms)`, oldest first, at most `limit`.
    ///
    /// Starting from the oldest trace still buffered rather than from the first key skips the
    /// deletion markers of the traces already gone, which RocksDB would otherwise step over on
    /// every call until they are compacted away.
    pub fn expired(
        &self,
        from_ms: u64,
        before_ms: u64,
        limit: usize,
    ) -> Result<Vec<(u64, TraceId)>, StorageError> {
        let start = expiry_key(from_ms, TraceId([0; 16]));
        let mode = IteratorMode::From(&start, Direction::Forward);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_EXPIRY), mode) {
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
        self.expired(0, u64::MAX, usize::MAX)
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

    /// RocksDB's estimate of the buffered span bytes: live data on disk plus memtables.
    pub fn estimated_span_bytes(&self) -> Result<u64, StorageError> {
        let cf = self.cf(CF_SPANS);
        let mut total = 0u64;
        for property in [
            "rocksdb.estimate-live-data-size",
            "rocksdb.cur-size-all-mem-tables",
        ] {
            let value = self
                .db
                .property_int_value_cf(cf, property)
                .map_err(StorageError::io("read size estimate"))?;
            total = total.saturating_add(value.unwrap_or(0));
        }
        Ok(total)
    }

    fn seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    fn remove(&self, batch: &mut WriteBatch, removal: &Removal) {
        let spans = self.cf(CF_SPANS);
        match &removal.seqs {
            Some(seqs) => {
                for seq in seqs {
                    batch.delete_cf(spans, span_key(removal.trace, *seq));
                }
            }
            None => {
                let mut end = [0u8; 24];
                match removal.trace.successor() {
                    Some(next) => end[..16].copy_from_slice(&next),
                    None => end = [0xff; 24],
                }
                batch.delete_range_cf(spans, span_key(removal.trace, 0), end);
            }
        }
        let key = expiry_key(removal.first_seen_ms, removal.trace);
        batch.delete_cf(self.cf(CF_EXPIRY), key);
    }

    fn last_outbox_seq(&self) -> Result<Option<u64>, StorageError> {
        let mut iter = self.db.iterator_cf(self.cf(CF_OUTBOX), IteratorMode::End);
        match iter.next() {
            Some(item) => {
                let (key, _) = item.map_err(StorageError::io("read export queue"))?;
                parse_outbox_key(&key).map(Some)
            }
            None => Ok(None),
        }
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
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
