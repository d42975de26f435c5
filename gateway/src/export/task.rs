//! The export task: reads the queue in order, delivers, then removes what was delivered.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};
use wbpf_config::RetryConfig;
use wbpf_storage::{OutboxEntry, SpanStore};

use super::backoff::Backoff;
use super::batch::into_requests;
use super::Sink;
use crate::split::decode_blob;
use crate::stats::Counters;
use crate::GatewayError;

/// How long a stopping gateway keeps trying a downstream that is down.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed read or removal in the store before trying again.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// Most queued span groups read at once.
const MAX_ENTRIES: usize = 1_024;

pub(super) struct ExportTask {
    pub store: Arc<SpanStore>,
    pub sinks: Vec<Sink>,
    pub counters: Arc<Counters>,
    pub retry: RetryConfig,
    pub max_batch_bytes: usize,
    pub wake: Arc<Notify>,
    pub closing: watch::Receiver<bool>,
}

/// What became of one request.
enum Delivery {
    /// Every exporter took it, or refused it for good (counted and logged).
    Done,
    /// The gateway is stopping and a downstream is still down: the request stays queued.
    Interrupted,
}

impl ExportTask {
    pub async fn run(mut self) {
        let mut from = 0;
        let mut drain_until = None;
        loop {
            if drain_until.is_none() && *self.closing.borrow() {
                drain_until = Some(Instant::now() + DRAIN_TIMEOUT);
            }
            let entries = match self.read(from).await {
                Ok(entries) => entries,
                Err(err) if drain_until.is_none() => {
                    error!(error = %err, "reading the export queue failed; trying again");
                    tokio::time::sleep(STORE_RETRY).await;
                    continue;
                }
                Err(err) => {
                    error!(error = %err, "reading the export queue failed; export stopped");
                    return;
                }
            };
            let Some(last) = entries.last().map(|e| e.seq) else {
                if drain_until.is_some() {
                    break;
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = self.closing.changed() => {}
                }
                continue;
            };

            let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
            for request in self.requests(entries) {
                if let Delivery::Interrupted = self.deliver(&request, &mut drain_until).await {
                    let queued = self.counters.export_queue.load(Ordering::Relaxed);
                    info!(
                        queued,
                        "export stopped; the queue is delivered after the next start"
                    );
                    return;
                }
            }
            if let Err(err) = self.ack(seqs.clone()).await {
                // Not removed means delivered again later (at least once), never lost.
                error!(error = %err, "removing delivered spans from the export queue failed");
                tokio::time::sleep(STORE_RETRY).await;
            }
            self.counters
                .export_queue
                .fetch_sub(seqs.len() as u64, Ordering::Relaxed);
            from = last.saturating_add(1);
        }
    }

    async fn read(&self, from: u64) -> Result<Vec<OutboxEntry>, GatewayError> {
        let store = Arc::clone(&self.store);
        let max_bytes = self.max_batch_bytes;
        let read =
            tokio::task::spawn_blocking(move || store.read_outbox(from, MAX_ENTRIES, max_bytes));
        Ok(read.await.map_err(join_failed)??)
    }

    async fn ack(&self, seqs: Vec<u64>) -> Result<(), GatewayError> {
        let store = Arc::clone(&self.store);
        let ack = tokio::task::spawn_blocking(move || store.ack_outbox(seqs));
        Ok(ack.await.map_err(join_failed)??)
    }

    /// Decodes queued groups and packs them into requests under the size limit.
    fn requests(&self, entries: Vec<OutboxEntry>) -> Vec<ExportTraceServiceRequest> {
        let mut resource_spans = Vec::new();
        for entry in entries {
            match decode_blob(&entry.blob) {
                Ok(decoded) => resource_spans.extend(decoded),
                Err(err) => {
                    Counters::add(&self.counters.export_failures, 1);
                    let seq = entry.seq;
                    error!(error = %err, seq, "a queued span group does not decode; dropped");
                }
            }
        }
        into_requests(resource_spans, self.max_batch_bytes)
    }

    /// Hands `request` to every exporter, retrying each until it takes the request, refuses
    /// it for good, or the drain deadline of a stopping gateway passes.
    async fn deliver(
        &mut self,
        request: &ExportTraceServiceRequest,
        drain_until: &mut Option<Instant>,
    ) -> Delivery {
        let spans = span_count(request);
        let bytes = request.encoded_len() as u64;
        let mut refused = false;
        for sink in &mut self.sinks {
            let mut backoff = Backoff::new(&self.retry);
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                match sink.export(request).await {
                    Ok(()) => {
                        if attempts > 1 {
                            info!(
                                exporter = sink.name(),
                                attempts, "export delivered after retries"
                            );
                        }
                        break;
                    }
                    Err(failure) if failure.retryable => {
                        Counters::add(&self.counters.export_retries, 1);
                        if drain_until.is_some_and(|until| Instant::now() >= until) {
                            return Delivery::Interrupted;
                        }
                        let wait = backoff.next_wait();
                        if attempts == 1 {
                            warn!(
                                exporter = sink.name(),
                                reason = %failure.reason,
                                "export failed; retrying with backoff until it passes"
                            );
                        } else {
                            debug!(exporter = sink.name(), attempts, ?wait, "export retry");
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = self.closing.changed(), if drain_until.is_none() => {
                                *drain_until = Some(Instant::now() + DRAIN_TIMEOUT);
                            }
                        }
                    }
                    Err(failure) => {
                        refused = true;
                        Counters::add(&self.counters.export_failures, 1);
                        error!(
                            exporter = sink.name(),
                            reason = %failure.reason,
                            spans,
                            "the downstream refused spans; they are dropped for it"
                        );
                        break;
                    }
                }
            }
        }
        if !refused && !self.sinks.is_empty() {
            Counters::add(&self.counters.spans_exported, spans);
            Counters::add(&self.counters.bytes_exported, bytes);
        }
        debug!(spans, bytes, "export request done");
        Delivery::Done
    }
}

fn span_count(request: &ExportTraceServiceRequest) -> u64 {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum()
}

fn join_failed(err: tokio::task::JoinError) -> GatewayError {
    GatewayError::Thread {
        name: "export queue access",
        message: err.to_string(),
    }
}
