//! `Probe`: the running node probe, from attach through reloads to a flushed shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aya::maps::{Array, MapData, PerCpuArray};
use aya::Ebpf;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};
use wbpf_config::{ContextConfig, GatewayClientConfig, LatencyThreshold, ProbeConfig};

use crate::adaptive::{self, Adaptive};
use crate::clock::KtimeClock;
use crate::detector::{self, Detector, Spec};
use crate::error::DetectorFailure;
use crate::features::KernelFeatures;
use crate::handler::EventHandler;
use crate::loader::{
    self, Group, COUNTER_MAP_FULL, COUNTER_RINGBUF_FULL, COUNTER_UNMATCHED_RETURN,
};
use crate::reload::{self, Action, Configured, ReloadReport, Timing};
use crate::stats::{Counters, ProbeStats, TypeTimings};
use crate::table::Table;
use crate::{
    exporter, function_latency, memory_pressure, pool_faults, pool_objects, ringbuf,
    syscall_latency, ProbeError,
};
use crate::{privileges, requirements};

const MAP_HISTOGRAM: &str = "latency_hist";

/// The node probe: eBPF detectors attached in the kernel, tasks turning their events into
/// trigger spans, and the OTLP exporter sending those to the gateway.
///
/// Dropping a `Probe` detaches the programs and stops the readers, but exports the spans still
/// queued from a blocking drop; prefer [`Probe::shutdown`].
pub struct Probe {
    /// One per detector type with a running detector.
    objects: Vec<RunningObject>,
    /// The configured detectors, running or not, with their kernel indexes.
    detectors: Vec<Configured>,
    /// What the readers look detectors up in.
    table: Arc<Table>,
    context: Option<ContextConfig>,
    failures: Vec<DetectorFailure>,
    /// What this kernel was found to offer, checked once per feature.
    features: KernelFeatures,
    counters: Arc<Counters>,
    clock: KtimeClock,
    provider: SdkTracerProvider,
    gateway: GatewayClientConfig,
}

/// One loaded detector object, the task reading its ring buffer and its background tasks.
struct RunningObject {
    detector_type: &'static str,
    /// Names of the detectors it runs.
    running: Vec<String>,
    /// `None` once detached.
    ebpf: Option<Ebpf>,
    kernel_counters: PerCpuArray<MapData, u64>,
    reader: JoinHandle<()>,
    /// Background tasks besides the reader (adaptive thresholds, scans), by name.
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    stop: watch::Sender<bool>,
}

impl Probe {
    /// Loads and attaches every detector it can, starts reading events and exporting triggers.
    ///
    /// A detector that cannot start (a missing symbol, a tracepoint or feature this kernel
    /// lacks) is logged at ERROR and listed by [`Probe::failures`]; the others run. Fails when
    /// the configuration is invalid or no detector at all could start (the error lists each
    /// one's cause), e.g. without the capabilities a detector needs (named with it) or kernel
    /// BTF. With `strict_privileges`, also fails when holding capabilities none of the
    /// configured detectors needs, naming them.
    ///
    /// Must be called inside a tokio runtime that outlives the probe (the gRPC channel and the
    /// reader tasks live on it). If the returned future is dropped early, whatever was
    /// attached is detached again.
    pub async fn start(config: &ProbeConfig) -> Result<Probe, ProbeError> {
        let detectors = configured(config)?;
        if config.strict_privileges {
            let detectors: Vec<&Detector> = detectors.iter().map(|entry| &entry.detector).collect();
            privileges::refuse_excess(&detectors, config.context.is_some())?;
        }
        let clock = KtimeClock::measure()?;
        let counters = Arc::new(Counters::default());
        let provider = exporter::provider(&config.gateway, Arc::clone(&counters))?;
        let table = Arc::new(Table::new(
            detectors
                .iter()
                .map(|entry| entry.detector.clone())
                .collect(),
        ));
        let mut probe = Probe {
            objects: Vec::new(),
            detectors,
            table,
            context: config.context.clone(),
            failures: Vec::new(),
            features: KernelFeatures::default(),
            counters,
            clock,
            provider,
            gateway: config.gateway.clone(),
        };

        for detector_type in detector::TYPES {
            probe.load_type(detector_type).await;
        }
        for failure in &probe.failures {
            error!(
                detector = %failure.detector,
                detector_type = failure.detector_type,
                error = %failure,
                "detector not started"
            );
        }
        if probe.objects.is_empty() {
            return Err(ProbeError::NoDetectorStarted {
                failures: std::mem::take(&mut probe.failures),
            });
        }

        info!(
            detectors = probe.objects.iter().map(|o| o.running.len()).sum::<usize>(),
            failed = probe.failures.len(),
            gateway = %config.gateway.endpoint,
            "node probe started"
        );
        Ok(probe)
    }

