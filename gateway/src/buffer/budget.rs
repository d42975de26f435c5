//! The byte budget of the buffer: past `storage.max_bytes`, the oldest undecided traces are
//! evicted, whole, until the buffer is back under 90 % of the budget.
//!
//! Eviction is the last resort, not the normal path: the retention window deletes traces long
//! before in a buffer sized for its load. Each eviction is counted (`traces_evicted`) and logged
//! at most once a minute, with the total since.

use std::time::{Duration, Instant};

use tracing::warn;
use wbpf_storage::WriteSet;

use super::Buffer;
use crate::stats::Counters;
use crate::GatewayError;

/// Traces evicted per RocksDB batch.
const EVICT_BATCH: usize = 1_024;
const WARN_EVERY: Duration = Duration::from_secs(60);

/// When eviction was last reported, and how many traces were evicted since.
#[derive(Debug, Default)]
pub(super) struct EvictionLog {
    last_warned: Option<Instant>,
    unreported: u64,
}

impl Buffer {
    /// Evicts the oldest undecided traces while the buffer is over its byte budget.
    pub(super) fn enforce_budget(&mut self) -> Result<(), GatewayError> {
        if self.buffered_bytes <= self.parts.max_bytes {
            return Ok(());
        }
        let target = self.parts.max_bytes / 10 * 9;
        let mut evicted = 0u64;
        while self.buffered_bytes > target {
            let oldest = self
                .store
                .expired(self.expiry_floor, u64::MAX, EVICT_BATCH)?;
            if oldest.is_empty() {
                break;
            }
            let mut set = WriteSet::new();
            for (first_seen, trace) in &oldest {
                if self.buffered_bytes <= target {
                    break;
                }
                match self.unbuffer(*trace) {
                    Some(entry) => entry.remove_into(*trace, &mut set),
                    None => set.drop_trace(*trace, *first_seen),
                }
                self.expiry_floor = *first_seen;
                evicted += 1;
            }
            self.store.commit(set)?;
        }
        Counters::add(&self.counters().traces_evicted, evicted);
        self.report_eviction(evicted);
        Ok(())
    }

    fn report_eviction(&mut self, evicted: u64) {
        let log = &mut self.eviction_log;
        log.unreported += evicted;
        let due = log.last_warned.is_none_or(|at| at.elapsed() >= WARN_EVERY);
        if log.unreported > 0 && due {
            warn!(
                evicted = log.unreported,
                budget = self.parts.max_bytes,
                "buffer over its byte budget: oldest undecided traces evicted"
            );
            log.unreported = 0;
            log.last_warned = Some(Instant::now());
        }
    }
}
