#!/usr/bin/env python3
"""Edge cases captured by head, tail and triggered sampling on one stream, with the triggered
traces looked up in a real Jaeger.

Runs `wbpf demo --compare` (as root: the probe loads eBPF programs) with every fault kind
injected. The gateway exports in triggered mode to a JSON-lines file and over OTLP/gRPC to
Jaeger (built by bench/peers/build.sh, in-memory storage); head and tail sampling decide the
same stream in shadow, so for them the figures are what they would have exported. Then, for
every injected edge case of the workload's ground truth, Jaeger's query API is asked for the
trace: it reached Jaeger complete when Jaeger holds all the application spans the workload
made for that request and exactly the spans the gateway exported. Every trace Jaeger holds is
also listed, to show that nothing else arrived. Writes bench/results/edge_cases.json and the
table in BENCHMARKS.md between its markers, and the chart bench/results/edge_cases.svg.

    python3 bench/edge_cases.py [--duration 30s] [--fault-rate 0.003]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from ports import free_port, wait_for_port
from report import write_benchmarks

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/wbpf-target")) / "release"
PEERS = Path(os.environ.get("WBPF_PEERS_DIR", "/var/tmp/wbpf-peers")) / "bin"
JAEGER_CONFIG = ROOT / "bench" / "peers" / "jaeger" / "memstore.yaml"
RESULTS = ROOT / "bench" / "results"
FAULT_KINDS = ["far_memory_stall", "leak", "stale_access", "double_release", "fault_storm"]


def get_json(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


class Jaeger:
    """The Jaeger peer, in memory, on free loopback ports."""

    def __init__(self, work):
        binary = PEERS / "jaeger"
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} missing: bash bench/peers/build.sh")
        self.otlp = free_port()
        self.query = free_port()
        config = work / "jaeger.yaml"
        config.write_text(
            JAEGER_CONFIG.read_text().format(
                otlp_grpc=self.otlp, query_http=self.query, query_grpc=free_port()
            )
        )
        self.log = open(work / "jaeger.log", "wb")
        command = [str(binary), "--config", str(config)]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.otlp)
        wait_for_port(self.query)

    def url(self, path):
        return f"http://127.0.0.1:{self.query}{path}"

    def trace(self, trace_id):
        """The trace's spans as Jaeger returns them, or [] when Jaeger does not have it."""
        try:
            data = get_json(self.url(f"/api/traces/{trace_id}"))["data"]
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return []
            raise
        return [span for trace in data for span in trace["spans"]]

    def trace_ids(self):
        """Every trace id Jaeger holds, over all services."""
        now_us = int(time.time() * 1e6)
        ids = set()
        for service in get_json(self.url("/api/services"))["data"] or []:
            query = (
                f"/api/traces?service={urllib.request.quote(service)}&limit=99999"
                f"&start={now_us - 3_600_000_000}&end={now_us + 60_000_000}"
            )
            ids.update(trace["traceID"] for trace in get_json(self.url(query))["data"] or [])
        return ids

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def all_arrived(jaeger, exported, timeout=60.0):
    """The trace ids Jaeger holds, once it holds every exported trace or `timeout` passed."""
    deadline = time.monotonic() + timeout
    while True:
        held = jaeger.trace_ids()
        if set(exported) <= held or time.monotonic() > deadline:
            return held
        time.sleep(0.5)


def exported_span_ids(path):
    """Span ids per trace id (lowercase hex) in the gateway's JSON-lines export."""
    spans = {}
    if not path.exists():
        return spans
    for line in path.read_text().splitlines():
        for resource in json.loads(line).get("resourceSpans", []):
            for scope in resource.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    trace = span["traceId"].lower()
                    spans.setdefault(trace, set()).add(span["spanId"].lower())
    return spans


def is_trigger(span):
    return any(
        tag["key"] == "wbpf.trigger" and str(tag["value"]).lower() == "true"
        for tag in span.get("tags", [])
    )


def score_in_jaeger(jaeger, truth, exported):
    """Per ground-truth trace: whether Jaeger holds it complete; and per fault kind."""
    needed = {}
    kinds = {}
    for entry in truth:
        trace = entry["trace_id"].lower()
        needed[trace] = max(needed.get(trace, 0), entry["spans"])
        kinds.setdefault(trace, set()).add(entry["fault"])
    complete = {}
    for trace, spans_needed in needed.items():
        spans = jaeger.trace(trace)
        ids = {span["spanID"].lower() for span in spans}
        application = sum(1 for span in spans if not is_trigger(span))
        complete[trace] = application >= spans_needed and ids == exported.get(trace, set())
    by_kind = {}
    for trace, faults in kinds.items():
        for fault in faults:
            row = by_kind.setdefault(fault, {"injected": 0, "in_jaeger_complete": 0})
            row["injected"] += 1
            row["in_jaeger_complete"] += complete[trace]
    return complete, by_kind