    /// Applies a new configuration while running: adds, removes and retunes detectors.
    ///
    /// Objects whose detectors are unchanged keep running and lose no event; a changed type
    /// is unloaded (its pending events drained and exported) and loaded again, unless only
    /// thresholds changed (see the `reload` module). A detector that cannot start is listed
    /// in the report and by [`Probe::failures`]; the others run. An invalid configuration is
    /// rejected as a whole and changes nothing. `gateway` is not reloaded.
    ///
    /// If the future is dropped early, some types may be unloaded and not loaded again.
    pub async fn reload(&mut self, config: &ProbeConfig) -> Result<ReloadReport, ProbeError> {
        let new = reload::assign(&self.detectors, configured(config)?);
        let context_changed = config.context != self.context;
        let plan = reload::plan(&self.detectors, &new, context_changed);
        let mut report = ReloadReport {
            changes: reload::changes(&self.detectors, &new, &plan),
            ..ReloadReport::default()
        };
        if config.gateway != self.gateway {
            warn!(
                gateway = %self.gateway.endpoint,
                configured = %config.gateway.endpoint,
                "the gateway changes only on restart"
            );
            report.ignored.push("gateway");
        }

        let mut to_load = Vec::new();
        for (detector_type, action) in plan {
            let action = match action {
                Action::Retune(thresholds) => match self.retune(detector_type, thresholds) {
                    Ok(true) => continue,
                    Ok(false) => Action::Reload,
                    Err(error) => {
                        warn!(detector_type, error = %error, "retune failed; reloading");
                        Action::Reload
                    }
                },
                action => action,
            };
            if matches!(action, Action::Reload | Action::Unload) {
                if let Some(timing) = self.unload_type(detector_type).await? {
                    report.unloads.push(timing);
                }
            }
            if matches!(action, Action::Reload | Action::Load) {
                to_load.push(detector_type);
            }
        }

        self.table
            .replace(new.iter().map(|entry| entry.detector.clone()).collect());
        self.detectors = new;
        self.context = config.context.clone();
        for detector_type in to_load {
            let (timing, mut failures) = self.load_type(detector_type).await;
            report.loads.extend(timing);
            for failure in &failures {
                error!(
                    detector = %failure.detector,
                    detector_type = failure.detector_type,
                    error = %failure,
                    "detector not started"
                );
            }
            report.failures.append(&mut failures);
        }
        Ok(report)
    }

    /// The configured detectors that are not running, each with why.
    pub fn failures(&self) -> &[DetectorFailure] {
        &self.failures
    }

    /// The running detectors: (name, type), in load order.
    pub fn running(&self) -> Vec<(String, &'static str)> {
        self.objects
            .iter()
            .flat_map(|object| {
                let detector_type = object.detector_type;
                object
                    .running
                    .iter()
                    .map(move |name| (name.clone(), detector_type))
            })
            .collect()
    }

    /// Counters since start; `events_lost` and `untracked` are read from the kernel on each
    /// call.
    pub fn stats(&self) -> ProbeStats {
        if let Some(lost) = self.kernel_counter(COUNTER_RINGBUF_FULL) {
            let retired = self.counters.retired_lost.load(Ordering::Relaxed);
            self.counters
                .events_lost
                .store(lost + retired, Ordering::Relaxed);
        }
        if let Some(untracked) = self.kernel_counter(COUNTER_MAP_FULL) {
            let retired = self.counters.retired_untracked.load(Ordering::Relaxed);
            self.counters
                .untracked
                .store(untracked + retired, Ordering::Relaxed);
        }
        self.counters.snapshot()
    }

    /// Object load and unload times per detector type since start, every type listed.
    pub fn timings(&self) -> Vec<TypeTimings> {
        self.counters.per_type()
    }

