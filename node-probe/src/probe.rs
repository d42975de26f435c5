//! `Probe`: the running node probe, from attach to a flushed shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use aya::maps::{MapData, PerCpuArray};
use aya::Ebpf;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};
use wbpf_config::ProbeConfig;

use crate::clock::KtimeClock;
use crate::handler::EventHandler;
use crate::loader::{self, COUNTER_RINGBUF_FULL, COUNTER_UNMATCHED_RETURN};
use crate::stats::{Counters, ProbeStats};
use crate::{detector, exporter, ringbuf, ProbeError};

/// The node probe: eBPF detectors attached in the kernel, a task turning their events into
/// trigger spans, and the OTLP exporter sending those to the gateway.
///
/// Dropping a `Probe` detaches the programs and stops the reader, but exports the spans still
/// queued from a blocking drop; prefer [`Probe::shutdown`].
pub struct Probe {
    /// `None` once detached.
    ebpf: Option<Ebpf>,
    kernel_counters: PerCpuArray<MapData, u64>,
    counters: Arc<Counters>,
    provider: SdkTracerProvider,
    stop: watch::Sender<bool>,
    reader: JoinHandle<()>,
    gateway: String,
}

impl Probe {
    /// Loads and attaches everything, starts reading events and exporting triggers.
    ///
    /// Must be called inside a tokio runtime that outlives the probe (the gRPC channel and the
    /// reader task live on it). Fails, naming what is missing, without root (CAP_BPF and
    /// CAP_PERFMON), without kernel BTF, or when a binary or symbol cannot be found. If the
    /// returned future is dropped early, whatever was attached is detached again.
    pub async fn start(config: &ProbeConfig) -> Result<Probe, ProbeError> {
        let detectors = detector::resolve(config)?;
        let clock = KtimeClock::measure()?;
        let counters = Arc::new(Counters::default());
        let provider = exporter::provider(&config.gateway, Arc::clone(&counters))?;

        let context = config.context.clone();
        let table = detectors.clone();
        let loaded = tokio::task::spawn_blocking(move || loader::load(&table, context.as_ref()))
            .await
            .map_err(|source| ProbeError::Task {
                task: "load eBPF",
                source,
            })??;

        let detector_count = detectors.len();
        let mut handler = EventHandler {
            tracer: exporter::tracer(&provider),
            clock,
            detectors,
            counters: Arc::clone(&counters),
            undecodable: 0,
        };
        let (stop, stop_rx) = watch::channel(false);
        let reader = ringbuf::spawn(loaded.events, stop_rx, move |record| handler.handle(record))?;

        info!(detectors = detector_count, gateway = %config.gateway, "node probe started");
        Ok(Probe {
            ebpf: Some(loaded.ebpf),
            kernel_counters: loaded.counters,
            counters,
            provider,
            stop,
            reader,
            gateway: config.gateway.clone(),
        })
    }

    /// Counters since start; `events_lost` is read from the kernel on each call.
    pub fn stats(&self) -> ProbeStats {
        if let Some(lost) = self.kernel_counter(COUNTER_RINGBUF_FULL) {
            self.counters.events_lost.store(lost, Ordering::Relaxed);
        }
        self.counters.snapshot()
    }

    /// Detaches, drains the ring buffer, flushes the exporter, returns final stats.
    ///
    /// The flush waits for the gateway (bounded by the export timeout) on a blocking thread. If
    /// the future is dropped early, the programs may already be detached and the spans still
    /// queued are exported when the last handle to the exporter is dropped.
    pub async fn shutdown(mut self) -> Result<ProbeStats, ProbeError> {
        drop(self.ebpf.take());
        // Ignored error: the reader has already stopped if nobody is listening.
        let _ = self.stop.send(true);
        (&mut self.reader)
            .await
            .map_err(|source| ProbeError::Task {
                task: "ring buffer reader",
                source,
            })?;

        let unmatched = self.kernel_counter(COUNTER_UNMATCHED_RETURN).unwrap_or(0);
        debug!(
            returns = unmatched,
            "returns without a recorded entry (nested or early calls)"
        );

        let provider = self.provider.clone();
        let flushed = tokio::task::spawn_blocking(move || {
            let flushed = provider.force_flush();
            let closed = provider.shutdown();
            flushed.and(closed)
        })
        .await
        .map_err(|source| ProbeError::Task {
            task: "flush exporter",
            source,
        })?;

        let stats = self.stats();
        if stats.events_lost > 0 || stats.triggers_failed > 0 {
            error!(?stats, "node probe stopped; some triggers were lost");
        } else {
            info!(?stats, "node probe stopped");
        }
        match flushed {
            Ok(()) => Ok(stats),
            Err(source) => Err(ProbeError::Flush {
                gateway: self.gateway.clone(),
                stats,
                source,
            }),
        }
    }

    /// Sums one per-CPU counter of the kernel programs; `None` (logged) if the map read fails.
    fn kernel_counter(&self, index: u32) -> Option<u64> {
        match self.kernel_counters.get(&index, 0) {
            Ok(values) => Some(values.iter().sum()),
            Err(err) => {
                warn!(index, error = %err, "reading the kernel counters failed");
                None
            }
        }
    }
}

// The CLI moves the probe between tasks and may share it with a stats reporter.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Probe>();
};
