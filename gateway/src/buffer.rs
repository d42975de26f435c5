//! The buffer: one thread that owns the span store and every trace's state.
//!
//! Serialising ingest, triggers and expiry through one thread means a trace can never be
//! released while another request's spans for it are half-written. Throughput comes from group
//! commit instead: every waiting request is folded into one RocksDB write batch, and all of them
//! are acknowledged after that batch is committed.
//!
//! A trigger's decision is committed in the same batch as the spans that carried it, so a
//! crash between commit and release loses nothing: on start, every buffered trace that already
//! has a keep decision is released.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};
use wbpf_storage::{Decision, SpanStore, TraceId, WriteSet};

use crate::clock::now_ms;
use crate::export::ExportQueue;
use crate::mode::{evaluate_tail, Mode};
use crate::split::{decode_blob, TraceGroup};
use crate::stats::Counters;
use crate::GatewayError;

/// Most ingest commands folded into one write batch.
const MAX_GROUP: usize = 256;
/// Most expired traces deleted per sweep, so a sweep never stalls ingest for long.
const MAX_EXPIRED_PER_SWEEP: usize = 20_000;

pub type Ack = oneshot::Sender<Result<(), GatewayError>>;

/// What the buffer thread is asked to do.
pub enum Command {
    /// Store these groups; answer on `ack` once they are durable.
    Ingest { groups: Vec<TraceGroup>, ack: Ack },
    /// Keep this trace (a trigger from outside the OTLP stream).
    Trigger { trace: TraceId },
    /// Delete untriggered traces that aged out.
    Sweep,
    /// Finish what is queued, then stop.
    Shutdown,
}

pub struct Buffer {
    store: Arc<SpanStore>,
    mode: Mode,
    /// Buffered, undecided traces and when each was first seen.
    buffered: HashMap<TraceId, u64>,
    /// Recent decisions (true: keep), so late spans need no RocksDB read.
    decided: Cache<TraceId, bool>,
    export: ExportQueue,
    counters: Arc<Counters>,
    sweeps: u64,
}

impl Buffer {
    /// Loads the buffered traces from the store and releases those already decided.
    pub fn open(
        store: Arc<SpanStore>,
        mode: Mode,
        decision_cache_size: u64,
        export: ExportQueue,
        counters: Arc<Counters>,
    ) -> Result<Self, GatewayError> {
        let ttl = Duration::from_millis(mode.decision_ttl_ms().max(1));
        let decided = Cache::builder()
            .max_capacity(decision_cache_size)
            .time_to_live(ttl)
            .build();
        let mut buffer = Self {
            store,
            mode,
            buffered: HashMap::new(),
            decided,
            export,
            counters,
            sweeps: 0,
        };

        let traces = buffer.store.buffered_traces()?;
        let mut pending = Vec::new();
        for (first_seen, trace) in traces {
            buffer.buffered.insert(trace, first_seen);
            if buffer.store.decision(trace)?.is_some_and(Decision::is_keep) {
                pending.push(trace);
            }
        }
        Counters::add(
            &buffer.counters.traces_buffered,
            buffer.buffered.len() as u64,
        );
        info!(
            traces = buffer.buffered.len(),
            pending_releases = pending.len(),
            "span buffer recovered"
        );
        for trace in pending {
            buffer.release(trace)?;
        }
        Ok(buffer)
    }