    /// Detaches, drains the ring buffers, flushes the exporter, returns final stats.
    ///
    /// The flush waits for the gateway (bounded by the export timeout) on a blocking thread. If
    /// the future is dropped early, the programs may already be detached and the spans still
    /// queued are exported when the last handle to the exporter is dropped.
    pub async fn shutdown(mut self) -> Result<ProbeStats, ProbeError> {
        let unmatched = self.kernel_counter(COUNTER_UNMATCHED_RETURN).unwrap_or(0);
        for object in &mut self.objects {
            drop(object.ebpf.take());
        }
        for object in std::mem::take(&mut self.objects) {
            unload(object, &self.counters).await?;
        }
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
                gateway: self.gateway.endpoint.clone(),
                stats: Box::new(stats),
                source,
            }),
        }
    }

    /// Loads the object of one type for its configured detectors and starts reading it;
    /// records its failures. Returns the load time unless no detector of the type is set.
    async fn load_type(
        &mut self,
        detector_type: &'static str,
    ) -> (Option<Timing>, Vec<DetectorFailure>) {
        let configured: Vec<Detector> = self
            .detectors
            .iter()
            .filter(|entry| entry.detector.type_name() == detector_type)
            .map(|entry| entry.detector.clone())
            .collect();
        if configured.is_empty() {
            return (None, Vec::new());
        }
        let (members, mut failures) = self.gate(configured);
        if members.is_empty() {
            self.failures.extend(failures.iter().cloned());
            return (None, failures);
        }

        let started = Instant::now();
        let context = self.context.clone();
        let loading = members.clone();
        let loaded = tokio::task::spawn_blocking(move || load_object(&loading, context.as_ref()))
            .await
            .map_err(|source| ProbeError::Task {
                task: "load eBPF",
                source,
            })
            .and_then(|loaded| loaded);
        let members_ref: Vec<&Detector> = members.iter().collect();
        match loaded {
            Ok(mut group) => {
                failures.append(&mut group.failures);
                if !group.running.is_empty() {
                    match self.start_object(group, &members).await {
                        Ok(object) => self.objects.push(object),
                        Err(error) => {
                            failures.extend(loader::fail_all(&members_ref, error));
                        }
                    }
                }
            }
            Err(error) => failures.extend(loader::fail_all(&members_ref, error)),
        }

        let took = started.elapsed();
        self.counters.record_load(detector_type, took);
        info!(
            detector_type,
            took_us = took.as_micros() as u64,
            "detector object loaded"
        );
        self.failures.extend(failures.iter().cloned());
        let timing = Timing {
            detector_type,
            detectors: members.into_iter().map(|detector| detector.name).collect(),
            took,
        };
        (Some(timing), failures)
    }

    /// Splits detectors into those this kernel can run and the failures of those it cannot
    /// (a capability the probe lacks, a feature known to be missing); unknown checks let a
    /// detector through to the loader.
    fn gate(&mut self, detectors: Vec<Detector>) -> (Vec<Detector>, Vec<DetectorFailure>) {
        let context = self.context.is_some();
        let mut ready = Vec::new();
        let mut failures = Vec::new();
        for detector in detectors {
            let needs = requirements::of_detector(&mut self.features, &detector, context);
            let lacking = privileges::missing_for(detector.type_name(), &needs)
                .or_else(|| requirements::missing(&mut self.features, &needs));
            match lacking {
                None => ready.push(detector),
                Some(error) => failures.extend(loader::fail_all(&[&detector], error)),
            }
        }
        (ready, failures)
    }

    /// Starts the reader and background tasks of a loaded object.
    async fn start_object(
        &self,
        mut group: Group,
        members: &[Detector],
    ) -> Result<RunningObject, ProbeError> {
        let (stop, stop_rx) = watch::channel(false);
        let handler = || EventHandler {
            tracer: exporter::tracer(&self.provider),
            clock: self.clock,
            detectors: Arc::clone(&self.table),
            counters: Arc::clone(&self.counters),
            undecodable: 0,
        };
        let task = match group.detector_type {
            detector::FUNCTION_LATENCY => start_adaptive(&mut group, members, stop_rx.clone())?
                .map(|task| ("adaptive thresholds", task)),
            detector::POOL_OBJECTS => {
                pool_objects::start_leak_scan(&mut group, members, handler(), stop_rx.clone())?
                    .map(|task| ("leak scan", task))
            }
            detector::POOL_FAULTS => {
                pool_faults::start_range_scan(&mut group, members, stop_rx.clone())
                    .await?
                    .map(|task| ("pool range scan", task))
            }
            _ => None,
        };
        let mut handler = handler();
        let reader = ringbuf::spawn(group.events, stop_rx, move |record| handler.handle(record))?;
        let running = members
            .iter()
            .filter(|detector| group.running.contains(&detector.index))
            .map(|detector| detector.name.clone())
            .collect();
        Ok(RunningObject {
            detector_type: group.detector_type,
            running,
            ebpf: Some(group.ebpf),
            kernel_counters: group.counters,
            reader,
            tasks: task.into_iter().collect(),
            stop,
        })
    }

    /// Writes new thresholds into a running object's `thresholds` map; `false` when no
    /// object of that type runs (it failed to start), so there is nothing to retune.
    fn retune(
        &mut self,
        detector_type: &'static str,
        thresholds: Vec<(u32, u64)>,
    ) -> Result<bool, ProbeError> {
        let ebpf = self
            .objects
            .iter_mut()
            .find(|object| object.detector_type == detector_type)
            .and_then(|object| object.ebpf.as_mut());
        let Some(ebpf) = ebpf else {
            return Ok(false);
        };
        loader::write_thresholds(ebpf, thresholds.iter().copied())?;
        info!(detector_type, thresholds = ?thresholds, "thresholds rewritten in place");
        Ok(true)
    }

    /// Unloads the object of one type, if it runs, and forgets its failures.
    async fn unload_type(
        &mut self,
        detector_type: &'static str,
    ) -> Result<Option<Timing>, ProbeError> {
        self.failures
            .retain(|failure| failure.detector_type != detector_type);
        let Some(at) = self
            .objects
            .iter()
            .position(|object| object.detector_type == detector_type)
        else {
            return Ok(None);
        };
        let object = self.objects.swap_remove(at);
        let detectors = object.running.clone();
        let took = unload(object, &self.counters).await?;
        info!(
            detector_type,
            took_us = took.as_micros() as u64,
            "detector object unloaded"
        );
        Ok(Some(Timing {
            detector_type,
            detectors,
            took,
        }))
    }

    /// Sums one per-CPU counter over every object; `None` (logged) if a map read fails.
    fn kernel_counter(&self, index: u32) -> Option<u64> {
        let mut total = 0;
        for object in &self.objects {
            total += read_counter(&object.kernel_counters, index)?;
        }
        Some(total)
    }
}

