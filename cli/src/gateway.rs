//! `wbpf gateway`.

use std::path::PathBuf;

use anyhow::Context;
use wbpf_gateway::Gateway;

pub async fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = match config {
        Some(path) => wbpf_config::load_file(&path)?,
        None => wbpf_config::Config::default(),
    };
    let gateway = Gateway::start(&config.gateway)
        .await
        .context("starting the gateway")?;
    crate::signals::terminated().await?;
    gateway.shutdown().await?;
    Ok(())
}
