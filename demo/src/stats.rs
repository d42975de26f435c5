//! The summary the frontend writes when its load run ends.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::DemoError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadStats {
    /// Requests started by the frontend (load generator and its listener).
    pub requests: u64,
    /// Requests that failed somewhere along frontend -> index -> store.
    pub errors: u64,
    /// Requests that had a far-memory stall injected (= ground-truth lines).
    pub injected: u64,
    /// Spans one successful request produces across the three services.
    pub spans_per_request: u32,
    /// Wall-clock length of the load run.
    pub duration_s: f64,
}

impl WorkloadStats {
    pub fn write(&self, path: &Path) -> Result<(), DemoError> {
        let json = serde_json::to_string(self).map_err(|source| DemoError::Json {
            path: path.to_path_buf(),
            line: 0,
            source,
        })?;
        std::fs::write(path, json + "\n").map_err(DemoError::file("write", path))
    }

    pub fn read(path: &Path) -> Result<Self, DemoError> {
        let text = std::fs::read_to_string(path).map_err(DemoError::file("read", path))?;
        serde_json::from_str(&text).map_err(|source| DemoError::Json {
            path: path.to_path_buf(),
            line: 1,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("stats.json");
        let stats = WorkloadStats {
            requests: 4000,
            errors: 1,
            injected: 41,
            spans_per_request: 9,
            duration_s: 20.01,
        };
        stats.write(&path).expect("write");
        assert_eq!(WorkloadStats::read(&path).expect("read"), stats);
        let text = std::fs::read_to_string(&path).expect("text");
        assert!(
            text.starts_with(r#"{"requests":4000,"errors":1,"injected":41,"#),
            "{text}"
        );
    }
}