/// The configured detectors, validated and numbered in order.
fn configured(config: &ProbeConfig) -> Result<Vec<Configured>, ProbeError> {
    let detectors = detector::resolve(config)?;
    Ok(detectors
        .into_iter()
        .zip(config.detectors.iter().cloned())
        .map(|(detector, config)| Configured { detector, config })
        .collect())
}

/// Loads the object of the type of `members` (all of one type).
fn load_object(members: &[Detector], context: Option<&ContextConfig>) -> Result<Group, ProbeError> {
    let refs: Vec<&Detector> = members.iter().collect();
    let detector_type = members.first().map_or("", Detector::type_name);
    match detector_type {
        detector::FUNCTION_LATENCY => function_latency::load(&refs, context),
        detector::SYSCALL_LATENCY => syscall_latency::load(&refs, context),
        detector::MEMORY_PRESSURE => memory_pressure::load(&refs, context),
        detector::POOL_OBJECTS => pool_objects::load(&refs, context),
        _ => pool_faults::load(&refs, context),
    }
}

/// Detaches an object, drains and stops its reader and tasks, keeps its kernel counts.
async fn unload(mut object: RunningObject, counters: &Counters) -> Result<Duration, ProbeError> {
    let started = Instant::now();
    drop(object.ebpf.take());
    // Ignored error: the tasks have already stopped if nobody is listening.
    let _ = object.stop.send(true);
    (&mut object.reader)
        .await
        .map_err(|source| ProbeError::Task {
            task: "ring buffer reader",
            source,
        })?;
    for (task, handle) in std::mem::take(&mut object.tasks) {
        handle
            .await
            .map_err(|source| ProbeError::Task { task, source })?;
    }

    let retire = |index, total: &std::sync::atomic::AtomicU64| {
        if let Some(count) = read_counter(&object.kernel_counters, index) {
            Counters::add(total, count);
        }
    };
    retire(COUNTER_RINGBUF_FULL, &counters.retired_lost);
    retire(COUNTER_MAP_FULL, &counters.retired_untracked);
    let detector_type = object.detector_type;
    drop(object);
    let took = started.elapsed();
    counters.record_unload(detector_type, took);
    Ok(took)
}

/// One per-CPU counter summed over CPUs; `None` (logged) if the read fails.
fn read_counter(counters: &PerCpuArray<MapData, u64>, index: u32) -> Option<u64> {
    match counters.get(&index, 0) {
        Ok(values) => Some(values.iter().sum()),
        Err(err) => {
            warn!(index, error = %err, "reading the kernel counters failed");
            None
        }
    }
}

/// Starts recomputing thresholds when any running function-latency detector is adaptive.
fn start_adaptive(
    group: &mut Group,
    detectors: &[Detector],
    stop: watch::Receiver<bool>,
) -> Result<Option<JoinHandle<()>>, ProbeError> {
    let adaptive: Vec<Adaptive> = group
        .running_detectors(detectors)
        .into_iter()
        .filter_map(|detector| {
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
                index: detector.index,
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
