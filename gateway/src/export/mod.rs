//! Exporters of released traces, fed by one queue.
//!
//! The buffer thread pushes the resource spans of released traces; one task batches them and
//! hands each batch to every configured exporter. Exported spans are the stored OTLP messages,
//! unchanged: ids, attributes, events, links, status and resource are as received.
//!
//! Known gap: the queue lives in memory. A crash after a trace was released and before it was
//! exported loses that export; a persistent queue in RocksDB fixes it.

mod file;
mod otlp;

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use wbpf_config::ExportersConfig;

use crate::stats::Counters;
use crate::GatewayError;

pub use file::FileExporter;
pub use otlp::OtlpExporter;

/// Most resource spans in one export call.
const MAX_BATCH: usize = 512;

/// The sending side, held by the buffer thread.
#[derive(Clone)]
pub struct ExportQueue {
    tx: mpsc::UnboundedSender<Vec<ResourceSpans>>,
}

impl ExportQueue {
    pub fn push(&self, resource_spans: Vec<ResourceSpans>) {
        // Fails only after the export task ended, which happens at shutdown after the buffer.
        let _ = self.tx.send(resource_spans);
    }
}

/// Starts the export task; it ends when every [`ExportQueue`] is dropped and the queue is empty.
pub fn start(
    config: &ExportersConfig,
    counters: Arc<Counters>,
) -> Result<(ExportQueue, JoinHandle<()>), GatewayError> {
    let file = config.file.as_ref().map(FileExporter::open).transpose()?;
    let otlp = config.otlp.as_ref().map(OtlpExporter::new).transpose()?;
    if file.is_none() && otlp.is_none() {
        warn!("no exporter configured (exporters.otlp or .file): released traces are dropped");
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(rx, file, otlp, counters));
    Ok((ExportQueue { tx }, task))
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<Vec<ResourceSpans>>,
    mut file: Option<FileExporter>,
    mut otlp: Option<OtlpExporter>,
    counters: Arc<Counters>,
) {
    let discard = file.is_none() && otlp.is_none();
    while let Some(first) = rx.recv().await {
        if discard {
            continue;
        }
        let mut resource_spans = first;
        while resource_spans.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(more) => resource_spans.extend(more),
                Err(_) => break,
            }
        }
        let request = ExportTraceServiceRequest { resource_spans };
        let spans: usize = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        let bytes = request.encoded_len();

        let mut delivered = true;
        if let Some(file) = file.as_mut() {
            delivered &= file.export(&request).await;
        }
        if let Some(otlp) = otlp.as_mut() {
            delivered &= otlp.export(request).await;
        }
        if delivered {
            Counters::add(&counters.spans_exported, spans as u64);
            Counters::add(&counters.bytes_exported, bytes as u64);
        } else {
            Counters::add(&counters.export_failures, 1);
        }
        debug!(spans, bytes, delivered, "export batch");
    }
    if let Some(file) = file.as_mut() {
        file.flush().await;
    }
}
