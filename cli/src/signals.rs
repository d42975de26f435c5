//! Waiting for the signals that stop a long-running command.

use tokio::signal::unix::{signal, SignalKind};

/// Resolves on SIGINT or SIGTERM.
pub async fn terminated() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
