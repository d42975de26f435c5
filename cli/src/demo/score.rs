//! Reading back what the gateway exported, per trace.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use wbpf_sampler::is_trigger;

/// What reached the exporter of one trace.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExportedTrace {
    /// Application spans (not trigger spans).
    pub spans: u64,
    pub trigger_spans: u64,
}

/// Exported traces keyed by lowercase hex trace id.
pub fn read_export(path: &Path) -> anyhow::Result<HashMap<String, ExportedTrace>> {
    let mut traces: HashMap<String, ExportedTrace> = HashMap::new();
    if !path.exists() {
        return Ok(traces);
    }
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        let request: ExportTraceServiceRequest = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not OTLP/JSON", path.display(), n + 1))?;
        for span in request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            let entry = traces.entry(hex::encode(&span.trace_id)).or_default();
            if is_trigger(span) {
                entry.trigger_spans += 1;
            } else {
                entry.spans += 1;
            }
        }
    }
    Ok(traces)
}
