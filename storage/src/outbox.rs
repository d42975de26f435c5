//! The export queue: released spans wait here until every exporter has delivered them.
//!
//! Releasing a trace moves its spans from the span buffer into this queue in one write batch,
//! so a crash at any moment leaves each span in exactly one of the two places. Entries are
//! removed only after delivery, so a crash between delivery and removal delivers them again:
//! export is at least once, and a repeated span carries the same span id as its first copy.

use rocksdb::{Direction, IteratorMode, WriteBatch};

use crate::keys::{outbox_key, parse_outbox_key};
use crate::store::CF_OUTBOX;
use crate::{SpanStore, StorageError};

/// One queued group of spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub seq: u64,
    pub blob: Vec<u8>,
}

impl SpanStore {
    /// The oldest queued entries with a sequence number of at least `from_seq`: at most
    /// `max_entries`, and no more than `max_bytes` of blobs unless the first alone is larger.
    pub fn read_outbox(
        &self,
        from_seq: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<OutboxEntry>, StorageError> {
        let start = outbox_key(from_seq);
        let mode = IteratorMode::From(&start, Direction::Forward);
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        for item in self.db.iterator_cf(self.cf(CF_OUTBOX), mode) {
            let (key, value) = item.map_err(StorageError::io("read export queue"))?;
            let over = bytes.saturating_add(value.len()) > max_bytes;
            if entries.len() >= max_entries || (over && !entries.is_empty()) {
                break;
            }
            bytes = bytes.saturating_add(value.len());
            entries.push(OutboxEntry {
                seq: parse_outbox_key(&key)?,
                blob: value.into_vec(),
            });
        }
        Ok(entries)
    }

    /// Removes delivered entries from the queue.
    pub fn ack_outbox(&self, seqs: impl IntoIterator<Item = u64>) -> Result<(), StorageError> {
        let cf = self.cf(CF_OUTBOX);
        let mut batch = WriteBatch::default();
        for seq in seqs {
            batch.delete_cf(cf, outbox_key(seq));
        }
        self.db
            .write_opt(batch, &self.write_options)
            .map_err(StorageError::io("acknowledge export"))
    }

    /// How many entries are queued; reads the whole queue, so meant for start-up.
    pub fn outbox_len(&self) -> Result<u64, StorageError> {
        let mut len = 0;
        for item in self.db.iterator_cf(self.cf(CF_OUTBOX), IteratorMode::Start) {
            item.map_err(StorageError::io("count export queue"))?;
            len += 1;
        }
        Ok(len)
    }
}
