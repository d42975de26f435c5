//! The probe's admin answers as JSON: the detectors, and what a reload did.

use serde_json::{json, Value};
use wbpf_probe::{Change, DetectorFailure, Probe, ReloadReport, Timing};

/// `GET /v1/detectors`: running detectors, then those that are not, with why.
pub fn detectors(probe: &Probe) -> Value {
    let running = probe.running().into_iter().map(|(name, detector_type)| {
        json!({ "detector": name, "type": detector_type, "status": "running" })
    });
    let failed = probe.failures().iter().map(|failure| {
        let mut value = failure_json(failure);
        value["status"] = json!("failed");
        value
    });
    Value::Array(running.chain(failed).collect())
}

/// `POST /v1/reload`: every detector's change, the loads and unloads with their durations,
/// the detectors that failed to start, and the settings that need a restart.
pub fn reload(report: &ReloadReport) -> Value {
    let changes: Vec<Value> = report
        .changes
        .iter()
        .map(|(name, detector_type, change)| {
            json!({ "detector": name, "type": detector_type, "change": change_name(*change) })
        })
        .collect();
    json!({
        "changes": changes,
        "loads": report.loads.iter().map(timing_json).collect::<Vec<_>>(),
        "unloads": report.unloads.iter().map(timing_json).collect::<Vec<_>>(),
        "failures": report.failures.iter().map(failure_json).collect::<Vec<_>>(),
        "ignored": report.ignored,
    })
}

fn change_name(change: Change) -> &'static str {
    match change {
        Change::Added => "added",
        Change::Removed => "removed",
        Change::Changed => "changed",
        Change::Retuned => "retuned",
        Change::Restarted => "restarted",
        Change::Kept => "kept",
    }
}

fn timing_json(timing: &Timing) -> Value {
    json!({
        "type": timing.detector_type,
        "detectors": timing.detectors,
        "took_ms": timing.took.as_secs_f64() * 1e3,
    })
}

fn failure_json(failure: &DetectorFailure) -> Value {
    json!({
        "detector": failure.detector,
        "type": failure.detector_type,
        "error": failure.to_string(),
    })
}
