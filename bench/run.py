#!/usr/bin/env python3
"""Throughput and cost benchmark: wBPF (tail and triggered modes) and the OpenTelemetry
Collector's tail sampler, each alone, pinned to the same CPU budget, at increasing offered
rates of the same realistic traces.

Per system and rate: spans/s accepted, spans/s per CPU core used, p50/p99 export-call latency
seen by the client, peak RSS, disk bytes, and bytes sent downstream. CPU counts from the start
of the load to 8 s after it, when every decision is due and exported. Writes
bench/results/latest.json, the tables in BENCHMARKS.md (between the markers) and SVG plots.

    python3 bench/run.py [--rates 500,1000,2000,4000] [--seconds 10] [--cpus 1]
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ports import free_port, wait_for_port
from report import line_chart, write_benchmarks

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/wbpf-target")) / "release"
PEERS = Path(os.environ.get("WBPF_PEERS_DIR", "/var/tmp/wbpf-peers")) / "bin"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

POLICIES = """\
    decision_wait: 5s
    num_traces: 200000
    policies:
      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
      - {name: slow, type: latency, latency: {threshold_ms: 1000}}
      - name: triggers
        type: boolean_attribute
        boolean_attribute: {key: wbpf.trigger, value: true}
"""


def wbpf_config(mode, grpc, sink, data):
    sampling = (
        "sampling:\n  mode: tail\n  tail_sampling:\n" + POLICIES.replace("    ", "    ", 1)
        if mode == "tail"
        else "sampling:\n  mode: triggered\n"
    )
    return (
        f"receivers: {{grpc: 127.0.0.1:{grpc}, http: 127.0.0.1:{free_port()}}}\n"
        # Retention as long as the tail policies' decision_wait: both hold a trace 5 s.
        f"storage: {{path: {data}, retention: 5s}}\n"
        "admin: null\n"
        f"{sampling}"
        f"exporters:\n  otlp: {{endpoint: \"http://127.0.0.1:{sink}\"}}\n"
    )


def collector_config(grpc, sink):
    return (
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n"
        f"        endpoint: 127.0.0.1:{grpc}\n        max_recv_msg_size_mib: 64\n"
        "processors:\n  tail_sampling:\n" + POLICIES.replace("    ", "    ")
        + "exporters:\n  otlp:\n"
        f"    endpoint: 127.0.0.1:{sink}\n    tls: {{insecure: true}}\n"
        "service:\n  telemetry:\n    metrics: {level: none}\n"
        "  pipelines:\n    traces:\n      receivers: [otlp]\n"
        "      processors: [tail_sampling]\n      exporters: [otlp]\n"
    )


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_bytes(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def disk_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                pass
    return total


def run_one(system, rate, args, work):
    grpc, sink_port = free_port(), free_port()
    data = work / f"{system}-{rate}"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    load_cpu, system_cpus = "0", args.cpus
    if system == "collector":
        config = data / "collector.yaml"
        config.write_text(collector_config(grpc, sink_port))
        command = [str(PEERS / "wbpf-otelcol"), "--config", str(config)]
    else:
        config = data / "wbpf.yaml"
        config.write_text(wbpf_config(system.split("-")[1], grpc, sink_port, data / "rocksdb"))
        command = [str(TARGET / "wbpf"), "gateway", "--config", str(config)]

    sink = subprocess.Popen(
        ["taskset", "-c", load_cpu, str(TARGET / "wbpf-loadgen"), "sink",
         "--listen", f"127.0.0.1:{sink_port}"],
        stdout=subprocess.PIPE, text=True)
    env = dict(os.environ, RUST_LOG="warn", GOMAXPROCS=str(len(system_cpus.split(","))))
    server = subprocess.Popen(["taskset", "-c", system_cpus] + command, env=env,
                              stdout=subprocess.DEVNULL, stderr=open(data / "log", "w"))
    try:
        wait_for_port(grpc)
        wait_for_port(sink_port)
        cpu_before = cpu_seconds(server.pid)
        offer = subprocess.run(
            ["taskset", "-c", load_cpu, str(TARGET / "wbpf-loadgen"), "offer",
             "--endpoint", f"http://127.0.0.1:{grpc}", "--rate", str(rate),
             "--seconds", str(args.seconds)],
            capture_output=True, text=True, check=True)
        report = json.loads(offer.stdout)
        disk = disk_bytes(data / "rocksdb") if system != "collector" else 0
        # Let every decision fall due and reach the sink; the CPU this takes counts too.
        time.sleep(8)
        cpu_used = cpu_seconds(server.pid) - cpu_before
        rss = peak_rss_bytes(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
        sink.terminate()
        sink_out, _ = sink.communicate(timeout=30)
    downstream = json.loads(sink_out.strip().splitlines()[-1])
    return {
        "system": system,
        "rate": rate,
        "spans_per_s": report["spans_per_s"],
        "spans_accepted": report["spans_accepted"],
        "requests_skipped": report["requests_skipped"],
        "errors": report["errors"],
        "cpu_seconds": cpu_used,
        "spans_per_core_s": report["spans_accepted"] / cpu_used if cpu_used > 0 else 0.0,
        "p50_ms": report["p50_ms"],
        "p99_ms": report["p99_ms"],
        "peak_rss_mib": rss / 2**20,
        "disk_mib": disk / 2**20,
        "bytes_in_mib": report["bytes_accepted"] / 2**20,
        "bytes_downstream_mib": downstream["bytes"] / 2**20,
    }


def table(results):
    head = ("| system | traces/s offered | spans/s accepted | spans/s per core | p50 ms | p99 ms "
            "| peak RSS MiB | disk MiB | MiB in | MiB downstream |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    rows = "".join(
        f"| {r['system']} | {r['rate']} | {r['spans_per_s']:.0f} | {r['spans_per_core_s']:.0f} "
        f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['peak_rss_mib']:.0f} "
        f"| {r['disk_mib']:.0f} | {r['bytes_in_mib']:.0f} | {r['bytes_downstream_mib']:.1f} |\n"
        for r in results)
    return head + rows


def ratios(results):
    by = {(r["system"], r["rate"]): r for r in results}
    lines = ["| traces/s | tail ÷ Collector: spans/s per core | tail ÷ Collector: peak RSS "
             "| triggered ÷ Collector: spans/s per core | triggered ÷ Collector: peak RSS |",
             "|---:|---:|---:|---:|---:|"]
    for rate in sorted({r["rate"] for r in results}):
        base = by.get(("collector", rate))
        tail = by.get(("wbpf-tail", rate))
        trig = by.get(("wbpf-triggered", rate))
        if not (base and tail and trig) or not base["spans_per_core_s"]:
            continue
        lines.append(
            f"| {rate} | {tail['spans_per_core_s'] / base['spans_per_core_s']:.2f} "
            f"| {tail['peak_rss_mib'] / base['peak_rss_mib']:.2f} "
            f"| {trig['spans_per_core_s'] / base['spans_per_core_s']:.2f} "
            f"| {trig['peak_rss_mib'] / base['peak_rss_mib']:.2f} |")
    return "\n".join(lines) + "\n"


def plots(results, out):
    written = []
    for key, label, name in [("spans_per_core_s", "spans/s per core", "throughput.svg"),
                             ("peak_rss_mib", "peak RSS (MiB)", "memory.svg"),
                             ("p99_ms", "p99 export latency (ms)", "latency.svg")]:
        series = {
            system: sorted((r["rate"], r[key]) for r in results if r["system"] == system)
            for system in sorted({r["system"] for r in results})
        }
        if line_chart(out / name, [(label, series)], "traces/s offered (20 spans each)"):
            written.append(name)
    return written


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="500,1000,2000,4000")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--cpus", default="1", help="CPU list the system under test may use")
    parser.add_argument("--systems", default="wbpf-tail,wbpf-triggered,collector")
    args = parser.parse_args()
    for binary in [TARGET / "wbpf", TARGET / "wbpf-loadgen"]:
        if not binary.exists():
            raise SystemExit(f"{binary} missing: cargo build --release --workspace")
    if "collector" in args.systems and not (PEERS / "wbpf-otelcol").exists():
        raise SystemExit(f"{PEERS / 'wbpf-otelcol'} missing: bash bench/peers/build.sh")

    results = []
    with tempfile.TemporaryDirectory(prefix="wbpf-bench-") as work:
        for rate in [int(r) for r in args.rates.split(",")]:
            for system in args.systems.split(","):
                result = run_one(system, rate, args, Path(work))
                print(json.dumps(result), flush=True)
                results.append(result)

    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    written = plots(results, out)
    print(table(results))
    print(ratios(results))
    print("plots:", ", ".join(written) or "none (matplotlib missing)")
    command = (f"python3 bench/run.py --rates {args.rates} --seconds {args.seconds} "
               f"--cpus {args.cpus}")
    write_benchmarks("bench/run.py", command, table(results) + "\n" + ratios(results))


if __name__ == "__main__":
    main()
