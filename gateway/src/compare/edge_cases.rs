//! Which traces are edge cases, for the capture figures of the comparison.
//!
//! A trace is an edge case if one of its spans carries `sampling.edge_cases.attribute`, or if
//! its id is listed in the `sampling.edge_cases.ground_truth` file: JSON lines with a
//! `trace_id` of 32 hex digits, as the demo writes them. The file is read incrementally as it
//! grows; a line is read only once it is complete.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use serde::Deserialize;
use tracing::{info, warn};
use wbpf_config::EdgeCasesConfig;
use wbpf_storage::TraceId;

#[derive(Deserialize)]
struct Line {
    trace_id: String,
}

/// The edge-case oracle.
#[derive(Debug, Default)]
pub struct EdgeCases {
    attribute: Option<String>,
    file: Option<PathBuf>,
    /// Bytes of the file already read.
    offset: u64,
    listed: HashSet<TraceId>,
    warned: bool,
}

impl EdgeCases {
    pub fn new(config: &EdgeCasesConfig) -> Self {
        Self {
            attribute: config.attribute.clone().filter(|a| !a.is_empty()),
            file: config.ground_truth.clone(),
            ..Self::default()
        }
    }

    /// Whether spans must be decoded for [`EdgeCases::marks`].
    pub fn needs_spans(&self) -> bool {
        self.attribute.is_some()
    }

    /// Whether any of these spans carries the edge-case attribute.
    pub fn marks(&self, resource_spans: &[ResourceSpans]) -> bool {
        let Some(key) = &self.attribute else {
            return false;
        };
        resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .any(|span| span.attributes.iter().any(|a| &a.key == key))
    }

    /// Whether the ground-truth file lists `trace`.
    pub fn listed(&self, trace: TraceId) -> bool {
        self.listed.contains(&trace)
    }

    /// Reads what was appended to the ground-truth file since the last call.
    pub fn refresh(&mut self) {
        let Some(path) = &self.file else {
            return;
        };
        let mut text = String::new();
        let read = std::fs::File::open(path).and_then(|mut file| {
            file.seek(SeekFrom::Start(self.offset))?;
            file.read_to_string(&mut text)
        });
        if let Err(err) = read {
            if !self.warned {
                self.warned = true;
                // The file may appear once its writer starts; a misspelt path never does.
                let shown = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                let path = shown.display();
                if err.kind() == std::io::ErrorKind::NotFound {
                    info!(%path, "no ground-truth file yet; its edge cases count once it appears");
                } else {
                    warn!(error = %err, %path, "cannot read the ground-truth file");
                }
            }
            return;
        }
        let Some(complete) = text.rfind('\n') else {
            return;
        };
        for line in text[..complete].lines().filter(|l| !l.trim().is_empty()) {
            let parsed = serde_json::from_str::<Line>(line)
                .ok()
                .and_then(|line| hex::decode(line.trace_id).ok())
                .and_then(|bytes| TraceId::from_slice(&bytes));
            match parsed {
                Some(trace) => {
                    self.listed.insert(trace);
                }
                None => warn!(line, "a ground-truth line has no valid trace_id; skipped"),
            }
        }
        self.offset += complete as u64 + 1;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn ground_truth_is_read_as_it_grows_and_only_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("truth.jsonl");
        let mut file = std::fs::File::create(&path).unwrap();
        let mut oracle = EdgeCases::new(&EdgeCasesConfig {
            attribute: None,
            ground_truth: Some(path.clone()),
        });

        let first = format!("{{\"trace_id\":\"{}\"}}\n", "01".repeat(16));
        write!(file, "{first}{{\"trace_id\":\"0202").unwrap();
        file.flush().unwrap();
        oracle.refresh();
        assert!(oracle.listed(TraceId([1; 16])));
        assert!(!oracle.listed(TraceId([2; 16])));

        writeln!(file, "{}\"}}", "02".repeat(14)).unwrap();
        file.flush().unwrap();
        oracle.refresh();
        assert!(oracle.listed(TraceId([2; 16])));
    }
}
