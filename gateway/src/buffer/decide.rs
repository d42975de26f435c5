//! Decisions: triggers from outside the stream, release, expiry and tail evaluation.

use std::sync::atomic::Ordering;

use tracing::{debug, error, warn};
use wbpf_sampler::TraceData;
use wbpf_storage::{Decision, TraceId, WriteSet};

use super::{Buffer, BufferedTrace};
use crate::clock::now_ms;
use crate::mode::{evaluate_tail, keeps, Mode};
use crate::split::decode_blob;
use crate::stats::Counters;
use crate::GatewayError;

/// Most expired traces deleted in one step between command batches.
const DELETIONS_PER_STEP: usize = 1_024;
/// Most traces decided in one step between command batches (each committed with the step).
const TAIL_DECISIONS_PER_STEP: usize = 512;

impl Buffer {
    /// Keeps `trace` for a trigger from outside its spans (the admin endpoint, a probe's
    /// trigger sent on its own).
    pub(super) fn trigger(&mut self, trace: TraceId) -> Result<(), GatewayError> {
        Counters::add(&self.counters().triggers, 1);
        self.keep(trace)
    }

    /// Keeps `trace` because it shared a resource with a triggered trace.
    pub(super) fn keep_lateral(&mut self, trace: TraceId) -> Result<(), GatewayError> {
        Counters::add(&self.counters().lateral_triggers, 1);
        self.keep(trace)
    }

    /// Keeps `trace` because a trigger without context matched its process, thread and time.
    pub(super) fn keep_correlated(&mut self, trace: TraceId) -> Result<(), GatewayError> {
        Counters::add(&self.counters().correlated_triggers, 1);
        self.keep(trace)
    }

    /// Records a keep decision and releases whatever is buffered of `trace`, in one commit.
    fn keep(&mut self, trace: TraceId) -> Result<(), GatewayError> {
        if let Some(shadow) = &self.parts.shadow {
            shadow.trigger(trace);
        }
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
        self.release_with(trace, set)
    }

    /// Moves every buffered span of a trace whose keep decision is committed to the export
    /// queue.
    pub(super) fn release(&mut self, trace: TraceId) -> Result<(), GatewayError> {
        self.release_with(trace, WriteSet::new())
    }

    /// Adds the release of `trace` to `set` and commits both: the spans leave the buffer and
    /// enter the export queue atomically.
    fn release_with(&mut self, trace: TraceId, mut set: WriteSet) -> Result<(), GatewayError> {
        self.decided.insert(trace, true);
        let entry = self.unbuffer(trace);
        if let Some(entry) = &entry {
            let stored = self.store.read_spans(trace)?;
            for blob in stored.blobs {
                set.enqueue(blob);
            }
            set.remove_trace(trace, entry.first_seen, stored.seqs);
        }
        self.commit_and_export(set)?;
        match entry {
            Some(_) => {
                Counters::add(&self.counters().traces_released, 1);
                debug!(%trace, "trace released");
            }
            None => debug!(%trace, "trigger before any span; later spans are forwarded on arrival"),
        }
        Ok(())
    }

    /// The periodic sweep: prunes old decisions now and then, and starts deciding or deleting
    /// the traces that are due.
    pub(super) fn sweep(&mut self) -> Result<(), GatewayError> {
        self.sweeps += 1;
        if self.sweeps.is_multiple_of(60) {
            let before = now_ms().saturating_sub(self.mode.decision_ttl_ms());
            let pruned = self.store.prune_decisions(before)?;
            debug!(pruned, "old decisions pruned");
        }
        self.sweep_step()
    }

    /// Decides (tail) or deletes (triggered) a bounded number of due traces; sets
    /// `sweep_backlog` when more are due.
    pub(super) fn sweep_step(&mut self) -> Result<(), GatewayError> {
        let now = now_ms();
        self.sweep_roots(now)?;
        let Some(cutoff) = self.mode.due_before(now) else {
            self.sweep_backlog = false;
            return Ok(());
        };
        let tail = matches!(self.mode, Mode::Tail { .. });
        let limit = if tail {
            TAIL_DECISIONS_PER_STEP
        } else {
            DELETIONS_PER_STEP
        };
        let due = self.store.expired(self.expiry_floor, cutoff, limit)?;
        let mut set = WriteSet::new();
        let mut decisions = Vec::new();
        for (first_seen, trace) in &due {
            // A trace in the index but not in memory is read back, as on start.
            let entry = self.unbuffer(*trace).unwrap_or(BufferedTrace {
                first_seen: *first_seen,
                bytes: 0,
                seqs: None,
                summary: None,
            });
            if tail {
                decisions.push(self.decide_tail(*trace, entry, now, &mut set)?);
            } else {
                entry.remove_into(*trace, &mut set);
            }
        }
        self.commit_decisions(set, decisions)?;
        if !tail {
            Counters::add(&self.counters().traces_expired, due.len() as u64);
        }
        if let Some((first_seen, _)) = due.last() {
            // Everything first seen before this is gone; the next scan starts here.
            self.expiry_floor = *first_seen;
        }
        self.sweep_backlog = due.len() == limit;
        if !due.is_empty() {
            debug!(
                due = due.len(),
                buffered = self.buffered.len(),
                "sweep step"
            );
        }
        if let Some(index) = &mut self.parts.lateral {
            index.prune(cutoff);
        }
        if let Some(index) = &mut self.parts.correlation {
            index.prune(cutoff);
        }
        Ok(())
    }

