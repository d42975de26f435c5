//! The probe's counters in the Prometheus text format, prefixed `wbpf_probe`: events, triggers
//! and losses, detectors running and failed, reloads, and per detector type the object load
//! and unload latencies.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use wbpf_gateway::const_metrics::{encode_counters, encode_gauges};
use wbpf_probe::{Probe, ProbeStats, TimingStats, TypeTimings};

/// Reloads since start, by outcome.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reloads {
    applied: u64,
    rejected: u64,
}

impl Reloads {
    pub fn record(&mut self, applied: bool) {
        if applied {
            self.applied += 1;
        } else {
            self.rejected += 1;
        }
    }
}

/// Everything one scrape shows, read from the probe at once.
#[derive(Debug)]
struct Snapshot {
    stats: ProbeStats,
    timings: Vec<TypeTimings>,
    running: u64,
    failed: u64,
    reloads: Reloads,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    detector_type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The probe's metrics as of now.
pub fn render(probe: &Probe, reloads: &Reloads) -> String {
    let snapshot = Snapshot {
        stats: probe.stats(),
        timings: probe.timings(),
        running: probe.running().len() as u64,
        failed: probe.failures().len() as u64,
        reloads: *reloads,
    };
    let mut registry = Registry::with_prefix("wbpf_probe");
    registry.register_collector(Box::new(snapshot));
    let mut out = String::new();
    if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::warn!(error = %err, "encoding metrics failed");
    }
    out
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let counters: [(&str, &str, u64); 6] = [
            ("events", "events read from the ring buffers", s.events_seen),
            (
                "triggers_sent",
                "trigger spans the gateway accepted",
                s.triggers_sent,
            ),
            (
                "triggers_failed",
                "trigger spans that could not be sent",
                s.triggers_failed,
            ),
            (
                "triggers_without_context",
                "triggers for threads that published no trace context",
                s.triggers_without_context,
            ),
            (
                "events_lost",
                "events dropped in the kernel: ring buffer full",
                s.events_lost,
            ),
            (
                "untracked",
                "things not tracked: a bounded kernel map was full",
                s.untracked,
            ),
        ];
        encode_counters(&mut encoder, &counters)?;

        let gauges = [
            (
                "detectors_running",
                "detectors attached and reporting",
                self.running,
            ),
            (
                "detectors_failed",
                "configured detectors that could not start",
                self.failed,
            ),
        ];
        encode_gauges(&mut encoder, &gauges)?;

        let help = "configuration reloads, applied or rejected as invalid";
        let mut metric = encoder.encode_descriptor("reloads", help, None, MetricType::Counter)?;
        for (result, count) in [
            ("applied", self.reloads.applied),
            ("rejected", self.reloads.rejected),
        ] {
            let labels = ResultLabel { result };
            ConstCounter::new(count).encode(metric.encode_family(&labels)?)?;
        }

        self.encode_timings(&mut encoder, "load", |timings| timings.loads)?;
        self.encode_timings(&mut encoder, "unload", |timings| timings.unloads)
    }
}

impl Snapshot {
    /// `object_<kind>s_total`, `object_<kind>_seconds_total`, `_last_seconds` and
    /// `_max_seconds`, one `detector_type` label each.
    fn encode_timings(
        &self,
        encoder: &mut DescriptorEncoder,
        kind: &str,
        field: fn(&TypeTimings) -> TimingStats,
    ) -> Result<(), std::fmt::Error> {
        let seconds = |ns: u64| ns as f64 / 1e9;
        let name = format!("object_{kind}s");
        let help = format!("eBPF object {kind}s (one object per detector type)");
        let mut metric = encoder.encode_descriptor(&name, &help, None, MetricType::Counter)?;
        for timings in &self.timings {
            let labels = TypeLabel {
                detector_type: timings.detector_type,
            };
            ConstCounter::new(field(timings).count).encode(metric.encode_family(&labels)?)?;
        }

        type Pick = fn(&TimingStats) -> u64;
        let series: [(&str, &str, MetricType, Pick); 3] = [
            ("seconds", "time spent", MetricType::Counter, |t| t.total_ns),
            (
                "last_seconds",
                "duration of the last",
                MetricType::Gauge,
                |t| t.last_ns,
            ),
            ("max_seconds", "longest", MetricType::Gauge, |t| t.max_ns),
        ];
        for (suffix, what, metric_type, pick) in series {
            let name = format!("object_{kind}_{suffix}");
            let help = format!("{what} eBPF object {kind}");
            let mut metric = encoder.encode_descriptor(&name, &help, None, metric_type)?;
            for timings in &self.timings {
                let labels = TypeLabel {
                    detector_type: timings.detector_type,
                };
                let value = seconds(pick(&field(timings)));
                let family = metric.encode_family(&labels)?;
                if metric_type == MetricType::Counter {
                    ConstCounter::new(value).encode(family)?;
                } else {
                    ConstGauge::new(value).encode(family)?;
                }
            }
        }
        Ok(())
    }
}
