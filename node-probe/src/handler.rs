//! What happens to each ring-buffer record (or event found by a userspace scan): decode,
//! count, emit a trigger span.

use std::sync::Arc;

use opentelemetry_sdk::trace::SdkTracer;
use tracing::{debug, warn};

use crate::clock::KtimeClock;
use crate::events::Event;
use crate::stats::Counters;
use crate::table::{self, Table};
use crate::trigger;

/// Owned by one ring-buffer reader task (one per loaded object) or one scanning task.
pub struct EventHandler {
    pub tracer: SdkTracer,
    pub clock: KtimeClock,
    /// Every running detector: events name detectors by their kernel index.
    pub detectors: Arc<Table>,
    pub counters: Arc<Counters>,
    /// Undecodable records so far; only the first is logged, the total at shutdown.
    pub undecodable: u64,
}

impl EventHandler {
    pub fn handle(&mut self, record: &[u8]) {
        let event = match Event::decode(record) {
            Ok(event) => event,
            Err(reason) => {
                self.undecodable += 1;
                if self.undecodable == 1 {
                    warn!(?reason, "skipping an undecodable ring-buffer record");
                }
                return;
            }
        };
        self.emit(&event);
    }

    /// Counts a decoded event and sends its trigger span.
    pub fn emit(&self, event: &Event) {
        Counters::add(&self.counters.events_seen, 1);

        let detectors = self.detectors.current();
        let Some(detector) = table::find(&detectors, event.detector) else {
            warn!(
                detector = event.detector,
                "event names an unknown detector; skipped"
            );
            return;
        };
        if event.trace.is_none() {
            Counters::add(&self.counters.triggers_without_context, 1);
        }

        debug!(
            detector = %detector.name,
            kind = ?event.kind,
            pid = event.pid,
            tid = event.tid,
            duration_ns = event.duration_ns,
            has_context = event.trace.is_some(),
            "trigger"
        );
        trigger::emit(&self.tracer, self.clock, detector, event);
    }
}

impl Drop for EventHandler {
    fn drop(&mut self) {
        if self.undecodable > 0 {
            warn!(
                records = self.undecodable,
                "undecodable ring-buffer records were skipped"
            );
        }
    }
}
