#!/usr/bin/env python3
"""Throughput-latency curve of the demo workload with no tracing, with tail-sampled tracing
and with triggered tracing: requests/s achieved against p50 and p99 request latency, one line
per configuration, as in the Hindsight paper's figure for retroactive sampling. Needs root
(the triggered configuration runs the probe's eBPF programs).

Configurations, all started afresh for each run on this machine:

- native: `wbpf workload --no-tracing`. The services run the same code, but their spans are
  dropped as they start and nothing is exported; no gateway, no probe.
- tail: the services export every span over OTLP/HTTP to `wbpf gateway` in tail mode with the
  latency policy `wbpf demo --compare` uses for its tail shadow (25 ms, decision_wait 2 s);
  no probe.
- triggered: the same export to the gateway in triggered mode, with the node probe running
  the demo's three detectors (as bench/probe_overhead.py starts it).

Both gateways keep traces 4 s (`storage.retention`) and write what they release to a file.
The requests carry no injected faults, so nothing triggers and no trace is slow: the figures
are the cost of tracing itself.

For each offered rate the configurations run in turn, the order rotated from one rate to the
next so that a busy moment of the shared machine does not always hit the same one. A run
drives the frontend open-loop (bench/demo_load.py: requests on a fixed schedule over
`--clients` connections, each carrying one request at a time) for `--warmup` seconds, so the
gateway's decisions and expiry reach their steady state, then measures `--seconds`. Latency
counts from the slot a request was due in, so past saturation the queue in front of the
services shows; requests not sent within 1 s after the schedule's end are abandoned. CPU per
request is that of the three services, the gateway and the probe over the measured seconds;
the driver's own CPU and the rest of the machine's (other users, and kernel time charged to
no process) are recorded beside it. Spans lost are those of the whole run (warm-up included)
that never reached the gateway: the services' SDK drops spans when its export queue is full.

A configuration sustains a rate when it answers at least 95 % of it per second, abandons
none, keeps the median latency under 1 ms (no standing queue) and, with tracing, loses at most
1 % of the spans. The summary compares the highest rate each sustained, and the peak rate each
achieved whatever the latency and loss, with native's.

Writes bench/results/workload_curve.json and workload_curve.svg, and the table between the
markers in BENCHMARKS.md; prints the table.

    python3 bench/workload_curve.py [--rates 1000,2000,4000,6000,7000,...,20000]
        [--seconds 6] [--warmup 5] [--clients 8]
"""

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from demo_load import (ROOT, WBPF, WORKLOAD, Processes, cpu_seconds, free_port,
                       gateway_metrics, machine_busy_seconds, open_loop, start_probe,
                       start_workload, stop, wait_for_port)
from report import line_chart, write_benchmarks

CONFIGS = ["native", "tail", "triggered"]
RATES = "1000,2000,4000,6000,7000,8000,9000,10000,12000,14000,16000,18000,20000"
TAIL = """\
  tail_sampling:
    decision_wait: 2s
    policies: [{name: slow, type: latency, latency: {threshold_ms: 25}}]
"""
SPANS_PER_REQUEST = 9
# A rate is sustained when at least SUSTAINED of it was answered per second, none abandoned,
# with no standing queue (median latency from the slot under QUEUE_MS), and, with tracing,
# at most LOSS_PCT % of the spans lost on the way to the gateway.
SUSTAINED = 0.95
QUEUE_MS = 1.0
LOSS_PCT = 1.0
GIVE_UP_S = 1.0


def gateway_config(config, tmp, grpc, http, admin):
    sampling = f"sampling:\n  mode: tail\n{TAIL}" if config == "tail" else (
        "sampling:\n  mode: triggered\n")
    return (
        f"receivers: {{grpc: 127.0.0.1:{grpc}, http: 127.0.0.1:{http}}}\n"
        f"storage: {{path: {tmp / 'db'}, retention: 4s}}\n"
        f"admin: {{listen: 127.0.0.1:{admin}}}\n"
        f"{sampling}"
        f"exporters: {{file: {{path: {tmp / 'exported.jsonl'}}}}}\n"
    )


