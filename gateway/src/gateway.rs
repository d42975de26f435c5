//! [`Gateway`]: starting, observing and stopping the whole pipeline.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};
use wbpf_config::GatewayConfig;
use wbpf_storage::{SpanStore, StoreOptions, TraceId};

use crate::buffer::{Buffer, Command};
use crate::mode::Mode;
use crate::receiver::{grpc, http, Ingestor};
use crate::stats::Counters;
use crate::{admin, export, metrics, GatewayError, GatewayStats};

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
    exporter: JoinHandle<()>,
}

impl Gateway {
    /// Opens the store, recovers buffered traces, binds the receivers and starts serving.
    ///
    /// Must be called inside a multi-threaded tokio runtime.
    pub async fn start(config: &GatewayConfig) -> Result<Self, GatewayError> {
        let counters = Arc::new(Counters::default());
        let (export_queue, exporter) = export::start(&config.exporters, Arc::clone(&counters))?;

        let store_options = StoreOptions {
            sync_writes: config.storage.sync_writes,
        };
        let path = config.storage.path.clone();
        let mode = Mode::from_config(&config.sampling, &config.storage)?;
        let cache_size = config.sampling.decision_cache_size;
        let buffer_counters = Arc::clone(&counters);
        let buffer = tokio::task::spawn_blocking(move || {
            let store = Arc::new(SpanStore::open(&path, &store_options)?);
            Buffer::open(store, mode, cache_size, export_queue, buffer_counters)
        })
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
        let ingestor = Ingestor::new(
            commands.clone(),
            Arc::clone(&counters),
            rules,
            receivers.max_request_bytes,
        );
        let (grpc_addr, grpc_server) =
            grpc::serve(receivers.grpc, ingestor.clone(), stop_rx.clone()).await?;
        let (http_addr, http_server) =
            http::serve(receivers.http, ingestor, stop_rx.clone()).await?;

        let stop_rx_admin = stop_rx.clone();
        let sweeper = sweep_periodically(commands.clone(), config.sampling.sweep_interval, stop_rx);
        let mut tasks = vec![
            tokio::spawn(grpc_server),
            tokio::spawn(http_server),
            tokio::spawn(sweeper),
        ];
        let mut admin_addr = None;
        if let Some(admin_config) = &config.admin {
            let registry = metrics::registry(Arc::clone(&counters));
            let (addr, server) = admin::serve(
                admin_config.listen,
                commands.clone(),
                registry,
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

        if let Err(err) = self.exporter.await {
            warn!(error = %err, "the export task failed");
        }
        let stats = self.counters.snapshot();
        info!(?stats, "gateway stopped");
        Ok(stats)
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
