//! The gateway's counters in the Prometheus text format, for `/metrics` on the admin port.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::stats::Counters;

/// Reads the shared counters on each scrape.
#[derive(Debug)]
struct CountersCollector(Arc<Counters>);

impl Collector for CountersCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.snapshot();
        let counters: [(&str, &str, u64); 14] = [
            ("requests", "OTLP export requests received", s.requests),
            (
                "requests_rejected",
                "requests answered with an error",
                s.requests_rejected,
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
                "export batches that could not be delivered",
                s.export_failures,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }

        let buffered = ConstGauge::new(i64::try_from(s.traces_buffered).unwrap_or(i64::MAX));
        let help = "traces in the buffer awaiting a decision";
        let metric =
            encoder.encode_descriptor("traces_buffered", help, None, buffered.metric_type())?;
        buffered.encode(metric)
    }
}

/// A registry exposing the counters with the `wbpf_gateway` prefix.
pub fn registry(counters: Arc<Counters>) -> Registry {
    let mut registry = Registry::with_prefix("wbpf_gateway");
    registry.register_collector(Box::new(CountersCollector(counters)));
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
