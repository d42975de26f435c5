//! The shadow thread: every compared mode decides every trace; nothing is exported.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use tracing::{debug, error, info};
use wbpf_sampler::TraceData;
use wbpf_storage::TraceId;

use super::edge_cases::EdgeCases;
use super::figures::CompareCounters;
use crate::clock::now_ms;
use crate::mode::{evaluate_tail, keeps, Mode};
use crate::split::{decode_blob, TraceGroup};

/// What the buffer tells the shadow.
pub enum ShadowEvent {
    /// Spans of one trace arrived (a copy of what the buffer stores).
    Group {
        trace: TraceId,
        spans: u64,
        blob: Vec<u8>,
        has_trigger: bool,
        trace_state: String,
    },
    /// A trace was triggered from outside its spans (admin endpoint, lateral trigger).
    Trigger { trace: TraceId },
}

/// The buffer's end of the shadow: never blocks, counts what it had to drop.
#[derive(Clone)]
pub struct ShadowSender {
    events: SyncSender<ShadowEvent>,
    counters: Arc<CompareCounters>,
}

impl ShadowSender {
    pub fn new(events: SyncSender<ShadowEvent>, counters: Arc<CompareCounters>) -> Self {
        Self { events, counters }
    }

    pub fn group(&self, group: &TraceGroup) {
        self.send(ShadowEvent::Group {
            trace: group.trace,
            spans: group.spans,
            blob: group.blob.clone(),
            has_trigger: group.has_trigger,
            trace_state: group.trace_state.clone(),
        });
    }

    pub fn trigger(&self, trace: TraceId) {
        self.send(ShadowEvent::Trigger { trace });
    }

    fn send(&self, event: ShadowEvent) {
        match self.events.try_send(event) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                CompareCounters::add(&self.counters.events_dropped, 1);
            }
        }
    }
}

/// One trace as the shadow follows it.
struct ShadowTrace {
    first_seen_ms: u64,
    spans: u64,
    bytes: u64,
    edge_case: bool,
    /// The spans so far, while a tail mode has not decided.
    data: Option<TraceData>,
    /// Per compared mode: `Some(true)` kept, `Some(false)` not, `None` undecided.
    kept: Vec<Option<bool>>,
    /// Whether a trigger named the trace.
    triggered: bool,
}

/// The compared modes and the traces they are deciding.
pub struct Shadow {
    modes: Vec<Mode>,
    counters: Arc<CompareCounters>,
    edge_cases: EdgeCases,
    traces: HashMap<TraceId, ShadowTrace>,
    /// Per-mode decisions of traces already complete, for their late spans.
    finished: Cache<TraceId, Arc<[bool]>>,
    /// A trace is complete once every mode decided and this long has passed since its first
    /// span (so a ground-truth line written late is still read).
    grace_ms: u64,
    /// Whether spans must be decoded (a tail mode or an edge-case attribute needs them).
    decode: bool,
}

