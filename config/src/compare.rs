//! `sampling.compare`, `sampling.edge_cases` and `sampling.lateral`: shadow evaluation of other
//! modes on the same stream, and triggers that spread to traces sharing a resource.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// What marks a trace as an edge case when `compare` counts what each mode captured.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeCasesConfig {
    /// A span attribute whose presence marks its trace as an edge case.
    pub attribute: Option<String>,
    /// A JSON-lines file with a `trace_id` (32 hex digits) per line, as the demo writes; re-read
    /// as it grows.
    pub ground_truth: Option<PathBuf>,
}

/// Lateral triggers: a trigger naming a shared resource also keeps the other traces that
/// touched it around the same time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateralConfig {
    /// Span attribute keys that name a shared resource (for example `wbpf.pool.region`). Spans
    /// carrying one are recorded; a trigger span carrying one keeps every trace recorded with
    /// the same key and value.
    pub attributes: Vec<String>,
    /// How far apart in time, by span timestamps, the trigger and the other spans may be.
    #[serde(with = "crate::duration", default = "default_lateral_window")]
    pub window: Duration,
    /// Most traces one trigger may pull in, so a hot resource cannot release everything.
    #[serde(default = "default_lateral_limit")]
    pub max_traces_per_trigger: usize,
}

fn default_lateral_window() -> Duration {
    Duration::from_secs(1)
}

fn default_lateral_limit() -> usize {
    100
}
