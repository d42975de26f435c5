#!/usr/bin/env python3
"""Probe overhead on the demo workload, with no probe, with the demo's probe (the pool
detectors `wbpf demo` runs) and with every detector on. Needs root (eBPF).

The workload's three services run with their own load generator nearly idle (1 request/s);
this script drives the frontend's listener itself, in two ways per configuration:

- closed loop: `--clients` connections each send the next request as soon as the answer
  comes, for `--seconds`. Requests per second is what the machine can do, and every
  microsecond a request costs anywhere (the services, the probe's programs, this Python
  driver, the gateway taking the spans) shows in it: on 2 cores it is the worst case.
- open loop: requests sent on a fixed schedule at `--rate` per second (well below
  saturation) over `--open-clients` connections, for `--seconds`. It gives p50/p99 latency
  from send to answer at a realistic load, and the CPU the three services use per request
  (user + system, which includes the kernel's uprobe handling and the eBPF programs that run
  in their threads). A request sent more than 1 ms after its slot counts as late.

Then, with a probe, `kernel.bpf_stats_enabled` is switched on for a run of sequential
requests to count each eBPF program's runs and run time per request (programs loaded after
the probe started; the switch costs a little itself, so this runs after the timed parts).

Configurations run in turns (`--rounds`, the order rotated each round), so a slow moment of
the shared machine spreads over all of them; the figures are medians over rounds. Writes
bench/results/probe_overhead.json and prints a Markdown table.

    python3 bench/probe_overhead.py [--seconds 10] [--rounds 3] [--clients 8] [--rate 1000]
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from demo_load import (ROOT, WBPF, Connection, Processes, closed_loop, cpu_seconds, free_port,
                       open_loop, peak_rss_mib, start_probe, start_workload, wait_for_port)

KINDS = ["none", "demo", "all"]


def bpf_programs():
    """id -> (name, run count, run time ns) of every loaded eBPF program."""
    listing = json.loads(subprocess.check_output(["bpftool", "-j", "prog", "show"]))
    return {
        p["id"]: (p.get("name", "?"), p.get("run_cnt", 0), p.get("run_time_ns", 0))
        for p in listing
    }


def program_costs(port, before, requests):
    """Runs and run time per request of the programs not in `before`, over `requests`
    sequential requests with kernel.bpf_stats_enabled on."""
    subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=1"], check=True)
    try:
        start = bpf_programs()
        conn = Connection(port)
        for key in range(requests):
            conn.request(key)
        conn.close()
        end = bpf_programs()
    finally:
        subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=0"], check=True)
    costs = {}
    for pid, (name, runs, ns) in end.items():
        if pid in before or pid not in start:
            continue
        runs -= start[pid][1]
        ns -= start[pid][2]
        if runs:
            entry = costs.setdefault(name, {"runs_per_request": 0.0, "ns_per_request": 0.0})
            entry["runs_per_request"] += runs / requests
            entry["ns_per_request"] += ns / requests
    return costs


def measure(kind, args, tmp):
    """One run of one configuration: gateway, workload, the probe (unless `none`), load."""
    tmp = Path(tempfile.mkdtemp(dir=tmp))
    grpc, http = free_port(), free_port()
    (tmp / "gateway.yaml").write_text(
        f"receivers: {{grpc: 127.0.0.1:{grpc}, http: 127.0.0.1:{http}}}\n"
        f"storage: {{path: {tmp / 'db'}, retention: 30s}}\n"
        "admin: null\n"
    )
    procs = Processes(tmp)
    try:
        gateway = procs.spawn("gateway", [str(WBPF), "gateway", "--config",
                                          str(tmp / "gateway.yaml")])
        wait_for_port(grpc, proc=gateway)
        _, base, services = start_workload(procs, http, tmp)
        before = bpf_programs()
        probe = start_probe(procs, grpc, kind, tmp) if kind != "none" else None

        closed_loop(base, args.clients, 2)  # warm up connections, caches and the pool
        probe_cpu = cpu_seconds(probe.pid) if probe else 0.0
        began = time.monotonic()
        result = closed_loop(base, args.clients, args.seconds)
        result.update(open_loop(base, args.open_clients, args.rate, args.seconds, services))
        if probe:
            elapsed = time.monotonic() - began
            result["probe_cpu_pct"] = 100 * (cpu_seconds(probe.pid) - probe_cpu) / elapsed
            result["probe_peak_rss_mib"] = peak_rss_mib(probe.pid)
            costs = program_costs(base, before, args.stats_requests)
            result["bpf_programs"] = costs
            result["bpf_runs_per_request"] = sum(c["runs_per_request"] for c in costs.values())
            result["bpf_us_per_request"] = (
                sum(c["ns_per_request"] for c in costs.values()) / 1e3
            )
        return result
    finally:
        procs.stop_all()


def summarise(runs):
    """Medians over rounds of every numeric figure; program costs from the last round."""
    summary = {}
    for kind, results in runs.items():
        keys = [k for k, v in results[0].items() if isinstance(v, (int, float))]
        summary[kind] = {k: statistics.median(r[k] for r in results) for k in keys}
        if "bpf_programs" in results[-1]:
            summary[kind]["bpf_programs"] = results[-1]["bpf_programs"]
    base = summary["none"]
    for kind in summary:
        s = summary[kind]
        s["rps_vs_none"] = s["rps"] / base["rps"]
        s["workload_cpu_vs_none"] = (
            s["workload_cpu_us_per_request"] / base["workload_cpu_us_per_request"]
        )
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=int, default=1000, help="open-loop requests/s")
    parser.add_argument("--open-clients", type=int, default=4)
    parser.add_argument("--stats-requests", type=int, default=2000)
    args = parser.parse_args()

    runs = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="wbpf-probe-bench-") as tmp:
        for round_ in range(args.rounds):
            order = KINDS[round_ % len(KINDS):] + KINDS[:round_ % len(KINDS)]
            for kind in order:
                result = measure(kind, args, tmp)
                result["round"] = round_ + 1
                runs[kind].append(result)
                shown = {k: v for k, v in result.items() if k != "bpf_programs"}
                print(f"round {round_ + 1} {kind}: {json.dumps(shown)}", flush=True)

    summary = summarise(runs)
    out = ROOT / "bench" / "results" / "probe_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "args": vars(args),
        "load_average_at_end": os.getloadavg(),
        "runs": runs,
        "median": summary,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")

    print(
        f"\nclosed loop ({args.clients} connections) and open loop ({args.rate}/s); "
        f"medians of {args.rounds} rounds\n"
    )
    print("| probe | closed req/s | vs none | open p50 ms | open p99 ms "
          "| workload CPU µs/req | vs none | eBPF runs/req | eBPF µs/req | probe CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in KINDS:
        s = summary[kind]
        runs_per = f"{s['bpf_runs_per_request']:.1f}" if "bpf_runs_per_request" in s else "–"
        bpf_us = f"{s['bpf_us_per_request']:.1f}" if "bpf_us_per_request" in s else "–"
        cpu = f"{s['probe_cpu_pct']:.1f} %" if "probe_cpu_pct" in s else "–"
        print(
            f"| {kind} | {s['rps']:.0f} | {s['rps_vs_none']:.3f} | {s['open_p50_ms']:.3f} "
            f"| {s['open_p99_ms']:.3f} | {s['workload_cpu_us_per_request']:.0f} "
            f"| {s['workload_cpu_vs_none']:.3f} | {runs_per} | {bpf_us} | {cpu} |"
        )


if __name__ == "__main__":
    main()