def run(args, work):
    wbpf = TARGET / "wbpf"
    if not os.access(wbpf, os.X_OK):
        raise SystemExit(f"{wbpf} missing: bash scripts/setup.sh")
    jaeger = Jaeger(work)
    try:
        out = work / "demo"
        rate = str(args.fault_rate)
        command = [
            str(wbpf), "demo", "--compare", "--json", "--duration", args.duration,
            "--rate", str(args.rate), "--fault-rate", str(args.stall_rate),
            "--leak-rate", rate, "--stale-rate", rate, "--double-release-rate", rate,
            "--fault-storm-rate", rate, "--seed", str(args.seed),
            "--otlp-export", f"http://127.0.0.1:{jaeger.otlp}", "--output-dir", str(out),
            "--svg", str(RESULTS / "edge_cases.svg"),
        ]
        print("running:", " ".join(command[1:]), file=sys.stderr)
        demo = subprocess.run(command, capture_output=True, text=True, check=False)
        if demo.returncode != 0:
            raise SystemExit(f"wbpf demo failed ({demo.returncode}):\n{demo.stderr[-4000:]}")
        summary = json.loads(demo.stdout)
        truth = [json.loads(line) for line in (out / "ground-truth.jsonl").read_text().split()]
        exported = exported_span_ids(out / "exported.jsonl")
        in_jaeger = all_arrived(jaeger, exported)
        complete, by_kind = score_in_jaeger(jaeger, truth, exported)
    finally:
        jaeger.stop()
    return {
        "command": " ".join(command[1:]),
        "summary": summary,
        "traces_in_jaeger": len(in_jaeger),
        "exported_not_in_jaeger": len(set(exported) - in_jaeger),
        "in_jaeger_not_exported": len(in_jaeger - set(exported)),
        "in_jaeger_ground_truth": len(in_jaeger & set(complete)),
        "edge_cases": len(complete),
        "edge_cases_in_jaeger_complete": sum(complete.values()),
        "by_kind": by_kind,
    }


def table(result):
    summary = result["summary"]
    compare = summary["compare"]
    seen = compare["traces_seen"]
    lines = [
        "| mode | traces kept | spans | bytes | bytes % of received | edge cases captured "
        "| complete in Jaeger |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    edge_cases = result["edge_cases"]
    for mode in compare["modes"]:
        captured = mode["edge_cases_captured"]
        jaeger = (
            f"{result['edge_cases_in_jaeger_complete']} of {edge_cases}"
            if mode["exporting"]
            else "– (shadow)"
        )
        lines.append(
            f"| {mode['mode']}{' (exporting)' if mode['exporting'] else ''} "
            f"| {mode['traces_kept']:,} ({mode['traces_kept'] / max(seen, 1):.2%}) "
            f"| {mode['spans_kept']:,} | {mode['bytes_kept']:,} "
            f"| {mode['bytes_kept'] / max(compare['bytes_seen'], 1):.2%} "
            f"| {captured} of {compare['edge_cases_seen']} "
            f"({captured / max(compare['edge_cases_seen'], 1):.0%}) | {jaeger} |"
        )
    kinds = ", ".join(
        f"{kind} {row['in_jaeger_complete']}/{row['injected']}"
        for kind in FAULT_KINDS
        if (row := result["by_kind"].get(kind))
    )
    lines += [
        "",
        f"Received: {seen:,} traces, {compare['spans_seen']:,} spans, "
        f"{compare['bytes_seen']:,} bytes. Complete in Jaeger per fault kind: {kinds}. "
        f"Jaeger holds {result['traces_in_jaeger']:,} traces: "
        f"{result['in_jaeger_ground_truth']:,} of them injected edge cases; exported but "
        f"missing from Jaeger: {result['exported_not_in_jaeger']}; in Jaeger but never "
        f"exported: {result['in_jaeger_not_exported']}. Triggered mode exported "
        f"{summary['bytes_exported']:,} bytes (precision {summary['precision']:.3f}).",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", default="30s", help="how long the workload runs")
    parser.add_argument("--rate", type=int, default=200, help="requests per second")
    parser.add_argument(
        "--stall-rate", type=float, default=0.01, help="share of far-memory stalls"
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.003,
        help="share of each other fault kind (leak, stale, double release, fault storm)",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the demo's probe loads eBPF programs")
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wbpf-edge-cases-") as work:
        result = run(args, Path(work))
    (RESULTS / "edge_cases.json").write_text(json.dumps(result, indent=1) + "\n")
    text = table(result)
    print(text)
    command = "python3 bench/edge_cases.py " + " ".join(sys.argv[1:])
    write_benchmarks("bench/edge_cases.py", command.strip(), text)


if __name__ == "__main__":
    main()