    /// Runs until [`Command::Shutdown`] or until every sender of `commands` is dropped.
    pub fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut running = true;
        while running {
            let Some(first) = commands.blocking_recv() else {
                break;
            };
            let mut ingests = Vec::new();
            let mut others = Vec::new();
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Ingest { groups, ack } => ingests.push((groups, ack)),
                    other => others.push(other),
                }
                if ingests.len() < MAX_GROUP {
                    next = commands.try_recv().ok();
                }
            }

            if !ingests.is_empty() {
                self.ingest(ingests);
            }
            for command in others {
                let result = match command {
                    Command::Trigger { trace } => self.trigger(trace),
                    Command::Sweep => self.sweep(),
                    Command::Shutdown => {
                        running = false;
                        Ok(())
                    }
                    Command::Ingest { .. } => Ok(()),
                };
                if let Err(err) = result {
                    error!(error = %err, "span buffer operation failed");
                }
            }
        }
        info!(traces = self.buffered.len(), "span buffer stopped");
    }

    fn ingest(&mut self, requests: Vec<(Vec<TraceGroup>, Ack)>) {
        let now = now_ms();
        let mut set = WriteSet::new();
        let mut forward = Vec::new();
        let mut head_kept = Vec::new();
        let mut triggered = HashSet::new();
        let mut new_traces = Vec::new();
        let mut acks = Vec::with_capacity(requests.len());

        for (groups, ack) in requests {
            acks.push(ack);
            for group in groups {
                Counters::add(&self.counters.spans_received, group.spans);
                Counters::add(&self.counters.bytes_received, group.blob.len() as u64);
                let trace = group.trace;

                if let Mode::Head(head) = &self.mode {
                    let decision = head.decide(&trace.0, &group.trace_state);
                    if self.decided.get(&trace).is_none() {
                        self.decided.insert(trace, decision.keep);
                        Counters::add(&self.counters.traces_received, 1);
                        let counter = match decision.keep {
                            true => &self.counters.traces_released,
                            false => &self.counters.traces_sampled_out,
                        };
                        Counters::add(counter, 1);
                    }
                    if decision.keep {
                        head_kept.push((group.blob, decision.threshold));
                    }
                    continue;
                }
                match self.decision(trace) {
                    Some(true) => {
                        Counters::add(&self.counters.late_spans_forwarded, group.spans);
                        forward.push(group.blob);
                        continue;
                    }
                    Some(false) => {
                        Counters::add(&self.counters.late_spans_dropped, group.spans);
                        continue;
                    }
                    None => {}
                }
                if let std::collections::hash_map::Entry::Vacant(entry) = self.buffered.entry(trace)
                {
                    entry.insert(now);
                    set.new_trace(trace, now);
                    new_traces.push(trace);
                }
                if group.has_trigger && triggered.insert(trace) {
                    set.decide(trace, Decision::Keep { decided_at_ms: now });
                }
                set.put_spans(trace, group.blob);
            }
        }

        if let Err(err) = self.store.commit(set) {
            error!(error = %err, requests = acks.len(), "committing spans failed");
            for trace in new_traces {
                self.buffered.remove(&trace);
            }
            for ack in acks {
                let _ = ack.send(Err(GatewayError::Commit(err.to_string())));
            }
            return;
        }
        Counters::add(&self.counters.traces_received, new_traces.len() as u64);
        Counters::add(&self.counters.traces_buffered, new_traces.len() as u64);
        for ack in acks {
            // A client that went away no longer needs its answer; its spans are stored.
            let _ = ack.send(Ok(()));
        }

        for blob in forward {
            self.export_blob(&blob);
        }
        for (blob, threshold) in head_kept {
            self.export_head_sampled(&blob, threshold);
        }
        for trace in triggered {
            Counters::add(&self.counters.triggers, 1);
            if let Err(err) = self.release(trace) {
                error!(error = %err, %trace, "releasing a triggered trace failed");
            }
        }
    }

    /// Keeps `trace`: records the decision, then releases whatever is buffered of it.
    fn trigger(&mut self, trace: TraceId) -> Result<(), GatewayError> {
        Counters::add(&self.counters.triggers, 1);
        if self.decision(trace) == Some(true) {
            return Ok(());
        }
        let mut set = WriteSet::new();
        set.decide(
            trace,
            Decision::Keep {
                decided_at_ms: now_ms(),
            },
        );
        self.store.commit(set)?;
        self.release(trace)
    }

    /// Exports every buffered span of a trace whose keep decision is committed.
    fn release(&mut self, trace: TraceId) -> Result<(), GatewayError> {
        self.decided.insert(trace, true);
        let Some(first_seen) = self.buffered.remove(&trace) else {
            debug!(%trace, "trigger before any span; later spans are forwarded on arrival");
            return Ok(());
        };
        self.counters
            .traces_buffered
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);

        for blob in self.store.read_trace(trace)? {
            self.export_blob(&blob);
        }
        self.store.delete_trace(trace, first_seen)?;
        Counters::add(&self.counters.traces_released, 1);
        debug!(%trace, "trace released");
        Ok(())
    }

    fn sweep(&mut self) -> Result<(), GatewayError> {
        let now = now_ms();
        let Some(cutoff) = self.mode.due_before(now) else {
            return Ok(());
        };
        let due = self.store.expired(cutoff, MAX_EXPIRED_PER_SWEEP)?;
        let tail = matches!(self.mode, Mode::Tail { .. });
        for (first_seen, trace) in &due {
            if self.buffered.remove(trace).is_some() {
                self.counters
                    .traces_buffered
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
            if tail {
                self.decide_tail(*trace, *first_seen, now)?;
            } else {
                self.store.delete_trace(*trace, *first_seen)?;
                Counters::add(&self.counters.traces_expired, 1);
            }
        }
        if !due.is_empty() {
            debug!(due = due.len(), buffered = self.buffered.len(), "sweep");
        }

        self.sweeps += 1;
        if self.sweeps.is_multiple_of(60) {
            let before = now.saturating_sub(self.mode.decision_ttl_ms());
            let pruned = self.store.prune_decisions(before)?;
            debug!(pruned, "old decisions pruned");
        }
        Ok(())
    }

    /// Evaluates the tail policies on a trace whose `decision_wait` is over.
    fn decide_tail(
        &mut self,
        trace: TraceId,
        first_seen: u64,
        now: u64,
    ) -> Result<(), GatewayError> {
        let Mode::Tail { sampler, .. } = &self.mode else {
            return Ok(());
        };
        let mut resource_spans = Vec::new();
        for blob in self.store.read_trace(trace)? {
            match decode_blob(&blob) {
                Ok(decoded) => resource_spans.extend(decoded),
                Err(err) => error!(error = %err, %trace, "a stored span group does not decode"),
            }
        }
        let keep = evaluate_tail(sampler, trace, first_seen, &resource_spans, now);

        let mut set = WriteSet::new();
        let decision = match keep {
            true => Decision::Keep { decided_at_ms: now },
            false => Decision::Drop { decided_at_ms: now },
        };
        set.decide(trace, decision);
        self.store.commit(set)?;
        self.decided.insert(trace, keep);
        if keep {
            self.export.push(resource_spans);
            Counters::add(&self.counters.traces_released, 1);
        } else {
            Counters::add(&self.counters.traces_sampled_out, 1);
        }
        self.store.delete_trace(trace, first_seen)?;
        Ok(())
    }

    /// The decision on `trace`, if one was made: `Some(true)` to keep.
    fn decision(&self, trace: TraceId) -> Option<bool> {
        if let Some(keep) = self.decided.get(&trace) {
            return Some(keep);
        }
        if self.buffered.contains_key(&trace) {
            // A buffered trace is undecided: deciding releases and unbuffers it.
            return None;
        }
        match self.store.decision(trace) {
            Ok(Some(decision)) => {
                self.decided.insert(trace, decision.is_keep());
                Some(decision.is_keep())
            }
            Ok(None) => None,
            Err(err) => {
                warn!(error = %err, %trace, "reading a decision failed; buffering the spans");
                None
            }
        }
    }

    /// Exports a head-sampled group with the sampling threshold recorded in `tracestate`.
    fn export_head_sampled(&self, blob: &[u8], threshold: wbpf_sampler::Threshold) {
        match decode_blob(blob) {
            Ok(mut resource_spans) => {
                for span in resource_spans
                    .iter_mut()
                    .flat_map(|r| r.scope_spans.iter_mut())
                    .flat_map(|s| s.spans.iter_mut())
                {
                    span.trace_state =
                        wbpf_sampler::head::with_threshold(&span.trace_state, threshold);
                }
                self.export.push(resource_spans);
            }
            Err(err) => error!(error = %err, "a span group does not decode; dropped"),
        }
    }

    fn export_blob(&self, blob: &[u8]) {
        match decode_blob(blob) {
            Ok(resource_spans) => self.export.push(resource_spans),
            Err(err) => error!(error = %err, "a stored span group does not decode; dropped"),
        }
    }
}
