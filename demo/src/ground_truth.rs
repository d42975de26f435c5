//! The record of which traces had a fault injected, so detection can be scored.
//!
//! One JSON object per line, appended and flushed as each fault is injected:
//! `{"trace_id":"<32 hex>","fault":"far_memory_stall","service":"store","spans":9}`. A trace
//! with several faults has one line per fault.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::DemoError;

/// The `fault` of a far-memory stall.
pub const FAR_MEMORY_STALL: &str = "far_memory_stall";
/// An object allocated in the request and never accessed or released.
pub const LEAK: &str = "leak";
/// An object released in the request and then read through its stale id.
pub const STALE_ACCESS: &str = "stale_access";
/// An object released twice in the request.
pub const DOUBLE_RELEASE: &str = "double_release";
/// Many pool pages dropped and faulted back in within the request.
pub const FAULT_STORM: &str = "fault_storm";

/// Every `fault` this crate injects. The pool faults are named as the probe's `pool_objects`
/// and `pool_faults` detectors name what they see (`wbpf.pool.event`).
pub const FAULT_KINDS: [&str; 5] = [
    FAR_MEMORY_STALL,
    LEAK,
    STALE_ACCESS,
    DOUBLE_RELEASE,
    FAULT_STORM,
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruthEntry {
    /// The trace id as 32 lowercase hex digits.
    pub trace_id: String,
    /// What was injected, e.g. [`FAR_MEMORY_STALL`].
    pub fault: String,
    /// The service whose pool access carried the fault.
    pub service: String,
    /// How many spans the trace has when complete.
    pub spans: u32,
}

/// Appends entries to a ground-truth file, one flushed line each. Shared between threads.
#[derive(Debug)]
pub struct GroundTruthWriter {
    path: PathBuf,
    file: Mutex<File>,
}

impl GroundTruthWriter {
    /// Creates (or empties) the file: one file describes one run.
    pub fn create(path: &Path) -> Result<Self, DemoError> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(DemoError::file("create", path))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn append(&self, entry: &GroundTruthEntry) -> Result<(), DemoError> {
        let mut line = serde_json::to_string(entry).map_err(|source| DemoError::Json {
            path: self.path.clone(),
            line: 0,
            source,
        })?;
        line.push('\n');
        // A poisoned lock only means another thread panicked mid-append; the file is still
        // usable, at worst with one partial line.
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(line.as_bytes())
            .and_then(|()| file.flush())
            .map_err(DemoError::file("append to", &self.path))
    }
}

/// Reads every entry of a ground-truth file.
pub fn read_ground_truth(path: impl AsRef<Path>) -> Result<Vec<GroundTruthEntry>, DemoError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(DemoError::file("open", path))?;
    let mut entries = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(DemoError::file("read", path))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(&line).map_err(|source| DemoError::Json {
            path: path.to_path_buf(),
            line: index + 1,
            source,
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(trace_id: &str) -> GroundTruthEntry {
        GroundTruthEntry {
            trace_id: trace_id.to_owned(),
            fault: FAR_MEMORY_STALL.to_owned(),
            service: "store".to_owned(),
            spans: 9,
        }
    }

    #[test]
    fn entries_round_trip_one_per_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("truth.jsonl");
        let writer = GroundTruthWriter::create(&path).expect("create");
        writer
            .append(&entry("0102030405060708090a0b0c0d0e0f10"))
            .expect("append");
        writer
            .append(&entry("ffeeddccbbaa99887766554433221100"))
            .expect("append");

        let text = std::fs::read_to_string(&path).expect("read");
        let expected = concat!(
            r#"{"trace_id":"0102030405060708090a0b0c0d0e0f10","#,
            r#""fault":"far_memory_stall","service":"store","spans":9}"#
        );
        assert_eq!(text.lines().next(), Some(expected));
        let entries = read_ground_truth(&path).expect("parse");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1], entry("ffeeddccbbaa99887766554433221100"));
    }

    #[test]
    fn a_bad_line_names_its_number() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("truth.jsonl");
        let good = r#"{"trace_id":"00","fault":"x","service":"s","spans":1}"#;
        std::fs::write(&path, format!("{good}\nnope\n")).expect("write");
        let error = read_ground_truth(&path).expect_err("second line is not JSON");
        assert!(error.to_string().contains(":2:"), "{error}");
    }
}