def sdk_spans_dropped(log):
    """Spans the services' OpenTelemetry SDK dropped for a full export queue, as each batch
    span processor reports at shutdown."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace"))
    return sum(int(n) for n in re.findall(r"dropped_span_count=(\d+)", text))


def measure(config, rate, args, tmp):
    """One run: the configuration's processes, warm-up, then the measured seconds."""
    tmp = Path(tempfile.mkdtemp(dir=tmp, prefix=f"{config}-{rate}-"))
    procs = Processes(tmp)
    try:
        tracing_pids, http, admin = {}, None, None
        if config != "native":
            grpc, http, admin = free_port(), free_port(), free_port()
            (tmp / "gateway.yaml").write_text(gateway_config(config, tmp, grpc, http, admin))
            gateway = procs.spawn("gateway", [str(WBPF), "gateway", "--config",
                                              str(tmp / "gateway.yaml")])
            wait_for_port(grpc, proc=gateway)
            tracing_pids["gateway"] = gateway.pid
        workload, base, services = start_workload(procs, http, tmp, tracing=config != "native")
        workload_started = time.monotonic()
        if config == "triggered":
            tracing_pids["probe"] = start_probe(procs, grpc, "demo", tmp).pid

        warmup = open_loop(base, args.clients, rate, args.warmup, services, GIVE_UP_S)
        load_average = os.getloadavg()[0]
        cpu_before = {name: cpu_seconds(pid) for name, pid in tracing_pids.items()}
        busy_before, driver_before = machine_busy_seconds(), time.process_time()
        result = open_loop(base, args.clients, rate, args.seconds, services, GIVE_UP_S)
        busy = machine_busy_seconds() - busy_before
        driver = time.process_time() - driver_before
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in tracing_pids.items()}

        answered = max(1, result["open_requests"])
        services_cpu = result["workload_cpu_us_per_request"]
        result.update({
            "config": config,
            "load_average": load_average,
            "services_cpu_us_per_request": services_cpu,
            "gateway_cpu_us_per_request": 1e6 * cpu.get("gateway", 0.0) / answered,
            "probe_cpu_us_per_request": 1e6 * cpu.get("probe", 0.0) / answered,
            "driver_cpu_us_per_request": 1e6 * driver / answered,
            "machine_busy_cores": busy / result["open_elapsed_s"],
        })
        result["cpu_us_per_request"] = (services_cpu + result["gateway_cpu_us_per_request"]
                                        + result["probe_cpu_us_per_request"])
        ours = (result["cpu_us_per_request"] + result["driver_cpu_us_per_request"]) * answered
        result["rest_of_machine_cores"] = max(0.0, busy - ours / 1e6) / result["open_elapsed_s"]

        if admin:
            stop(workload)  # the services flush their last spans on the way out
            # Every request answered, the driver's and the frontend's own (1 per second).
            requests = (warmup["open_requests"] + result["open_requests"]
                        + int(time.monotonic() - workload_started))
            time.sleep(0.5)
            figures = gateway_metrics(admin)
            result["gateway"] = {k: figures.get(k, 0.0) for k in [
                "spans_received", "requests_refused_overload", "traces_released",
                "traces_sampled_out", "traces_expired", "triggers"]}
            expected = SPANS_PER_REQUEST * requests
            result["spans_lost_pct"] = max(
                0.0, 100 * (1 - result["gateway"]["spans_received"] / expected))
            result["sdk_spans_dropped"] = sdk_spans_dropped(tmp / "workload.log")
        return result
    finally:
        procs.stop_all()


def summarise(results):
    """Per configuration: the highest offered rate it sustained (see SUSTAINED) and the peak
    rate it achieved, each against native's, and the spans lost at that peak."""
    summary = {}
    for config in CONFIGS:
        runs = sorted((r for r in results if r["config"] == config), key=lambda r: r["open_rate"])
        sustained = [r for r in runs
                     if r["open_rps"] >= SUSTAINED * r["open_rate"] and not r["open_unsent"]
                     and r["open_sched_p50_ms"] < QUEUE_MS
                     and r.get("spans_lost_pct", 0.0) <= LOSS_PCT]
        peak = max(runs, key=lambda r: r["open_rps"])
        summary[config] = {
            "highest_sustained_rate": sustained[-1]["open_rate"] if sustained else 0,
            "peak_rps": peak["open_rps"],
            "peak_at_offered": peak["open_rate"],
            "spans_lost_pct_at_peak": peak.get("spans_lost_pct"),
        }
    native = summary["native"]
    for s in summary.values():
        s["sustained_vs_native"] = (s["highest_sustained_rate"]
                                    / max(1, native["highest_sustained_rate"]))
        s["peak_vs_native"] = s["peak_rps"] / native["peak_rps"]
    return summary


