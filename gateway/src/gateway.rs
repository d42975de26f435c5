//! [`Gateway`]: starting, observing and stopping the whole pipeline.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};
use wbpf_config::{GatewayConfig, SamplingConfig, SamplingMode};
use wbpf_sampler::tail::Projection;
use wbpf_storage::{SpanStore, StoreOptions, TraceId};

use crate::buffer::{Buffer, BufferParts, Command, DecisionCacheSizes};
use crate::compare::{self, CompareCounters};
use crate::correlate::ProcessIndex;
use crate::export::Exporter;
use crate::guard::Guard;
use crate::lateral::LateralIndex;
use crate::mode::Mode;
use crate::policy_metrics::PolicyMetrics;
use crate::receiver::{grpc, http, Ingestor, ReadTimeouts};
use crate::split::SplitOptions;
use crate::stats::Counters;
use crate::{admin, export, metrics, CompareReader, CompareSnapshot, GatewayError, GatewayStats};

/// Requests waiting for the buffer thread before receivers wait too (backpressure).
const COMMAND_QUEUE: usize = 1024;

/// A running gateway.
pub struct Gateway {
    counters: Arc<Counters>,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    commands: mpsc::Sender<Command>,
    tasks: Vec<JoinHandle<()>>,
    buffer: std::thread::JoinHandle<()>,
    exporter: Exporter,
    compare: Option<(Arc<CompareCounters>, std::thread::JoinHandle<()>)>,
}

impl Gateway {
    /// Opens the store, recovers buffered traces, binds the receivers and starts serving.
    ///
    /// Must be called inside a multi-threaded tokio runtime.
    pub async fn start(config: &GatewayConfig) -> Result<Self, GatewayError> {
        let counters = Arc::new(Counters::default());
        let store_options = StoreOptions {
            sync_writes: config.storage.sync_writes,
            ..StoreOptions::default()
        };
        let path = config.storage.path.clone();
        let store = tokio::task::spawn_blocking(move || SpanStore::open(&path, &store_options))
            .await
            .map_err(|err| GatewayError::Thread {
                name: "open store",
                message: err.to_string(),
            })??;
        let store = Arc::new(store);
        let exporter = export::start(&config.exporters, Arc::clone(&store), Arc::clone(&counters))?;

        let mode = Mode::from_config(&config.sampling, &config.storage)?;
        let comparison = compare::start(&config.sampling, &config.storage)?;
        let policy_metrics = Arc::new(PolicyMetrics::default());
        let correlation = &config.sampling.correlation;
        let parts = BufferParts {
            export: exporter.queue(),
            counters: Arc::clone(&counters),
            policy_metrics: Arc::clone(&policy_metrics),
            decision_cache: decision_cache_sizes(&config.sampling),
            shadow: comparison.as_ref().map(|c| c.sender.clone()),
            lateral: config.sampling.lateral.as_ref().map(LateralIndex::new),
            correlation: correlation.enabled.then(|| ProcessIndex::new(correlation)),
            max_bytes: config.storage.max_bytes,
            max_trace_bytes: config.storage.max_trace_bytes,
        };
        let buffer = tokio::task::spawn_blocking(move || Buffer::open(store, mode, parts))
            .await
            .map_err(|err| GatewayError::Thread {
                name: "open store",
                message: err.to_string(),
            })??;

        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let buffer = std::thread::Builder::new()
            .name("wbpf-buffer".to_owned())
            .spawn(move || buffer.run(command_rx))
            .map_err(|err| GatewayError::Thread {
                name: "wbpf-buffer",
                message: err.to_string(),
            })?;

        let (stop, stop_rx) = watch::channel(false);
        let receivers = &config.receivers;
        let rules = match config.sampling.trigger_rules_block() {
            Some(block) => Some(Arc::new(
                wbpf_sampler::TailSampler::build(&block)
                    .map_err(|err| GatewayError::Sampler(format!("trigger_rules: {err}")))?,
            )),
            None => None,
        };
        let lateral_keys = config.sampling.lateral.as_ref();
        let split = SplitOptions {
            rules,
            lateral_keys: lateral_keys
                .map_or_else(Vec::new, |l| l.attributes.clone())
                .into(),
            correlate: config.sampling.correlation.enabled,
            // Splitting repeats resources per trace; allow some growth, but bounded.
            max_bytes: receivers.max_request_bytes.saturating_mul(4),
            projection: projection(&config.sampling),
        };
        let ingestor = Ingestor::new(
            commands.clone(),
            Arc::clone(&counters),
            split,
            receivers.max_request_bytes,
            receivers.max_in_flight_bytes,
        );
        let addrs = [receivers.grpc, receivers.http];
        let guard = Guard::load(
            "otlp",
            "receivers",
            receivers.auth.as_ref(),
            receivers.tls.as_ref(),
            &addrs,
        )?
        .with_triggers(receivers.trigger_auth.as_ref(), &addrs)?;
        let timeouts = ReadTimeouts {
            header: receivers.read_header_timeout,
            body: receivers.read_timeout,
        };
        let (grpc_addr, grpc_server) = grpc::serve(
            receivers.grpc,
            ingestor.clone(),
            &guard,
            timeouts,
            stop_rx.clone(),
        )
        .await?;
        let (http_addr, http_server) =
            http::serve(receivers.http, ingestor, &guard, timeouts, stop_rx.clone()).await?;

        let stop_rx_admin = stop_rx.clone();
        let sweeper = sweep_periodically(commands.clone(), config.sampling.sweep_interval, stop_rx);
        let mut tasks = vec![
            tokio::spawn(grpc_server),
            tokio::spawn(http_server),
            tokio::spawn(sweeper),
        ];
        let mut admin_addr = None;
        if let Some(admin_config) = &config.admin {
            let compare_counters = comparison.as_ref().map(|c| Arc::clone(&c.counters));
            let registry = metrics::registry(
                Arc::clone(&counters),
                &policy_metrics,
                compare_counters.clone(),
            );
            let guard = Guard::load(
                "admin",
                "admin",
                admin_config.auth.as_ref(),
                admin_config.tls.as_ref(),
                &[admin_config.listen],
            )?;
            let (addr, server) = admin::serve(
                admin_config.listen,
                commands.clone(),
                registry,
                compare_counters.map(CompareReader::new),
                &guard,
                stop_rx_admin,
            )
            .await?;
            admin_addr = Some(addr);
            tasks.push(tokio::spawn(server));
        }
        info!(%grpc_addr, %http_addr, storage = %config.storage.path.display(), "gateway started");

        Ok(Self {
            counters,
            grpc_addr,
            http_addr,
            admin_addr,
            stop,
            commands,
            tasks,
            buffer,
            exporter,
            compare: comparison.map(|c| (c.counters, c.thread)),
        })
    }

