//! The demo's summary: what was offered, what was kept, and how well it matched the truth.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use wbpf_demo::{GroundTruthEntry, WorkloadStats};
use wbpf_gateway::GatewayStats;
use wbpf_probe::ProbeStats;

use super::by_fault::{self, FaultScore};
use super::score::ExportedTrace;

/// Printed as a table, or as JSON with `--json`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub duration_s: f64,
    pub requests: u64,
    pub request_errors: u64,
    pub traces_received: u64,
    pub spans_received: u64,
    pub bytes_received: u64,
    pub ingest_spans_per_s: f64,
    pub probe_events: u64,
    pub probe_events_lost: u64,
    pub triggers: u64,
    /// Triggers the probe sent without trace context (the thread had published none).
    pub triggers_without_context: u64,
    /// Traces the gateway kept for those triggers, matched by process, thread and time.
    pub correlated_triggers: u64,
    pub traces_exported: u64,
    pub spans_exported: u64,
    pub bytes_exported: u64,
    pub bytes_exported_ratio: f64,
    pub traces_expired: u64,
    /// Traces with at least one injected fault.
    pub injected_edge_cases: u64,
    /// Injected traces whose every span reached the exporter.
    pub edge_cases_exported: u64,
    pub recall: f64,
    pub precision: f64,
    /// Injected faults and recall per fault kind (`far_memory_stall`, `leak`, ...).
    pub by_fault: BTreeMap<String, FaultScore>,
    /// With `--compare`: what head, tail and triggered sampling each kept on this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<wbpf_gateway::CompareSnapshot>,
}

impl Summary {
    pub fn new(
        workload: &WorkloadStats,
        truth: &[GroundTruthEntry],
        exported: &HashMap<String, ExportedTrace>,
        gateway: &GatewayStats,
        probe: &ProbeStats,
        elapsed: Duration,
    ) -> Self {
        // A request may carry several injected faults; the overall figures count traces.
        let mut injected_traces: HashMap<String, u32> = HashMap::new();
        for entry in truth {
            let spans = injected_traces
                .entry(entry.trace_id.to_ascii_lowercase())
                .or_default();
            *spans = (*spans).max(entry.spans);
        }
        let complete = injected_traces
            .iter()
            .filter(|(trace, spans)| {
                exported
                    .get(*trace)
                    .is_some_and(|e| e.spans >= u64::from(**spans))
            })
            .count() as u64;
        let kept_injected = injected_traces
            .keys()
            .filter(|trace| exported.contains_key(*trace))
            .count() as u64;
        let injected = injected_traces.len() as u64;
        let traces_exported = exported.len() as u64;
        // A trigger sent without trace context starts a trace of its own; only traces with
        // application spans count as kept requests.
        let requests_exported = exported.values().filter(|e| e.spans > 0).count() as u64;

        Self {
            duration_s: elapsed.as_secs_f64(),
            requests: workload.requests,
            request_errors: workload.errors,
            traces_received: gateway.traces_received,
            spans_received: gateway.spans_received,
            bytes_received: gateway.bytes_received,
            ingest_spans_per_s: gateway.spans_received as f64 / elapsed.as_secs_f64().max(1e-9),
            probe_events: probe.events_seen,
            probe_events_lost: probe.events_lost,
            triggers: gateway.triggers,
            triggers_without_context: probe.triggers_without_context,
            correlated_triggers: gateway.correlated_triggers,
            traces_exported,
            spans_exported: gateway.spans_exported,
            bytes_exported: gateway.bytes_exported,
            bytes_exported_ratio: ratio(gateway.bytes_exported, gateway.bytes_received),
            traces_expired: gateway.traces_expired,
            injected_edge_cases: injected,
            edge_cases_exported: complete,
            recall: ratio(complete, injected),
            precision: ratio(kept_injected, requests_exported),
            by_fault: by_fault::score(truth, exported),
            compare: None,
        }
    }

    pub fn print(&self) {
        println!("wBPF demo — triggered sampling on the emulated memory pool");
        println!();
        let rows: [(&str, String); 18] = [
            ("run time", format!("{:.1} s", self.duration_s)),
            (
                "requests",
                format!("{} ({} errors)", self.requests, self.request_errors),
            ),
            ("traces received", self.traces_received.to_string()),
            ("spans received", self.spans_received.to_string()),
            (
                "gateway ingest rate",
                format!("{:.0} spans/s", self.ingest_spans_per_s),
            ),
            (
                "probe events",
                format!("{} ({} lost)", self.probe_events, self.probe_events_lost),
            ),
            ("triggers", self.triggers.to_string()),
            (
                "triggers without context",
                format!(
                    "{} ({} traces matched by thread and time)",
                    self.triggers_without_context, self.correlated_triggers
                ),
            ),
            ("traces exported", self.traces_exported.to_string()),
            ("spans exported", self.spans_exported.to_string()),
            ("traces aged out unsampled", self.traces_expired.to_string()),
            ("bytes received", self.bytes_received.to_string()),
            ("bytes exported", self.bytes_exported.to_string()),
            (
                "exported / received",
                format!("{:.2} %", self.bytes_exported_ratio * 100.0),
            ),
            ("injected edge cases", self.injected_edge_cases.to_string()),
            (
                "edge cases exported whole",
                self.edge_cases_exported.to_string(),
            ),
            ("recall", format!("{:.3}", self.recall)),
            ("precision", format!("{:.3}", self.precision)),
        ];
        for (name, value) in rows {
            println!("  {name:<28} {value}");
        }
        // One kind is the overall figure already; several get a line each.
        if self.by_fault.len() > 1 {
            for (fault, score) in &self.by_fault {
                let name = format!("recall {fault}");
                println!(
                    "  {name:<28} {:.3} ({} of {})",
                    score.recall, score.exported_whole, score.injected
                );
            }
        }
    }
}

/// `a / b`, or 1.0 when there was nothing to find (nothing missed, nothing wrong).
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}
