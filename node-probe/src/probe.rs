//! `Probe`: the running node probe, from attach to a flushed shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use aya::maps::{Array, MapData, PerCpuArray};
use aya::Ebpf;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};
use wbpf_config::{ContextConfig, LatencyThreshold, ProbeConfig};

use crate::adaptive::{self, Adaptive};
use crate::clock::KtimeClock;
use crate::detector::{self, Detector, Spec};
use crate::error::DetectorFailure;
use crate::handler::EventHandler;
use crate::loader::{
    self, Group, COUNTER_MAP_FULL, COUNTER_RINGBUF_FULL, COUNTER_UNMATCHED_RETURN,
};
use crate::stats::{Counters, ProbeStats};
use crate::{
    exporter, function_latency, memory_pressure, pool_faults, pool_objects, ringbuf,
    syscall_latency, ProbeError,
};

const MAP_HISTOGRAM: &str = "latency_hist";

/// The node probe: eBPF detectors attached in the kernel, tasks turning their events into
/// trigger spans, and the OTLP exporter sending those to the gateway.
///
/// Dropping a `Probe` detaches the programs and stops the readers, but exports the spans still
/// queued from a blocking drop; prefer [`Probe::shutdown`].
pub struct Probe {
    objects: Vec<RunningObject>,
    failures: Vec<DetectorFailure>,
    counters: Arc<Counters>,
    provider: SdkTracerProvider,
    stop: watch::Sender<bool>,
    /// Background tasks besides the readers (adaptive thresholds, scans), by name.
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    gateway: String,
}

/// One loaded detector object and the task reading its ring buffer.
struct RunningObject {
    /// `None` once detached.
    ebpf: Option<Ebpf>,
    kernel_counters: PerCpuArray<MapData, u64>,
    reader: JoinHandle<()>,
}

impl Probe {
    /// Loads and attaches every detector it can, starts reading events and exporting triggers.
    ///
    /// A detector that cannot start (a missing symbol, a tracepoint or feature this kernel
    /// lacks) is logged at ERROR and listed by [`Probe::failures`]; the others run. Fails when
    /// the configuration is invalid or no detector at all could start (the error lists each
    /// one's cause), e.g. without root (CAP_BPF and CAP_PERFMON) or kernel BTF.
    ///
    /// Must be called inside a tokio runtime that outlives the probe (the gRPC channel and the
    /// reader tasks live on it). If the returned future is dropped early, whatever was
    /// attached is detached again.
    pub async fn start(config: &ProbeConfig) -> Result<Probe, ProbeError> {
        let detectors = Arc::new(detector::resolve(config)?);
        let clock = KtimeClock::measure()?;
        let counters = Arc::new(Counters::default());
        let provider = exporter::provider(&config.gateway, Arc::clone(&counters))?;

        let context = config.context.clone();
        let table = Arc::clone(&detectors);
        let (groups, failures) =
            tokio::task::spawn_blocking(move || load_all(&table, context.as_ref()))
                .await
                .map_err(|source| ProbeError::Task {
                    task: "load eBPF",
                    source,
                })?;
        for failure in &failures {
            error!(
                detector = %failure.detector,
                detector_type = failure.detector_type,
                error = %failure,
                "detector not started"
            );
        }
        if groups.is_empty() {
            return Err(ProbeError::NoDetectorStarted { failures });
        }

        let (stop, stop_rx) = watch::channel(false);
        let handler = || EventHandler {
            tracer: exporter::tracer(&provider),
            clock,
            detectors: Arc::clone(&detectors),
            counters: Arc::clone(&counters),
            undecodable: 0,
        };
        let mut tasks = Vec::new();
        let mut objects = Vec::with_capacity(groups.len());
        let mut running = 0;
        for mut group in groups {
            running += group.running.len();
            let task = match group.detector_type {
                detector::FUNCTION_LATENCY => {
                    start_adaptive(&mut group, &detectors, stop_rx.clone())?
                        .map(|task| ("adaptive thresholds", task))
                }
                detector::POOL_OBJECTS => pool_objects::start_leak_scan(
                    &mut group,
                    &detectors,
                    handler(),
                    stop_rx.clone(),
                )?
                .map(|task| ("leak scan", task)),
                detector::POOL_FAULTS => {
                    pool_faults::start_range_scan(&mut group, &detectors, stop_rx.clone())
                        .await?
                        .map(|task| ("pool range scan", task))
                }
                _ => None,
            };
            tasks.extend(task);
            let mut handler = handler();
            let reader = ringbuf::spawn(group.events, stop_rx.clone(), move |record| {
                handler.handle(record)
            })?;
            objects.push(RunningObject {
                ebpf: Some(group.ebpf),
                kernel_counters: group.counters,
                reader,
            });
        }

        info!(
            detectors = running,
            failed = failures.len(),
            gateway = %config.gateway,
            "node probe started"
        );
        Ok(Probe {
            objects,
            failures,
            counters,
            provider,
            stop,
            tasks,
            gateway: config.gateway.clone(),
        })
    }

