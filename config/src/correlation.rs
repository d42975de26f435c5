//! `sampling.correlation`: matching triggers that carry no trace context to the buffered spans
//! of the process (and thread) they came from, by time.

use std::time::Duration;

use serde::Deserialize;

/// How a trigger without trace context finds its traces.
///
/// Such a trigger (a probe's trigger span with `wbpf.context = none`) names `process.pid`,
/// `thread.id` and the event time `wbpf.event_time_unix_nano`. Spans say which process they
/// come from by `process.pid` (a resource attribute, as OpenTelemetry's process detector sets
/// it, or a span attribute) and which thread by the span attribute `thread.id`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorrelationConfig {
    pub enabled: bool,
    /// How far outside a span's time range the event may lie and still match (clock skew
    /// between the kernel and the application).
    #[serde(with = "crate::duration")]
    pub slack: Duration,
    /// Most traces one trigger may keep; a trigger matching more keeps the innermost spans'
    /// traces first.
    pub max_traces_per_trigger: usize,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            // The probe and the services read the same host's clock; more slack only lets a
            // trigger match the stalled thread's next request too.
            slack: Duration::from_millis(1),
            max_traces_per_trigger: 4,
        }
    }
}
