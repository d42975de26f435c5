//! OTLP receivers. Both hand validated, per-trace groups to the buffer through [`Ingestor`].

pub mod grpc;
mod grpc_service;
pub mod http;

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::sync::{mpsc, oneshot};

use crate::buffer::Command;
use crate::clock::now_ms;
use crate::split::{split, SplitOptions};
use crate::stats::Counters;
use crate::validate::validate;
use crate::GatewayError;

/// The protocol-independent half of a receiver.
#[derive(Clone)]
pub struct Ingestor {
    commands: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    split: Arc<SplitOptions>,
    pub max_request_bytes: usize,
}

impl Ingestor {
    /// `split.max_bytes` bounds the groups of one request; `max_request_bytes` the request.
    pub fn new(
        commands: mpsc::Sender<Command>,
        counters: Arc<Counters>,
        split: SplitOptions,
        max_request_bytes: usize,
    ) -> Self {
        Self {
            commands,
            counters,
            split: Arc::new(split),
            max_request_bytes,
        }
    }

    /// Validates and stores a request; returns once its spans are committed.
    ///
    /// Cancel safety: if the caller is dropped after the request was queued, the spans are
    /// still stored; only the acknowledgement is lost, and a retrying client may send them
    /// again (duplicates carry the same span ids).
    pub async fn ingest(&self, request: ExportTraceServiceRequest) -> Result<(), GatewayError> {
        Counters::add(&self.counters.requests, 1);
        if let Err(message) = validate(&request) {
            Counters::add(&self.counters.requests_rejected, 1);
            return Err(GatewayError::InvalidRequest(message));
        }

        let options = Arc::clone(&self.split);
        let split = move || split(request, &options, now_ms());
        let groups = tokio::task::spawn_blocking(split)
            .await
            .map_err(|err| GatewayError::Thread {
                name: "split",
                message: err.to_string(),
            })?
            .map_err(|message| {
                Counters::add(&self.counters.requests_rejected, 1);
                GatewayError::TooLarge(message)
            })?;
        if groups.is_empty() {
            return Ok(());
        }

        let (ack, done) = oneshot::channel();
        self.commands
            .send(Command::Ingest { groups, ack })
            .await
            .map_err(|_| GatewayError::ShuttingDown)?;
        done.await.map_err(|_| GatewayError::ShuttingDown)?
    }

    pub fn count_rejected(&self) {
        Counters::add(&self.counters.requests, 1);
        Counters::add(&self.counters.requests_rejected, 1);
    }
}
