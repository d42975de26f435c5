//! `wbpf validate FILE`: a wBPF config, a file holding only a `tail_sampling:` block, or a
//! whole OpenTelemetry Collector config (its `processors.tail_sampling` is checked).

use std::path::Path;

use anyhow::Context;

pub fn run(file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: cannot read", file.display()))?;
    let name = file.display().to_string();

    if is_collector_style(&text) {
        let tail = wbpf_config::parse_tail_sampling_block(&text, &name)?;
        println!(
            "{name}: ok (tail_sampling with {} policies)",
            tail.policies.len()
        );
        return Ok(());
    }

    let config = wbpf_config::parse_str(&text, &name)?;
    let detectors = config.probe.as_ref().map_or(0, |p| p.detectors.len());
    let mode = format!("{:?}", config.gateway.sampling.mode).to_lowercase();
    println!("{name}: ok (sampling mode {mode}, probe detectors: {detectors})");
    Ok(())
}

/// A top-level `tail_sampling:` or `processors:` key marks a Collector-style file.
fn is_collector_style(text: &str) -> bool {
    text.lines()
        .any(|line| line.starts_with("tail_sampling:") || line.starts_with("processors:"))
}
