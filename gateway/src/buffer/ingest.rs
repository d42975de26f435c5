//! Storing spans, and what arrives with them: trigger spans, lateral triggers, head decisions.

use std::collections::hash_map::Entry;
use std::collections::HashSet;

use tracing::{error, warn};
use wbpf_sampler::TraceData;
use wbpf_storage::{Decision, TraceId, WriteSet};

use super::{head_sampled_blob, Ack, Buffer, BufferedTrace};
use crate::clock::now_ms;
use crate::mode::Mode;
use crate::split::TraceGroup;
use crate::stats::Counters;
use crate::GatewayError;

impl Buffer {
    /// Commits the spans of every request in one batch, acknowledges them, then exports what
    /// their arrival decided.
    pub(super) fn ingest(&mut self, requests: Vec<(Vec<TraceGroup>, Ack)>) {
        let now = now_ms();
        let mut set = WriteSet::new();
        let mut triggered = HashSet::new();
        let mut lateral = HashSet::new();
        let mut correlated = HashSet::new();
        let mut new_traces = Vec::new();
        let mut capped = HashSet::new();
        let mut acks = Vec::with_capacity(requests.len());
        // Per stored group, in put order: its trace and what tail policies read of it.
        let mut stored = Vec::new();

        for (groups, ack) in requests {
            acks.push(ack);
            for group in groups {
                Counters::add(&self.counters().spans_received, group.spans);
                Counters::add(&self.counters().bytes_received, group.blob.len() as u64);
                if let Some(shadow) = &self.parts.shadow {
                    shadow.group(&group);
                }
                let trace = group.trace;
                if let Some(index) = &mut self.parts.lateral {
                    if !group.touches.is_empty() {
                        lateral.extend(index.record(trace, &group.touches, now));
                    }
                }
                if let Some(index) = &mut self.parts.correlation {
                    if !group.activities.is_empty() || !group.orphans.is_empty() {
                        let found = index.record(trace, &group.activities, &group.orphans, now);
                        correlated.extend(found);
                    }
                }

                if let Mode::Head(head) = &self.mode {
                    let decision = head.decide(&trace.0, &group.trace_state);
                    if self.decided.get(&trace).is_none() {
                        self.decided.insert(trace, decision.keep);
                        Counters::add(&self.counters().traces_received, 1);
                        let counter = match decision.keep {
                            true => &self.counters().traces_released,
                            false => &self.counters().traces_sampled_out,
                        };
                        Counters::add(counter, 1);
                    }
                    if decision.keep {
                        if let Some(blob) = head_sampled_blob(&group.blob, decision.threshold) {
                            set.enqueue(blob);
                        }
                    }
                    continue;
                }
                match self.decision(trace) {
                    Some(true) => {
                        Counters::add(&self.counters().late_spans_forwarded, group.spans);
                        set.enqueue(group.blob);
                        continue;
                    }
                    Some(false) => {
                        Counters::add(&self.counters().late_spans_dropped, group.spans);
                        continue;
                    }
                    None => {}
                }
                let bytes = group.blob.len() as u64;
                let entry = match self.buffered.entry(trace) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => {
                        set.new_trace(trace, now);
                        new_traces.push(trace);
                        // A clock stepped back must not hide this trace from the expiry scan.
                        self.expiry_floor = self.expiry_floor.min(now);
                        let summary = group
                            .summary
                            .is_some()
                            .then(|| TraceData::new(trace.0, now));
                        entry.insert(BufferedTrace::new(now, summary))
                    }
                };
                if group.has_trigger && triggered.insert(trace) {
                    set.decide(trace, Decision::Keep { decided_at_ms: now });
                }
                if entry.bytes.saturating_add(bytes) > self.parts.max_trace_bytes {
                    Counters::add(&self.counters().spans_over_trace_cap, group.spans);
                    capped.insert(trace);
                    continue;
                }
                entry.bytes += bytes;
                self.buffered_bytes += bytes;
                if group.has_root {
                    self.root_arrived(trace, now);
                }
                set.put_spans(trace, group.blob);
                stored.push((trace, group.summary));
            }
        }

        let seqs = match self.commit_and_export(set) {
            Ok(seqs) => seqs,
            Err(err) => {
                self.ingest_failed(&err, new_traces, acks);
                return;
            }
        };
        for ((trace, summary), seq) in stored.into_iter().zip(seqs) {
            self.note_stored(trace, summary, seq);
        }
        Counters::add(&self.counters().traces_received, new_traces.len() as u64);

        Counters::add(&self.counters().traces_buffered, new_traces.len() as u64);
        if let Err(err) = self.enforce_budget() {
            error!(error = %err, "evicting over the byte budget failed");
        }
        for trace in capped {
            warn!(%trace, cap = self.parts.max_trace_bytes, "trace at its size cap; spans dropped");
        }
        for ack in acks {
            // A client that went away no longer needs its answer; its spans are stored.
            let _ = ack.send(Ok(()));
        }

        for trace in &triggered {
            Counters::add(&self.counters().triggers, 1);
            if let Err(err) = self.release(*trace) {
                error!(error = %err, %trace, "releasing a triggered trace failed");
            }
        }
        for trace in lateral.difference(&triggered) {
            if let Err(err) = self.keep_lateral(*trace) {
                error!(error = %err, %trace, "keeping a lateral trace failed");
            }
        }
        for trace in correlated.difference(&triggered) {
            if let Err(err) = self.keep_correlated(*trace) {
                error!(error = %err, %trace, "keeping a correlated trace failed");
            }
        }
    }

    /// Undoes the bookkeeping of a batch that could not be committed and tells its senders.
    fn ingest_failed(&mut self, err: &GatewayError, new_traces: Vec<TraceId>, acks: Vec<Ack>) {
        error!(error = %err, requests = acks.len(), "committing spans failed");
        for trace in new_traces {
            if let Some(entry) = self.buffered.remove(&trace) {
                self.buffered_bytes = self.buffered_bytes.saturating_sub(entry.bytes);
            }
        }
        for ack in acks {
            let _ = ack.send(Err(GatewayError::Commit(err.to_string())));
        }
    }

    /// Records a committed group on its trace: its sequence number and, in tail mode, what
    /// the policies read of it. A trace recovered on start keeps neither: it is read back.
    fn note_stored(&mut self, trace: TraceId, summary: Option<TraceData>, seq: u64) {
        let Some(entry) = self.buffered.get_mut(&trace) else {
            return;
        };
        if let Some(seqs) = &mut entry.seqs {
            seqs.push(seq);
        }
        match (&mut entry.summary, summary) {
            (Some(data), Some(later)) => data.absorb(later),
            // A group without a summary would leave it partial: decide from storage instead.
            (known @ Some(_), None) => *known = None,
            (None, _) => {}
        }
    }

    /// Notes a root's arrival when tail mode decides sooner after it.
    fn root_arrived(&mut self, trace: TraceId, now: u64) {
        let Mode::Tail { sampler, .. } = &self.mode else {
            return;
        };
        let Some(after_root) = sampler.after_root_ms() else {
            return;
        };
        if self.roots_seen.insert(trace) {
            self.roots
                .push_back((now.saturating_add(after_root), trace));
        }
    }
}
