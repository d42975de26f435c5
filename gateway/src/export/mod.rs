//! Exporters of released traces, fed by the export queue on disk.
//!
//! Releasing a trace moves its spans into the store's export queue in the same write batch
//! that removes them from the buffer (see `wbpf_storage::outbox`). One task reads the queue in
//! order, packs it into requests of at most `exporters.max_batch_bytes`, hands each request to
//! every configured exporter, retrying failures with backoff until they pass, and removes the
//! entries only then. A downstream that is down holds the queue, on disk, until it returns; a
//! gateway killed at any moment delivers the queue after its next start. Delivery is at least
//! once: spans delivered just before a crash, and not yet removed, are delivered again, with
//! the same span ids.
//!
//! Exported spans are the stored OTLP messages, unchanged: ids, attributes, events, links,
//! status and resource are as received.

mod backoff;
mod batch;
mod file;
mod otlp;
mod task;

use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing::warn;
use wbpf_config::ExportersConfig;
use wbpf_storage::SpanStore;

use crate::stats::Counters;
use crate::GatewayError;

pub use file::FileExporter;
pub use otlp::OtlpExporter;

/// Why an exporter could not deliver a request.
#[derive(Debug)]
pub struct Failure {
    /// Whether trying again may succeed (the downstream is down or busy), as opposed to the
    /// data itself being refused.
    pub retryable: bool,
    pub reason: String,
}

/// A configured destination.
pub enum Sink {
    File(FileExporter),
    Otlp(OtlpExporter),
}

impl Sink {
    async fn export(
        &mut self,
        request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    ) -> Result<(), Failure> {
        match self {
            Sink::File(file) => file.export(request).await,
            Sink::Otlp(otlp) => otlp.export(request).await,
        }
    }

    fn name(&self) -> &str {
        match self {
            Sink::File(file) => file.path(),
            Sink::Otlp(otlp) => otlp.endpoint(),
        }
    }
}

/// Held by the buffer thread: tells the export task that entries were queued.
#[derive(Clone)]
pub struct ExportQueue {
    wake: Arc<Notify>,
}

impl ExportQueue {
    /// Call after committing entries to the export queue.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The running export task.
pub struct Exporter {
    queue: ExportQueue,
    closing: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Exporter {
    pub fn queue(&self) -> ExportQueue {
        self.queue.clone()
    }

    /// Delivers what is queued, giving up on a downstream that stays down for
    /// [`task::DRAIN_TIMEOUT`]; what is left stays queued on disk for the next start.
    pub async fn shutdown(self) {
        let _ = self.closing.send(true);
        self.queue.wake();
        if let Err(err) = self.task.await {
            warn!(error = %err, "the export task failed");
        }
    }
}

/// Starts the export task on the queue in `store`.
pub fn start(
    config: &ExportersConfig,
    store: Arc<SpanStore>,
    counters: Arc<Counters>,
) -> Result<Exporter, GatewayError> {
    let mut sinks = Vec::new();
    if let Some(file) = &config.file {
        sinks.push(Sink::File(FileExporter::open(file)?));
    }
    if let Some(otlp) = &config.otlp {
        sinks.push(Sink::Otlp(OtlpExporter::new(otlp, config.max_batch_bytes)?));
    }
    if sinks.is_empty() {
        warn!("no exporter configured (exporters.otlp or .file): released traces are dropped");
    }
    let queued = store.outbox_len()?;
    Counters::add(&counters.export_queue, queued);

    let wake = Arc::new(Notify::new());
    let (closing, closing_rx) = watch::channel(false);
    let task = task::ExportTask {
        store,
        sinks,
        counters,
        retry: config.retry.clone(),
        max_batch_bytes: config.max_batch_bytes,
        wake: Arc::clone(&wake),
        closing: closing_rx,
    };
    Ok(Exporter {
        queue: ExportQueue { wake },
        closing,
        task: tokio::spawn(task.run()),
    })
}