    /// Tail mode: decides the traces whose root arrived `decision_wait_after_root_received` ago.
    fn sweep_roots(&mut self, now: u64) -> Result<(), GatewayError> {
        let mut set = WriteSet::new();
        let mut decisions = Vec::new();
        while let Some((due, trace)) = self.roots.front().copied() {
            if due > now || decisions.len() >= TAIL_DECISIONS_PER_STEP {
                break;
            }
            self.roots.pop_front();
            self.roots_seen.remove(&trace);
            if let Some(entry) = self.unbuffer(trace) {
                decisions.push(self.decide_tail(trace, entry, now, &mut set)?);
            }
        }
        self.commit_decisions(set, decisions)
    }

    /// Forgets `trace` as undecided; returns its entry, if it was buffered.
    pub(super) fn unbuffer(&mut self, trace: TraceId) -> Option<BufferedTrace> {
        let entry = self.buffered.remove(&trace)?;
        self.buffered_bytes = self.buffered_bytes.saturating_sub(entry.bytes);
        self.counters()
            .traces_buffered
            .fetch_sub(1, Ordering::Relaxed);
        Some(entry)
    }

    /// Evaluates the tail policies on a trace that is due and adds the decision and its
    /// consequences to `set`. The spans are read back only to export a kept trace, or to
    /// decide one whose summary is not in memory (recovered on start).
    fn decide_tail(
        &mut self,
        trace: TraceId,
        entry: BufferedTrace,
        now: u64,
        set: &mut WriteSet,
    ) -> Result<(TraceId, bool), GatewayError> {
        let Mode::Tail { sampler, .. } = &self.mode else {
            return Ok((trace, false));
        };
        let first_seen = entry.first_seen;
        let mut stored = None;
        let data = match entry.summary {
            Some(data) => data,
            None => {
                let read = self.store.read_spans(trace)?;
                let data = self.read_back(trace, &read.blobs, first_seen);
                stored = Some(read);
                data
            }
        };
        let outcome = evaluate_tail(sampler, &data, now);
        let delay = now.saturating_sub(first_seen);
        self.parts
            .policy_metrics
            .record(sampler.policy_names(), outcome.as_ref(), delay);
        let keep = keeps(outcome.as_ref());

        let decision = match keep {
            true => Decision::Keep { decided_at_ms: now },
            false => Decision::Drop { decided_at_ms: now },
        };
        set.decide(trace, decision);
        if keep {
            let stored = match stored {
                Some(stored) => stored,
                None => self.store.read_spans(trace)?,
            };
            for blob in stored.blobs {
                set.enqueue(blob);
            }
            set.remove_trace(trace, first_seen, stored.seqs);
        } else {
            match (stored, entry.seqs) {
                (Some(stored), _) => set.remove_trace(trace, first_seen, stored.seqs),
                (None, Some(seqs)) => set.remove_trace(trace, first_seen, seqs),
                (None, None) => set.drop_trace(trace, first_seen),
            }
        }
        Ok((trace, keep))
    }

    /// The policies' view of a trace rebuilt from its stored span groups.
    fn read_back(&self, trace: TraceId, blobs: &[Vec<u8>], first_seen: u64) -> TraceData {
        let mut resource_spans = Vec::new();
        for blob in blobs {
            match decode_blob(blob) {
                Ok(decoded) => resource_spans.extend(decoded),
                Err(err) => {
                    self.parts.policy_metrics.evaluation_error();
                    error!(error = %err, %trace, "a stored span group does not decode");
                }
            }
        }
        TraceData::from_resource_spans(trace.0, &resource_spans, first_seen)
    }

    /// Commits a step's decisions (with their releases and removals) in one batch, then
    /// remembers and counts them.
    fn commit_decisions(
        &mut self,
        set: WriteSet,
        decisions: Vec<(TraceId, bool)>,
    ) -> Result<(), GatewayError> {
        self.commit_and_export(set)?;
        for (trace, keep) in decisions {
            self.decided.insert(trace, keep);
            let counter = match keep {
                true => &self.counters().traces_released,
                false => &self.counters().traces_sampled_out,
            };
            Counters::add(counter, 1);
        }
        Ok(())
    }

    /// The decision on `trace`, if one was made: `Some(true)` to keep.
    pub(super) fn decision(&self, trace: TraceId) -> Option<bool> {
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
}
