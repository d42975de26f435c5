//! The gateway's counters in the Prometheus text format, for `/metrics` on the admin port.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::compare::{CompareCounters, ModeFigures};
use crate::const_metrics::{encode_counters, encode_gauges};
use crate::policy_metrics::PolicyMetrics;
use crate::stats::Counters;

/// Reads the shared counters on each scrape.
#[derive(Debug)]
struct CountersCollector(Arc<Counters>);

impl Collector for CountersCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.snapshot();
        let counters: [(&str, &str, u64); 20] = [
            ("requests", "OTLP export requests received", s.requests),
            (
                "requests_rejected",
                "requests answered with an error",
                s.requests_rejected,
            ),
            (
                "requests_refused_overload",
                "requests refused for overload, to be retried by the client",
                s.requests_refused_overload,
            ),
            ("spans_received", "spans received", s.spans_received),
            (
                "bytes_received",
                "protobuf bytes of spans received",
                s.bytes_received,
            ),
            ("traces_received", "distinct traces seen", s.traces_received),
            ("triggers", "traces triggered", s.triggers),
            (
                "lateral_triggers",
                "traces kept for sharing a resource with a triggered trace",
                s.lateral_triggers,
            ),
            (
                "correlated_triggers",
                "traces kept by a trigger without context, matched by process and time",
                s.correlated_triggers,
            ),
            (
                "traces_released",
                "traces kept and sent to the exporters",
                s.traces_released,
            ),
            (
                "traces_sampled_out",
                "traces decided not sampled",
                s.traces_sampled_out,
            ),
            (
                "traces_expired",
                "untriggered traces aged out",
                s.traces_expired,
            ),
            (
                "late_spans_forwarded",
                "spans of kept traces after the decision",
                s.late_spans_forwarded,
            ),
            (
                "late_spans_dropped",
                "spans of dropped traces after the decision",
                s.late_spans_dropped,
            ),
            (
                "spans_exported",
                "spans delivered to the exporters",
                s.spans_exported,
            ),
            (
                "bytes_exported",
                "protobuf bytes delivered to the exporters",
                s.bytes_exported,
            ),
            (
                "export_failures",
                "export requests an exporter refused for good",
                s.export_failures,
            ),
            (
                "traces_evicted",
                "undecided traces evicted whole to keep the buffer under its byte budget",
                s.traces_evicted,
            ),
            (
                "spans_over_trace_cap",
                "spans dropped because their trace was at its size cap",
                s.spans_over_trace_cap,
            ),
            (
                "export_retries",
                "export attempts that failed and were retried",
                s.export_retries,
            ),
        ];
        encode_counters(&mut encoder, &counters)?;

        let gauges = [
            (
                "traces_buffered",
                "traces in the buffer awaiting a decision",
                s.traces_buffered,
            ),
            (
                "export_queue",
                "span groups released and waiting in the export queue on disk",
                s.export_queue,
            ),
        ];
        encode_gauges(&mut encoder, &gauges)?;
        Ok(())
    }
}

/// Reads the comparison's counters on each scrape, one `mode` label per compared mode.
#[derive(Debug)]
struct CompareCollector(Arc<CompareCounters>);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    mode: String,
    exporting: &'static str,
}

impl Collector for CompareCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.snapshot();
        let totals: [(&str, &str, u64); 5] = [
            (
                "compare_traces_seen",
                "traces the comparison followed",
                s.traces_seen,
            ),
            (
                "compare_spans_seen",
                "spans the comparison saw",
                s.spans_seen,
            ),
            (
                "compare_bytes_seen",
                "protobuf bytes the comparison saw",
                s.bytes_seen,
            ),
            (
                "compare_edge_cases_seen",
                "traces marked as edge cases",
                s.edge_cases_seen,
            ),
            (
                "compare_events_dropped",
                "events the comparison fell behind on and skipped",
                s.events_dropped,
            ),
        ];
        for (name, help, value) in totals {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }

        type Field = fn(&ModeFigures) -> u64;
        let per_mode: [(&str, &str, Field); 5] = [
            ("compare_traces_decided", "traces decided, per mode", |m| {
                m.traces_decided
            }),
            ("compare_traces_kept", "traces kept, per mode", |m| {
                m.traces_kept
            }),
            ("compare_spans_kept", "spans kept, per mode", |m| {
                m.spans_kept
            }),
            (
                "compare_bytes_kept",
                "protobuf bytes each mode would export",
                |m| m.bytes_kept,
            ),
            (
                "compare_edge_cases_captured",
                "edge cases whose trace each mode kept",
                |m| m.edge_cases_captured,
            ),
        ];
        for (name, help, field) in per_mode {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for figures in &s.modes {
                let labels = ModeLabels {
                    mode: figures.mode.clone(),
                    exporting: if figures.exporting { "true" } else { "false" },
                };
                let counter = ConstCounter::new(field(figures));
                counter.encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// A registry exposing every metric of the gateway with the `wbpf_gateway` prefix.
pub fn registry(
    counters: Arc<Counters>,
    policies: &PolicyMetrics,
    compare: Option<Arc<CompareCounters>>,
) -> Registry {
    let mut registry = Registry::with_prefix("wbpf_gateway");
    registry.register_collector(Box::new(CountersCollector(counters)));
    policies.register(&mut registry);
    if let Some(compare) = compare {
        registry.register_collector(Box::new(CompareCollector(compare)));
    }
    registry
}

/// The registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(err) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::warn!(error = %err, "encoding metrics failed");
    }
    out
}
