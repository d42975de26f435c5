//! The long-lived objects a backend service keeps in the pool (postings, records).

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::error::DemoError;
use crate::pool::{ObjectId, Pool};

/// Objects allocated at start-up and released when dropped.
#[derive(Debug)]
pub(crate) struct WorkingSet {
    pool: Arc<Pool>,
    ids: Vec<ObjectId>,
}

impl WorkingSet {
    /// Allocates `count` objects of `size` bytes, each filled with a recognisable payload.
    pub(crate) fn populate(
        pool: Arc<Pool>,
        label: &str,
        count: usize,
        size: usize,
    ) -> Result<Self, DemoError> {
        let mut set = Self {
            pool,
            ids: Vec::with_capacity(count),
        };
        for index in 0..count {
            let id = set.pool.allocate()?;
            set.ids.push(id);
            set.pool
                .write(id, &payload(label, index, size), Duration::ZERO)?;
        }
        Ok(set)
    }

    /// The object a request key maps to.
    pub(crate) fn pick(&self, key: u32) -> ObjectId {
        self.ids[key as usize % self.ids.len()]
    }
}

impl Drop for WorkingSet {
    fn drop(&mut self) {
        for &id in &self.ids {
            if let Err(error) = self.pool.release(id) {
                warn!(%id, %error, "cannot release working-set object");
            }
        }
    }
}

/// `size` bytes starting with `label:index:` and then a repeating pattern.
pub(crate) fn payload(label: &str, index: usize, size: usize) -> Vec<u8> {
    let mut bytes = format!("{label}:{index}:").into_bytes();
    bytes.extend((0..size).map(|i| b'a' + (i % 26) as u8));
    bytes.truncate(size);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_requested_size_and_prefix() {
        let bytes = payload("record", 7, 64);
        assert_eq!(bytes.len(), 64);
        assert!(bytes.starts_with(b"record:7:abc"));
    }

    #[test]
    fn objects_are_released_on_drop() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = Arc::new(Pool::open_with_size(&dir.path().join("pool"), 1 << 20).expect("open"));
        let set = WorkingSet::populate(Arc::clone(&pool), "postings", 10, 100).expect("populate");
        assert_eq!(pool.allocated(), 10);
        assert_eq!(set.pick(3), set.pick(13));
        drop(set);
        assert_eq!(pool.allocated(), 0);
    }
}
