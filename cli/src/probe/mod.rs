//! `wbpf probe`: the node probe until SIGINT or SIGTERM, reloading its detectors on SIGHUP or
//! `POST /v1/reload` on its admin port.
//!
//! One task owns the [`Probe`]; the signal handlers and the admin port send it [`Request`]s,
//! so a reload and a metrics scrape never run at the same time. A reload re-reads the file the
//! probe was started with; a file that fails validation changes nothing and is reported (to
//! the log for SIGHUP, in the answer for the admin port).

mod admin;
mod metrics;
mod report;

use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};
use wbpf_config::ProbeConfig;
use wbpf_probe::Probe;

/// What the admin port asks of the task that owns the probe.
pub enum Request {
    /// Re-read the config file and apply it; answers the report as JSON, or the error.
    Reload(oneshot::Sender<Result<serde_json::Value, String>>),
    /// The Prometheus text of the probe's counters.
    Metrics(oneshot::Sender<String>),
    /// Running and failed detectors as JSON.
    Detectors(oneshot::Sender<serde_json::Value>),
}

pub async fn run(config_path: PathBuf) -> anyhow::Result<()> {
    let config = load(&config_path)?;
    let mut probe = Probe::start(&config).await.context("starting the probe")?;
    let mut reloads = metrics::Reloads::default();

    let (requests, mut incoming) = mpsc::channel(16);
    let (stop, stop_rx) = watch::channel(false);
    let admin = match config.admin {
        Some(addr) => Some(tokio::spawn(admin::serve(addr, requests, stop_rx).await?)),
        None => None,
    };
    let mut hangup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hangup.recv() => {
                info!(config = %config_path.display(), "SIGHUP: reloading the detectors");
                let reloaded = reload(&mut probe, &config_path, &config, &mut reloads).await;
                if let Err(message) = reloaded {
                    error!(error = %message, "reload failed; the detectors run as before");
                }
            }
            Some(request) = incoming.recv() => match request {
                Request::Reload(answer) => {
                    let result = reload(&mut probe, &config_path, &config, &mut reloads).await;
                    // Ignored error: the client went away; the reload happened all the same.
                    let _ = answer.send(result);
                }
                Request::Metrics(answer) => {
                    let _ = answer.send(metrics::render(&probe, &reloads));
                }
                Request::Detectors(answer) => {
                    let _ = answer.send(report::detectors(&probe));
                }
            },
        }
    }

    // Ignored error: the admin server is gone already if nobody listens.
    let _ = stop.send(true);
    if let Some(admin) = admin {
        admin.await.context("admin port task")?;
    }
    let stats = probe.shutdown().await?;
    info!(?stats, "probe stopped");
    Ok(())
}

/// Reads the `probe:` section of a config file.
fn load(path: &Path) -> anyhow::Result<ProbeConfig> {
    let loaded = wbpf_config::load_file(path)?;
    loaded
        .probe
        .with_context(|| format!("{}: no `probe:` section; nothing to run", path.display()))
}

/// Re-reads the file and applies it; the report as JSON, or why nothing changed.
async fn reload(
    probe: &mut Probe,
    path: &Path,
    started_with: &ProbeConfig,
    reloads: &mut metrics::Reloads,
) -> Result<serde_json::Value, String> {
    let result = match load(path) {
        Ok(config) => {
            if config.admin != started_with.admin {
                warn!(
                    admin = ?started_with.admin,
                    configured = ?config.admin,
                    "the admin address changes only on restart"
                );
            }
            probe
                .reload(&config)
                .await
                .map_err(|error| format!("{:#}", anyhow::Error::new(error)))
        }
        Err(error) => Err(format!("{error:#}")),
    };
    reloads.record(result.is_ok());
    let report = result?;
    info!(
        changes = ?report.changes,
        failed = report.failures.len(),
        "detectors reloaded"
    );
    Ok(report::reload(&report))
}
