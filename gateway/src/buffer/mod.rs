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
//!
//! [`ingest`] stores spans and applies what arrives with them (triggers, lateral triggers,
//! head decisions); [`decide`] holds the decisions themselves (triggers from outside, release,
//! expiry, tail evaluation).

mod budget;
mod decide;
mod decisions;
mod ingest;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info};
use wbpf_sampler::TraceData;
use wbpf_storage::{Decision, SpanStore, TraceId, WriteSet};

use self::decisions::DecisionCache;
pub use self::decisions::DecisionCacheSizes;
use crate::compare::ShadowSender;
use crate::correlate::ProcessIndex;
use crate::export::ExportQueue;
use crate::lateral::LateralIndex;
use crate::mode::Mode;
use crate::policy_metrics::PolicyMetrics;
use crate::split::{decode_blob, TraceGroup};
use crate::stats::Counters;
use crate::GatewayError;

/// Most ingest commands folded into one write batch.
const MAX_GROUP: usize = 256;

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

/// What the buffer works with besides the store and the mode.
pub struct BufferParts {
    pub export: ExportQueue,
    pub counters: Arc<Counters>,
    pub policy_metrics: Arc<PolicyMetrics>,
    /// Remembered decisions, for late spans without a RocksDB read.
    pub decision_cache: DecisionCacheSizes,
    /// The comparison's shadow, if `sampling.compare` is set.
    pub shadow: Option<ShadowSender>,
    /// Lateral triggers, if `sampling.lateral` is set.
    pub lateral: Option<LateralIndex>,
    /// Triggers without trace context, matched by process, thread and time.
    pub correlation: Option<ProcessIndex>,
    /// `storage.max_bytes` and `storage.max_trace_bytes`.
    pub max_bytes: u64,
    pub max_trace_bytes: u64,
}

/// An undecided trace in the buffer.
#[derive(Debug)]
struct BufferedTrace {
    /// When its first span arrived, ms since the epoch: its key in the expiry index.
    first_seen: u64,
    /// Protobuf bytes of its buffered spans (estimated for traces recovered on start).
    bytes: u64,
    /// Sequence numbers of its stored span groups, so dropping it needs no read; `None` for
    /// traces recovered on start.
    seqs: Option<Vec<u64>>,
    /// Tail mode: what the policies read of its spans, so deciding it needs no read either;
    /// `None` for recovered traces and in other modes.
    summary: Option<TraceData>,
}

impl BufferedTrace {
    fn new(first_seen: u64, summary: Option<TraceData>) -> Self {
        Self {
            first_seen,
            bytes: 0,
            seqs: Some(Vec::new()),
            summary,
        }
    }

    /// Adds the removal of this trace's spans and expiry entry to `set`, by key if they are
    /// known and by range otherwise.
    fn remove_into(self, trace: TraceId, set: &mut WriteSet) {
        match self.seqs {
            Some(seqs) => set.remove_trace(trace, self.first_seen, seqs),
            None => set.drop_trace(trace, self.first_seen),
        }
    }
}

pub struct Buffer {
    store: Arc<SpanStore>,
    mode: Mode,
    /// Buffered, undecided traces.
    buffered: HashMap<TraceId, BufferedTrace>,
    /// Sum of their bytes, held under `max_bytes` by evicting the oldest.
    buffered_bytes: u64,
    /// Recent decisions, so late spans need no RocksDB read.
    decided: DecisionCache,
    /// Tail mode with `decision_wait_after_root_received`: when each trace whose root arrived
    /// is due, in arrival order (so in due order).
    roots: VecDeque<(u64, TraceId)>,
    roots_seen: HashSet<TraceId>,
    parts: BufferParts,
    sweeps: u64,
    /// Whether the last sweep step left due traces behind.
    sweep_backlog: bool,
    /// No buffered trace was first seen before this (ms): where the expiry scan starts.
    expiry_floor: u64,
    eviction_log: budget::EvictionLog,
}

