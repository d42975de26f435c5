//! `wbpf doctor`: which detectors can run here, and why not.

use std::path::Path;

use anyhow::Context;

/// Prints the kernel checks and a line per detector; fails when any detector cannot run.
pub fn run(config: Option<&Path>) -> anyhow::Result<()> {
    let probe = match config {
        Some(path) => {
            let loaded = wbpf_config::load_file(path)?;
            let probe = loaded
                .probe
                .with_context(|| format!("{}: no `probe:` section to check", path.display()))?;
            Some(probe)
        }
        None => None,
    };
    let report = wbpf_probe::diagnose(probe.as_ref()).context("checking the detectors")?;
    print!("{report}");
    if report.all_ready() {
        Ok(())
    } else {
        anyhow::bail!("some detectors cannot run here (see above)")
    }
}