    /// The address the OTLP/gRPC receiver is bound to.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The address the OTLP/HTTP receiver is bound to.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The address of the admin port (`/metrics`, `/v1/triggers`), if it is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The counters so far.
    pub fn stats(&self) -> GatewayStats {
        self.counters.snapshot()
    }

    /// What each mode of `sampling.compare` kept so far; `None` without a comparison.
    pub fn compare(&self) -> Option<CompareSnapshot> {
        self.compare
            .as_ref()
            .map(|(counters, _)| counters.snapshot())
    }

    /// A reader of the comparison's figures that outlives [`Gateway::shutdown`], which
    /// completes the comparison of every trace still pending.
    pub fn compare_reader(&self) -> Option<CompareReader> {
        self.compare
            .as_ref()
            .map(|(counters, _)| CompareReader::new(Arc::clone(counters)))
    }

    /// Keeps a trace, as if a trigger span for it had arrived.
    pub async fn trigger(&self, trace_id: [u8; 16]) -> Result<(), GatewayError> {
        self.commands
            .send(Command::Trigger {
                trace: TraceId(trace_id),
            })
            .await
            .map_err(|_| GatewayError::ShuttingDown)
    }

    /// Stops receiving, finishes queued work, flushes the exporters and returns final counters.
    pub async fn shutdown(self) -> Result<GatewayStats, GatewayError> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(err) = task.await {
                warn!(error = %err, "a gateway task failed");
            }
        }

        // Queued after every request that was already waiting, so those are still stored.
        let _ = self.commands.send(Command::Shutdown).await;
        drop(self.commands);
        let buffer = self.buffer;
        tokio::task::spawn_blocking(move || buffer.join())
            .await
            .map_err(|err| GatewayError::Thread {
                name: "wbpf-buffer",
                message: err.to_string(),
            })?
            .map_err(|_| GatewayError::Thread {
                name: "wbpf-buffer",
                message: "panicked".to_owned(),
            })?;

        self.exporter.shutdown().await;
        if let Some((_, thread)) = self.compare {
            // The buffer held the last sender; the shadow now decides what is pending.
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                warn!("the comparison thread failed");
            }
        }
        let stats = self.counters.snapshot();
        info!(?stats, "gateway stopped");
        Ok(stats)
    }
}

/// How many decisions the in-memory caches hold: the tail block's `decision_cache` sizes in
/// tail mode when set, `sampling.decision_cache_size` for each kind otherwise. Decisions also
/// live in RocksDB, so a miss costs a read, not a wrong decision.
fn decision_cache_sizes(sampling: &SamplingConfig) -> DecisionCacheSizes {
    let fallback = sampling.decision_cache_size;
    let block = sampling
        .tail_sampling
        .as_ref()
        .map(|tail| &tail.decision_cache);
    let pick = |size: u64| match (sampling.mode, size) {
        (SamplingMode::Tail, size) if size > 0 => size,
        _ => fallback,
    };
    DecisionCacheSizes {
        sampled: pick(block.map_or(0, |c| c.sampled_cache_size)),
        not_sampled: pick(block.map_or(0, |c| c.non_sampled_cache_size)),
    }
}

/// In tail mode, what its policies read: the buffer keeps that much of each waiting trace in
/// memory and decides without reading the spans back.
fn projection(sampling: &SamplingConfig) -> Option<Arc<Projection>> {
    match (sampling.mode, &sampling.tail_sampling) {
        (SamplingMode::Tail, Some(block)) => Some(Arc::new(Projection::of(block))),
        _ => None,
    }
}

async fn sweep_periodically(
    commands: mpsc::Sender<Command>,
    interval: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if commands.send(Command::Sweep).await.is_err() {
                    break;
                }
            }
            _ = crate::stop::stopped(&mut stop) => break,
        }
    }
}
