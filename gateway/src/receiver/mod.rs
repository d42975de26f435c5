//! OTLP receivers. Both hand validated, per-trace groups to the buffer through [`Ingestor`].

mod admission;
pub mod grpc;
mod grpc_incoming;
mod grpc_service;
pub mod http;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};
use wbpf_otlp::validate::{validate_with, Report};
use wbpf_sampler::is_trigger;

use self::admission::Admission;
use crate::buffer::Command;
use crate::clock::now_ms;
use crate::guard::Admitted;
use crate::split::{split, SplitOptions};
use crate::stats::Counters;
use crate::throttle::Throttle;
use crate::GatewayError;

/// How long a client may take over each part of a request (`receivers.read_header_timeout`,
/// `receivers.read_timeout`).
#[derive(Debug, Clone, Copy)]
pub struct ReadTimeouts {
    /// Until an HTTP request's headers are in; until a gRPC client's first bytes.
    pub header: Duration,
    /// Until an HTTP request's body is in; until a gRPC call is answered.
    pub body: Duration,
}

/// Warnings about requests accepted in part: one every 10 s, with how many were left out.
static PARTIAL: Throttle = Throttle::new(10_000);

/// The protocol-independent half of a receiver.
#[derive(Clone)]
pub struct Ingestor {
    commands: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    split: Arc<SplitOptions>,
    admission: Admission,
    pub max_request_bytes: usize,
}

impl Ingestor {
    /// `split.max_bytes` bounds the groups of one request, `max_request_bytes` the request,
    /// `max_in_flight_bytes` all requests waiting to be committed.
    pub fn new(
        commands: mpsc::Sender<Command>,
        counters: Arc<Counters>,
        split: SplitOptions,
        max_request_bytes: usize,
        max_in_flight_bytes: usize,
    ) -> Self {
        Self {
            commands,
            counters,
            split: Arc::new(split),
            admission: Admission::new(max_in_flight_bytes),
            max_request_bytes,
        }
    }

    /// Validates and stores a request; returns once its spans are committed, with what was
    /// rejected or repaired on the way (see [`wbpf_otlp::validate`]). Trigger spans are
    /// rejected unless the request was `admitted` to carry them.
    ///
    /// Cancel safety: if the caller is dropped after the request was queued, the spans are
    /// still stored; only the acknowledgement is lost, and a retrying client may send them
    /// again (duplicates carry the same span ids).
    pub async fn ingest(
        &self,
        mut request: ExportTraceServiceRequest,
        admitted: Admitted,
    ) -> Result<Report, GatewayError> {
        Counters::add(&self.counters.requests, 1);
        let _in_flight = self
            .admission
            .admit(request.encoded_len())
            .inspect_err(|_| Counters::add(&self.counters.requests_refused_overload, 1))?;

        let options = Arc::clone(&self.split);
        let prepare = move || {
            let report = validate_with(&mut request, |span| refuse_trigger(span, admitted));
            if report.all_rejected() {
                return Err(GatewayError::InvalidRequest(report.message()));
            }
            let groups = split(request, &options, now_ms()).map_err(GatewayError::TooLarge)?;
            Ok((report, groups))
        };
        let (report, groups) = tokio::task::spawn_blocking(prepare)
            .await
            .map_err(|err| GatewayError::Thread {
                name: "split",
                message: err.to_string(),
            })?
            .inspect_err(|_| Counters::add(&self.counters.requests_rejected, 1))?;
        if report.rejected > 0 {
            if let Some(also_partial) = PARTIAL.admit() {
                let (rejected_spans, message) = (report.rejected, report.message());
                warn!(rejected_spans, %message, also_partial, "accepted part of a request");
            }
        } else if report.repaired > 0 {
            debug!(repaired = report.repaired, message = %report.message(), "repaired spans");
        }
        if groups.is_empty() {
            return Ok(report);
        }

        let (ack, done) = oneshot::channel();
        self.commands
            .send(Command::Ingest { groups, ack })
            .await
            .map_err(|_| GatewayError::ShuttingDown)?;
        done.await.map_err(|_| GatewayError::ShuttingDown)??;
        Ok(report)
    }

    pub fn count_rejected(&self) {
        Counters::add(&self.counters.requests, 1);
        Counters::add(&self.counters.requests_rejected, 1);
    }
}

/// Why `span` may not be stored: it is a trigger and its request was not admitted to send any.
fn refuse_trigger(span: &Span, admitted: Admitted) -> Option<String> {
    (!admitted.may_trigger && is_trigger(span)).then(|| {
        "attributes[wbpf.trigger]: trigger spans need the probes' credentials \
         (receivers.trigger_auth)"
            .to_owned()
    })
}
