//! `wbpf validate FILE`: a wBPF config, a file holding only a `tail_sampling:` block, or a
//! whole OpenTelemetry Collector config (its `processors.tail_sampling` is checked).
//!
//! Every problem is printed on its own line as `file:line:column: key.path: message`. Value
//! problems are all reported in one run; a YAML or schema error (malformed YAML, an unknown key,
//! a wrong type) stops parsing, so only the first of those is.

use std::path::Path;

use anyhow::Context;

pub fn run(file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: cannot read", file.display()))?;
    let name = file.display().to_string();

    let summary = if is_collector_style(&text) {
        wbpf_config::parse_tail_sampling_block(&text, &name)
            .map(|tail| format!("tail_sampling with {} policies", tail.policies.len()))
    } else {
        wbpf_config::parse_str(&text, &name).map(|config| {
            let detectors = config.probe.as_ref().map_or(0, |p| p.detectors.len());
            let mode = format!("{:?}", config.gateway.sampling.mode).to_lowercase();
            format!("sampling mode {mode}, probe detectors: {detectors}")
        })
    };

    let err = match summary {
        Ok(summary) => {
            println!("{name}: ok ({summary})");
            return Ok(());
        }
        Err(err) => err,
    };
    let problems = err.problems();
    if problems.is_empty() {
        return Err(err.into());
    }
    for problem in problems {
        eprintln!("{problem}");
    }
    let plural = if problems.len() == 1 { "" } else { "s" };
    anyhow::bail!("{name}: {} problem{plural}", problems.len())
}

/// A top-level `tail_sampling:` or `processors:` key marks a Collector-style file.
fn is_collector_style(text: &str) -> bool {
    text.lines()
        .any(|line| line.starts_with("tail_sampling:") || line.starts_with("processors:"))
}