    /// The configured detectors that are not running, each with why.
    pub fn failures(&self) -> &[DetectorFailure] {
        &self.failures
    }

    /// Counters since start; `events_lost` and `untracked` are read from the kernel on each
    /// call.
    pub fn stats(&self) -> ProbeStats {
        if let Some(lost) = self.kernel_counter(COUNTER_RINGBUF_FULL) {
            self.counters.events_lost.store(lost, Ordering::Relaxed);
        }
        if let Some(untracked) = self.kernel_counter(COUNTER_MAP_FULL) {
            self.counters.untracked.store(untracked, Ordering::Relaxed);
        }
        self.counters.snapshot()
    }

    /// Detaches, drains the ring buffers, flushes the exporter, returns final stats.
    ///
    /// The flush waits for the gateway (bounded by the export timeout) on a blocking thread. If
    /// the future is dropped early, the programs may already be detached and the spans still
    /// queued are exported when the last handle to the exporter is dropped.
    pub async fn shutdown(mut self) -> Result<ProbeStats, ProbeError> {
        for object in &mut self.objects {
            drop(object.ebpf.take());
        }
        // Ignored error: the tasks have already stopped if nobody is listening.
        let _ = self.stop.send(true);
        for object in &mut self.objects {
            (&mut object.reader)
                .await
                .map_err(|source| ProbeError::Task {
                    task: "ring buffer reader",
                    source,
                })?;
        }
        for (task, handle) in std::mem::take(&mut self.tasks) {
            handle
                .await
                .map_err(|source| ProbeError::Task { task, source })?;
        }

        let unmatched = self.kernel_counter(COUNTER_UNMATCHED_RETURN).unwrap_or(0);
        debug!(
            ends = unmatched,
            "ends without a recorded start (nested calls, or started before attaching)"
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

    /// Sums one per-CPU counter over every object; `None` (logged) if a map read fails.
    fn kernel_counter(&self, index: u32) -> Option<u64> {
        let mut total = 0;
        for object in &self.objects {
            match object.kernel_counters.get(&index, 0) {
                Ok(values) => total += values.iter().sum::<u64>(),
                Err(err) => {
                    warn!(index, error = %err, "reading the kernel counters failed");
                    return None;
                }
            }
        }
        Some(total)
    }
}

/// Loads one object per detector type present; returns those with a running detector and
/// every detector that did not start.
fn load_all(
    detectors: &[Detector],
    context: Option<&ContextConfig>,
) -> (Vec<Group>, Vec<DetectorFailure>) {
    type Load = fn(&[&Detector], Option<&ContextConfig>) -> Result<Group, ProbeError>;
    let loaders: [(&str, Load); 5] = [
        (detector::FUNCTION_LATENCY, function_latency::load),
        (detector::SYSCALL_LATENCY, syscall_latency::load),
        (detector::MEMORY_PRESSURE, memory_pressure::load),
        (detector::POOL_OBJECTS, pool_objects::load),
        (detector::POOL_FAULTS, pool_faults::load),
    ];

    let mut groups = Vec::new();
    let mut failures = Vec::new();
    for (detector_type, load) in loaders {
        let members: Vec<&Detector> = detectors
            .iter()
            .filter(|detector| detector.type_name() == detector_type)
            .collect();
        if members.is_empty() {
            continue;
        }
        match load(&members, context) {
            Ok(mut group) => {
                failures.append(&mut group.failures);
                if !group.running.is_empty() {
                    groups.push(group);
                }
            }
            Err(error) => failures.extend(loader::fail_all(&members, error)),
        }
    }
    (groups, failures)
}

/// Starts recomputing thresholds when any running function-latency detector is adaptive.
fn start_adaptive(
    group: &mut Group,
    detectors: &[Detector],
    stop: watch::Receiver<bool>,
) -> Result<Option<JoinHandle<()>>, ProbeError> {
    let adaptive: Vec<Adaptive> = group
        .running
        .iter()
        .filter_map(|&index| {
            let detector = detectors.get(index as usize)?;
            let Spec::FunctionLatency(spec) = &detector.spec else {
                return None;
            };
            let LatencyThreshold::Percentile {
                percentile,
                min_samples,
            } = spec.threshold
            else {
                return None;
            };
            Some(Adaptive {
                index,
                name: detector.name.clone(),
                percentile,
                min_samples,
            })
        })
        .collect();
    if adaptive.is_empty() {
        return Ok(None);
    }

    let histogram = PerCpuArray::try_from(loader::take_map(&mut group.ebpf, MAP_HISTOGRAM)?)
        .map_err(loader::map_error(MAP_HISTOGRAM))?;
    let thresholds = Array::try_from(loader::take_map(&mut group.ebpf, loader::MAP_THRESHOLDS)?)
        .map_err(loader::map_error(loader::MAP_THRESHOLDS))?;
    Ok(Some(adaptive::spawn(histogram, thresholds, adaptive, stop)))
}

// The CLI moves the probe between tasks and may share it with a stats reporter.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Probe>();
};
