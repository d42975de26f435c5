//! `wbpf validate FILE`.

use std::path::Path;

pub fn run(file: &Path) -> anyhow::Result<()> {
    let config = wbpf_config::load_file(file)?;
    let detectors = config.probe.as_ref().map_or(0, |p| p.detectors.len());
    println!("{}: ok ({detectors} probe detectors)", file.display());
    Ok(())
}
