//! A copy of the workload binary for one demo run.
//!
//! Uprobes attach to a file, so they fire in every process that runs it. With a copy of its
//! own, the demo's probe sees neither another demo's workload nor a `wbpf workload` started by
//! hand on the same machine, whose stalls would otherwise become this run's triggers.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The copy; removed, with its directory, when dropped.
pub struct PrivateBinary {
    dir: PathBuf,
    path: PathBuf,
}

impl PrivateBinary {
    /// Copies `original` into a directory of this process's own beside it, or, where that
    /// cannot be written, under `fallback`.
    pub fn new(original: &Path, fallback: &Path) -> anyhow::Result<Self> {
        let name = format!(".wbpf-demo-{}", std::process::id());
        let beside = original.parent().map(|parent| parent.join(&name));
        let dir = beside
            .filter(|dir| std::fs::create_dir_all(dir).is_ok())
            .unwrap_or_else(|| fallback.join(&name));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let copy = Self {
            path: dir.join(original.file_name().unwrap_or("wbpf-workload".as_ref())),
            dir,
        };
        std::fs::copy(original, &copy.path).with_context(|| {
            format!("copying {} to {}", original.display(), copy.path.display())
        })?;
        Ok(copy)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateBinary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_runs_apart_from_the_original_and_goes_away_when_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original = dir.path().join("tool");
        std::fs::write(&original, b"#!/bin/sh\n").expect("write");
        let copy = PrivateBinary::new(&original, dir.path()).expect("copy");
        let path = copy.path().to_owned();
        assert_ne!(path, original);
        assert_eq!(path.file_name(), original.file_name());
        assert_eq!(std::fs::read(&path).expect("read"), b"#!/bin/sh\n");
        drop(copy);
        assert!(!path.exists() && original.exists());
    }
}
