//! Storing spans, and what arrives with them: trigger spans, lateral triggers, head decisions.

use std::collections::hash_map::Entry;
use std::collections::HashSet;

use tracing::error;
use wbpf_storage::{Decision, TraceId, WriteSet};

use super::{Ack, Buffer};
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
        let mut forward = Vec::new();
        let mut head_kept = Vec::new();
        let mut triggered = HashSet::new();
        let mut lateral = HashSet::new();
        let mut correlated = HashSet::new();
        let mut new_traces = Vec::new();
        let mut acks = Vec::with_capacity(requests.len());

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
                        head_kept.push((group.blob, decision.threshold));
                    }
                    continue;
                }
                match self.decision(trace) {
                    Some(true) => {
                        Counters::add(&self.counters().late_spans_forwarded, group.spans);
                        forward.push(group.blob);
                        continue;
                    }
                    Some(false) => {
                        Counters::add(&self.counters().late_spans_dropped, group.spans);
                        continue;
                    }
                    None => {}
                }
                if let Entry::Vacant(entry) = self.buffered.entry(trace) {
                    entry.insert(now);
                    set.new_trace(trace, now);
                    new_traces.push(trace);
                }
                if group.has_root {
                    self.root_arrived(trace, now);
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
        Counters::add(&self.counters().traces_received, new_traces.len() as u64);
        Counters::add(&self.counters().traces_buffered, new_traces.len() as u64);
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
