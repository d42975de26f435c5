"""`wbpf demo --json --compare` on a short run: real workload processes, real eBPF probe, real
gateway. It must find the injected far-memory stalls (recall ≥ 0.99), keep little else
(precision ≥ 0.95) and export at most 5 % of the bytes it received. On the same stream, head
sampling at 1 % and a tail latency policy run in shadow: head keeps about 1 % of traces and
catches about 1 % of the stalls, tail catches the stalls (each makes its request slow end to
end), and the comparison chart is written.

With `--no-context` the workload never publishes its trace context: every trigger carries only
process, thread and event time, and the gateway must link each to the trace that thread was
serving (`sampling.correlation`)."""

import json
import subprocess

from conftest import BIN_DIR
from otel_helpers import normalise_exported

CORRELATION_SLACK_NS = 5_000_000

REQUIRED_KEYS = {
    "traces_received",
    "traces_exported",
    "triggers",
    "injected_edge_cases",
    "edge_cases_exported",
    "bytes_received",
    "bytes_exported",
}


def run_demo(output_dir, *options: str) -> dict:
    """`wbpf demo --json` with `options`, writing its files into `output_dir`; its summary."""
    command = [str(BIN_DIR / "wbpf"), "demo", "--json", *options, "--output-dir", str(output_dir)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_demo_json_meets_recall_precision_and_bytes_targets(tmp_path):
    summary = run_demo(tmp_path, "--duration", "12s", "--fault-rate", "0.02", "--compare")
    assert REQUIRED_KEYS <= summary.keys()

    assert summary["requests"] > 1000
    assert summary["injected_edge_cases"] >= 20, summary
    assert summary["recall"] >= 0.99, summary
    assert summary["precision"] >= 0.95, summary
    assert summary["bytes_exported"] <= 0.05 * summary["bytes_received"], summary
    assert summary["traces_exported"] < summary["traces_received"]

    compare = summary["compare"]
    modes = {m["mode"]: m for m in compare["modes"]}
    assert set(modes) == {"head", "tail", "triggered"}
    seen = compare["edge_cases_seen"]
    assert seen == summary["injected_edge_cases"], compare
    assert compare["events_dropped"] == 0, compare
    assert modes["triggered"]["exporting"]
    assert modes["triggered"]["edge_cases_captured"] >= 0.99 * seen, compare
    assert modes["tail"]["edge_cases_captured"] >= 0.95 * seen, compare
    head_share = modes["head"]["traces_kept"] / compare["traces_seen"]
    assert 0.002 <= head_share <= 0.03, compare
    assert modes["head"]["edge_cases_captured"] <= max(3, 0.1 * seen), compare
    # The shadow's triggered figures are what the gateway really exported.
    assert modes["triggered"]["bytes_kept"] == summary["bytes_exported"], compare

    svg = (tmp_path / "compare.svg").read_text()
    assert svg.startswith("<svg") and "triggered" in svg


def exported_spans(path):
    """Every span of the gateway's OTLP/JSON export file, normalised."""
    spans = []
    for line in path.read_text().splitlines():
        for resource_spans in json.loads(line)["resourceSpans"]:
            resource = resource_spans.get("resource", {})
            for scope_spans in resource_spans.get("scopeSpans", []):
                scope = scope_spans.get("scope", {})
                spans.extend(
                    normalise_exported(resource, scope, span)
                    for span in scope_spans.get("spans", [])
                )
    return spans


def test_demo_without_context_links_each_trigger_to_the_trace_its_thread_served(tmp_path):
    summary = run_demo(tmp_path, "--no-context", "--duration", "10s", "--fault-rate", "0.03")
    assert summary["injected_edge_cases"] >= 20, summary
    assert summary["triggers"] >= summary["injected_edge_cases"], summary
    assert summary["triggers_without_context"] == summary["triggers"], summary
    assert summary["correlated_triggers"] == summary["triggers"], summary

    truth = {
        json.loads(line)["trace_id"]
        for line in (tmp_path / "ground-truth.jsonl").read_text().splitlines()
    }
    spans = exported_spans(tmp_path / "exported.jsonl")
    triggers = [s for s in spans if s["attributes"].get("wbpf.context") == "none"]
    app = [s for s in spans if "wbpf.trigger" not in s["attributes"]]
    assert len(triggers) == summary["triggers"]

    # Each trigger's process, thread and time lead to exactly one exported request, and it
    # is one with an injected stall.
    for trigger in triggers:
        attributes = trigger["attributes"]
        pid, tid = attributes["process.pid"], attributes["thread.id"]
        at = attributes["wbpf.event_time_unix_nano"]
        serving = {
            s["trace_id"]
            for s in app
            if s["resource"].get("process.pid") == pid
            and s["attributes"].get("thread.id") == tid
            and s["start"] - CORRELATION_SLACK_NS <= at <= s["end"] + CORRELATION_SLACK_NS
        }
        assert len(serving) == 1, (trigger, serving)
        assert serving <= truth, (trigger, serving)

    # Nothing else was kept, and (nearly) every injected request was.
    kept = {s["trace_id"] for s in app}
    assert kept <= truth, kept - truth
    assert len(kept) >= 0.95 * len(truth), (len(kept), len(truth))
    assert summary["precision"] == 1.0 and summary["recall"] >= 0.95, summary
