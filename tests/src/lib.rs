//! Shared helpers of the end-to-end tests.

use std::path::Path;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;

/// Every span in a JSON-lines export file; none if the file does not exist yet.
///
/// The exporter may be writing while the test reads: only complete lines count.
pub fn exported_spans(path: &Path) -> Vec<Span> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .flat_map(|line| {
            let request: ExportTraceServiceRequest =
                serde_json::from_str(line).expect("the export file holds OTLP/JSON lines");
            request
                .resource_spans
                .into_iter()
                .flat_map(|r| r.scope_spans)
                .flat_map(|s| s.spans)
        })
        .collect()
}