def table(results, summary):
    lines = [
        "| offered/s | config | achieved/s | p50 ms | p99 ms | CPU µs/req | of it gateway "
        "| of it probe | spans lost | rest of machine (cores) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(results, key=lambda r: (r["open_rate"], CONFIGS.index(r["config"]))):
        lost = f"{r['spans_lost_pct']:.1f} %" if "spans_lost_pct" in r else "–"
        lines.append(
            f"| {r['open_rate']} | {r['config']} | {r['open_rps']:.0f} "
            f"| {r['open_sched_p50_ms']:.2f} | {r['open_sched_p99_ms']:.2f} "
            f"| {r['cpu_us_per_request']:.0f} | {r['gateway_cpu_us_per_request']:.0f} "
            f"| {r['probe_cpu_us_per_request']:.0f} | {lost} "
            f"| {r['rest_of_machine_cores']:.2f} |")
    lines += ["", "| config | highest rate sustained | ÷ native | peak achieved/s | ÷ native "
              "| spans lost at peak |", "|---|---:|---:|---:|---:|---:|"]
    for config in CONFIGS:
        s = summary[config]
        lost = s["spans_lost_pct_at_peak"]
        lines.append(f"| {config} | {s['highest_sustained_rate']} "
                     f"| {s['sustained_vs_native']:.2f} | {s['peak_rps']:.0f} "
                     f"| {s['peak_vs_native']:.2f} "
                     f"| {'–' if lost is None else f'{lost:.1f} %'} |")
    return "\n".join(lines) + "\n"


def plot(results, path):
    """p50 and p99 latency against requests/s achieved, one line per configuration and a
    point per offered rate; beside them the share of spans lost on the way to the gateway."""
    panels = []
    for key, label in [("open_sched_p50_ms", "p50 latency (ms)"),
                       ("open_sched_p99_ms", "p99 latency (ms)"),
                       ("spans_lost_pct", "spans lost (%)")]:
        series = {}
        for config in CONFIGS:
            runs = sorted((r for r in results if r["config"] == config and key in r),
                          key=lambda r: r["open_rate"])
            if runs:
                series[config] = [(r["open_rps"], r[key]) for r in runs]
        panels.append((label, series))
    return line_chart(path, panels, "requests/s achieved", log_y=[True, True, False])


def source_state():
    """The commit the binaries were built from, when they were built, and the uncommitted Rust
    files of the working tree, each marked whether it changed before the `wbpf` binary was
    built (the target directory is shared, so such a change may be in the binary)."""
    def git(*argv):
        return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True).stdout

    def stamp(seconds):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(seconds))

    built = WBPF.stat().st_mtime
    uncommitted = {}
    for line in git("status", "--short").splitlines():
        path = ROOT / line[3:]
        if path.suffix == ".rs" and path.exists():
            uncommitted[line[3:]] = "before" if path.stat().st_mtime < built else "after"
    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "binaries": {path.name: stamp(path.stat().st_mtime) for path in [WBPF, WORKLOAD]},
        "uncommitted_changed_before_or_after_build": uncommitted,
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default=RATES,
                        help="offered requests/s, comma-separated (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=6,
                        help="measured seconds per run (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=5,
                        help="seconds at the rate before measuring (default %(default)s)")
    parser.add_argument("--clients", type=int, default=8,
                        help="connections to the frontend (default %(default)s)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: the triggered configuration loads eBPF programs")

    rates = [int(r) for r in args.rates.split(",")]
    results = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wbpf-workload-curve-") as tmp:
        for i, rate in enumerate(rates):
            for config in CONFIGS[i % 3:] + CONFIGS[:i % 3]:
                result = measure(config, rate, args, tmp)
                results.append(result)
                print(json.dumps(result), flush=True)

    summary = summarise(results)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "args": vars(args),
        "built_from": source_state(),
        "minutes": (time.monotonic() - began) / 60,
        "load_average_at_end": os.getloadavg(),
        "runs": results,
        "summary": summary,
    }
    (out / "workload_curve.json").write_text(json.dumps(document, indent=2) + "\n")
    drawn = plot(results, out / "workload_curve.svg")
    text = table(results, summary)
    print("\n" + text)
    print("plot:", "bench/results/workload_curve.svg" if drawn else "none (matplotlib missing)")
    write_benchmarks("bench/workload_curve.py", command_line(parser, args), text)


def command_line(parser, args):
    """The command that reproduces this run: the script with the options not at default."""
    words = ["python3", "bench/workload_curve.py"]
    for name, value in vars(args).items():
        if value != parser.get_default(name):
            words += [f"--{name}", f"{value:g}" if isinstance(value, float) else str(value)]
    return " ".join(words)


if __name__ == "__main__":
    main()