impl Buffer {
    /// Loads the buffered traces from the store and releases those already decided.
    pub fn open(
        store: Arc<SpanStore>,
        mode: Mode,
        parts: BufferParts,
    ) -> Result<Self, GatewayError> {
        let ttl = Duration::from_millis(mode.decision_ttl_ms().max(1));
        let decided = DecisionCache::new(parts.decision_cache, ttl);
        let mut buffer = Self {
            store,
            mode,
            buffered: HashMap::new(),
            buffered_bytes: 0,
            decided,
            roots: VecDeque::new(),
            roots_seen: HashSet::new(),
            parts,
            sweeps: 0,
            sweep_backlog: false,
            expiry_floor: 0,
            eviction_log: budget::EvictionLog::default(),
        };

        let traces = buffer.store.buffered_traces()?;
        // Reading every trace to size it would make start-up proportional to the data; the
        // store's estimate, spread evenly, is close enough for the budget.
        let estimate = buffer.store.estimated_span_bytes()?;
        let per_trace = estimate / (traces.len() as u64).max(1);
        buffer.buffered_bytes = per_trace * traces.len() as u64;
        let mut pending = Vec::new();
        for (first_seen, trace) in traces {
            let recovered = BufferedTrace {
                first_seen,
                bytes: per_trace,
                seqs: None,
                summary: None,
            };
            buffer.buffered.insert(trace, recovered);
            if buffer.store.decision(trace)?.is_some_and(Decision::is_keep) {
                pending.push(trace);
            }
        }
        Counters::add(
            &buffer.parts.counters.traces_buffered,
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
    ///
    /// Due traces are decided in bounded steps between batches of commands, so a sweep that
    /// finds many traces due never holds up ingest for long.
    pub fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut running = true;
        while running {
            let first = if self.sweep_backlog {
                match commands.try_recv() {
                    Ok(command) => Some(command),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match commands.blocking_recv() {
                    Some(command) => Some(command),
                    None => break,
                }
            };
            if let Some(first) = first {
                running = self.handle(first, &mut commands);
            }
            if self.sweep_backlog {
                if let Err(err) = self.sweep_step() {
                    error!(error = %err, "deciding due traces failed");
                    self.sweep_backlog = false;
                }
            }
        }
        info!(traces = self.buffered.len(), "span buffer stopped");
    }

    /// Handles `first` and every command already waiting (ingests folded into one batch);
    /// returns false on [`Command::Shutdown`].
    fn handle(&mut self, first: Command, commands: &mut mpsc::Receiver<Command>) -> bool {
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
        let mut running = true;
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
        running
    }

    fn counters(&self) -> &Counters {
        &self.parts.counters
    }

    /// Commits `set` and, if it queued spans for export, wakes the exporter. Returns the
    /// sequence numbers of the span groups it stored, in the order they were put.
    fn commit_and_export(&self, set: WriteSet) -> Result<Vec<u64>, GatewayError> {
        let queued = set.queued() as u64;
        let seqs = self.store.commit(set)?;
        if queued > 0 {
            Counters::add(&self.counters().export_queue, queued);
            self.parts.export.wake();
        }
        Ok(seqs)
    }
}

/// A head-sampled group re-encoded with the sampling threshold recorded in `tracestate`.
fn head_sampled_blob(blob: &[u8], threshold: wbpf_sampler::Threshold) -> Option<Vec<u8>> {
    match decode_blob(blob) {
        Ok(mut resource_spans) => {
            for span in resource_spans
                .iter_mut()
                .flat_map(|r| r.scope_spans.iter_mut())
                .flat_map(|s| s.spans.iter_mut())
            {
                span.trace_state = wbpf_sampler::head::with_threshold(&span.trace_state, threshold);
            }
            Some(ExportTraceServiceRequest { resource_spans }.encode_to_vec())
        }
        Err(err) => {
            error!(error = %err, "a span group does not decode; dropped");
            None
        }
    }
}