impl Shadow {
    pub fn new(
        modes: Vec<Mode>,
        counters: Arc<CompareCounters>,
        edge_cases: EdgeCases,
        tick: Duration,
    ) -> Self {
        let horizon = modes.iter().map(Mode::horizon_ms).max().unwrap_or(0);
        let decode =
            edge_cases.needs_spans() || modes.iter().any(|m| matches!(m, Mode::Tail { .. }));
        let finished = Cache::builder()
            .max_capacity(1_000_000)
            .time_to_live(Duration::from_millis(horizon.max(1_000).saturating_mul(2)))
            .build();
        let grace_ms = u64::try_from(tick.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(3);
        Self {
            modes,
            counters,
            edge_cases,
            traces: HashMap::new(),
            finished,
            grace_ms,
            decode,
        }
    }

    /// Runs until every sender is gone, deciding due traces every `tick`.
    pub fn run(mut self, events: Receiver<ShadowEvent>, tick: Duration) {
        let mut last_tick = Instant::now();
        loop {
            match events.recv_timeout(tick) {
                Ok(event) => self.handle(event, now_ms()),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_tick.elapsed() >= tick {
                self.tick(now_ms(), false);
                last_tick = Instant::now();
            }
        }
        self.tick(now_ms(), true);
        info!(snapshot = ?self.counters.snapshot(), "comparison finished");
    }

    fn handle(&mut self, event: ShadowEvent, now: u64) {
        match event {
            ShadowEvent::Group {
                trace,
                spans,
                blob,
                has_trigger,
                trace_state,
            } => self.group(trace, spans, &blob, has_trigger, &trace_state, now),
            ShadowEvent::Trigger { trace } => {
                let entry = self.entry(trace, "", now);
                entry.triggered = true;
                self.decide_now(trace, now);
            }
        }
    }

    fn group(
        &mut self,
        trace: TraceId,
        spans: u64,
        blob: &[u8],
        has_trigger: bool,
        trace_state: &str,
        now: u64,
    ) {
        let bytes = blob.len() as u64;
        CompareCounters::add(&self.counters.spans_seen, spans);
        CompareCounters::add(&self.counters.bytes_seen, bytes);
        if let Some(kept) = self.finished.get(&trace) {
            for ((_, counters), kept) in self.counters.modes.iter().zip(kept.iter()) {
                if *kept {
                    CompareCounters::add(&counters.spans_kept, spans);
                    CompareCounters::add(&counters.bytes_kept, bytes);
                }
            }
            return;
        }

        let decoded = match self.decode {
            true => match decode_blob(blob) {
                Ok(decoded) => decoded,
                Err(err) => {
                    error!(error = %err, %trace, "a span group does not decode");
                    Vec::new()
                }
            },
            false => Vec::new(),
        };
        let marks = self.edge_cases.marks(&decoded);
        let counters = Arc::clone(&self.counters);
        let entry = self.entry(trace, trace_state, now);
        entry.spans += spans;
        entry.bytes += bytes;
        entry.edge_case |= marks;
        entry.triggered |= has_trigger;
        if let Some(data) = &mut entry.data {
            for resource_spans in decoded {
                let resource = resource_spans.resource.map(|r| r.attributes);
                let spans = resource_spans.scope_spans.into_iter().flat_map(|s| s.spans);
                data.add_batch(resource.unwrap_or_default(), spans.collect(), now);
            }
        }
        for ((_, mode), kept) in counters.modes.iter().zip(&entry.kept) {
            if *kept == Some(true) {
                CompareCounters::add(&mode.spans_kept, spans);
                CompareCounters::add(&mode.bytes_kept, bytes);
            }
        }
        self.decide_now(trace, now);
    }

    /// The trace's entry, created (and head-decided) on first sight.
    fn entry(&mut self, trace: TraceId, trace_state: &str, now: u64) -> &mut ShadowTrace {
        let modes = &self.modes;
        let counters = &self.counters;
        self.traces.entry(trace).or_insert_with(|| {
            CompareCounters::add(&counters.traces_seen, 1);
            let mut kept = Vec::with_capacity(modes.len());
            for (mode, (_, mode_counters)) in modes.iter().zip(&counters.modes) {
                let Mode::Head(head) = mode else {
                    kept.push(None);
                    continue;
                };
                // Spans are counted as they arrive, after this.
                let keep = head.decide(&trace.0, trace_state).keep;
                CompareCounters::add(&mode_counters.traces_decided, 1);
                if keep {
                    CompareCounters::add(&mode_counters.traces_kept, 1);
                }
                kept.push(Some(keep));
            }
            let tail = modes.iter().any(|m| matches!(m, Mode::Tail { .. }));
            ShadowTrace {
                first_seen_ms: now,
                spans: 0,
                bytes: 0,
                edge_case: false,
                data: tail.then(|| TraceData::new(trace.0, now)),
                kept,
                triggered: false,
            }
        })
    }

    /// Decides what can be decided without waiting: head on arrival, triggered on a trigger.
    fn decide_now(&mut self, trace: TraceId, now: u64) {
        self.decide(trace, now, false);
    }

    /// Decides each undecided mode of `trace` that is due at `now` (all of them if `flush`).
    fn decide(&mut self, trace: TraceId, now: u64, flush: bool) {
        let Some(entry) = self.traces.get_mut(&trace) else {
            return;
        };
        for (index, mode) in self.modes.iter().enumerate() {
            if entry.kept[index].is_some() {
                continue;
            }
            let decision = match mode {
                Mode::Head(_) => None,
                Mode::Triggered { retention } => match entry.triggered {
                    true => Some(true),
                    false if flush || retention.expired(entry.first_seen_ms, now) => Some(false),
                    false => None,
                },
                Mode::Tail { sampler, .. } => match &entry.data {
                    Some(data) if flush || sampler.decision_due_ms(data) <= now => {
                        Some(keeps(evaluate_tail(sampler, data, now).as_ref()))
                    }
                    _ => None,
                },
            };
            let Some(keep) = decision else {
                continue;
            };
            entry.kept[index] = Some(keep);
            let counters = &self.counters.modes[index].1;
            CompareCounters::add(&counters.traces_decided, 1);
            if keep {
                CompareCounters::add(&counters.traces_kept, 1);
                CompareCounters::add(&counters.spans_kept, entry.spans);
                CompareCounters::add(&counters.bytes_kept, entry.bytes);
            }
        }
        let tail_pending = self
            .modes
            .iter()
            .zip(&entry.kept)
            .any(|(mode, kept)| matches!(mode, Mode::Tail { .. }) && kept.is_none());
        if !tail_pending {
            entry.data = None;
        }
    }

    /// Decides due traces and completes those every mode has decided.
    fn tick(&mut self, now: u64, flush: bool) {
        self.edge_cases.refresh();
        let traces: Vec<TraceId> = self.traces.keys().copied().collect();
        let mut complete = Vec::new();
        for trace in traces {
            self.decide(trace, now, flush);
            let Some(entry) = self.traces.get(&trace) else {
                continue;
            };
            let decided = entry.kept.iter().all(Option::is_some);
            if decided && (flush || now >= entry.first_seen_ms.saturating_add(self.grace_ms)) {
                complete.push(trace);
            }
        }
        for trace in &complete {
            self.complete(*trace);
        }
        if !complete.is_empty() {
            debug!(
                complete = complete.len(),
                following = self.traces.len(),
                "shadow tick"
            );
        }
    }

    /// Counts an edge case against each mode and remembers the decisions for late spans.
    fn complete(&mut self, trace: TraceId) {
        let Some(entry) = self.traces.remove(&trace) else {
            return;
        };
        let kept: Arc<[bool]> = entry.kept.iter().map(|k| *k == Some(true)).collect();
        if entry.edge_case || self.edge_cases.listed(trace) {
            CompareCounters::add(&self.counters.edge_cases_seen, 1);
            for ((_, counters), kept) in self.counters.modes.iter().zip(kept.iter()) {
                if *kept {
                    CompareCounters::add(&counters.edge_cases_captured, 1);
                }
            }
        }
        self.finished.insert(trace, kept);
    }
}
