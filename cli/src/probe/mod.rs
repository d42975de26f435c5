//! `wbpf probe`.

use std::path::PathBuf;

use anyhow::Context;
use tracing::info;
use wbpf_probe::Probe;

pub async fn run(config: PathBuf) -> anyhow::Result<()> {
    let loaded = wbpf_config::load_file(&config)?;
    let probe_config = loaded
        .probe
        .with_context(|| format!("{}: no `probe:` section; nothing to run", config.display()))?;
    let probe = Probe::start(&probe_config)
        .await
        .context("starting the probe")?;
    crate::signals::terminated().await?;
    let stats = probe.shutdown().await?;
    info!(?stats, "probe stopped");
    Ok(())
}
