//! Recent decisions in memory, so late spans follow them without a RocksDB read.
//!
//! As in the Collector's `decision_cache`, kept and dropped traces have caches of their own
//! sizes: a flood of dropped traces cannot push out the few kept ones, whose late spans matter
//! most. A miss costs a read of the decision stored in RocksDB, never a wrong decision.

use std::time::Duration;

use moka::sync::Cache;
use wbpf_storage::TraceId;

/// How many decisions of each kind are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionCacheSizes {
    pub sampled: u64,
    pub not_sampled: u64,
}

pub(super) struct DecisionCache {
    sampled: Cache<TraceId, ()>,
    not_sampled: Cache<TraceId, ()>,
}

impl DecisionCache {
    /// Caches of `sizes`, each entry forgotten `ttl` after it was made.
    pub(super) fn new(sizes: DecisionCacheSizes, ttl: Duration) -> Self {
        let cache = |size| {
            Cache::builder()
                .max_capacity(size)
                .time_to_live(ttl)
                .build()
        };
        Self {
            sampled: cache(sizes.sampled),
            not_sampled: cache(sizes.not_sampled),
        }
    }

    /// The remembered decision on `trace`: `Some(true)` to keep.
    pub(super) fn get(&self, trace: &TraceId) -> Option<bool> {
        if self.sampled.contains_key(trace) {
            Some(true)
        } else if self.not_sampled.contains_key(trace) {
            Some(false)
        } else {
            None
        }
    }

    /// Remembers a decision; a trace kept after it was dropped (a late trigger) is kept.
    pub(super) fn insert(&self, trace: TraceId, keep: bool) {
        if keep {
            self.not_sampled.invalidate(&trace);
            self.sampled.insert(trace, ());
        } else {
            self.not_sampled.insert(trace, ());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(n: u16) -> TraceId {
        let mut id = [0; 16];
        id[..2].copy_from_slice(&n.to_be_bytes());
        TraceId(id)
    }

    fn cache_of_ten() -> DecisionCache {
        let sizes = DecisionCacheSizes {
            sampled: 10,
            not_sampled: 10,
        };
        DecisionCache::new(sizes, Duration::from_secs(60))
    }

    #[test]
    fn dropped_traces_do_not_evict_kept_ones() {
        let cache = cache_of_ten();
        cache.insert(trace(0), true);
        for n in 1..2_000 {
            cache.insert(trace(n), false);
        }
        cache.sampled.run_pending_tasks();
        cache.not_sampled.run_pending_tasks();
        assert_eq!(cache.get(&trace(0)), Some(true));
        assert!(cache.not_sampled.entry_count() <= 10);
    }

    #[test]
    fn a_later_keep_overrides_a_drop() {
        let cache = cache_of_ten();
        cache.insert(trace(1), false);
        assert_eq!(cache.get(&trace(1)), Some(false));
        cache.insert(trace(1), true);
        assert_eq!(cache.get(&trace(1)), Some(true));
        assert_eq!(cache.get(&trace(2)), None);
    }
}
