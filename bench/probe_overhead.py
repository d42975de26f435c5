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
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/wbpf-target")) / "release"
WBPF = TARGET / "wbpf"
WORKLOAD = TARGET / "wbpf-workload"
POOL = "/dev/shm/wbpf-pool"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KINDS = ["none", "demo", "all"]
LATE_S = 0.001


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_triple():
    for base in range(31_000, 60_000, 3):
        socks = []
        try:
            for i in range(3):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no three free ports")


def wait_port(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:2]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid):
    """Direct children of `pid` (the three services under `wbpf workload`)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def peak_rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bpf_programs():
    """id -> (name, run count, run time ns) of every loaded eBPF program."""
    listing = json.loads(subprocess.check_output(["bpftool", "-j", "prog", "show"]))
    return {
        p["id"]: (p.get("name", "?"), p.get("run_cnt", 0), p.get("run_time_ns", 0))
        for p in listing
    }


def detectors(kind):
    """The probe's detectors: the demo's set, or every detector type. `pool_faults` keeps its
    default rescan of 1 s (the demo's 100 ms costs the probe about 4 % of a core here: a
    rescan reads every process's /proc/<pid>/maps); the workload maps the pool before the
    probe starts."""
    demo = f"""
    - {{type: function_latency, name: pool_access, binary: {WORKLOAD},
       symbol: wbpf_pool_access, threshold: 20ms}}
    - {{type: pool_objects, binary: {WORKLOAD}, leak_age: 2s}}
    - {{type: pool_faults, paths: [{POOL}], max_faults: 64}}
"""
    if kind == "demo":
        return demo
    return demo + f"""
    - {{type: function_latency, name: pool_access_p999, binary: {WORKLOAD},
       symbol: wbpf_pool_access, percentile: 99.9}}
    - {{type: syscall_latency, threshold: 20ms, comms: [wbpf-workload]}}
    - {{type: memory_pressure, reclaim_stall: 1ms,
       migration: {{window: 1s, max_pages: 10000, max_failures: 1}}, oom_kill: true}}
"""


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class Connection:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def request(self, key):
        """One search; whether it was answered OK."""
        self.sock.sendall(f"REQ {key % 100_000} 0 -\n".encode())
        line = self.reader.readline()
        return line.startswith(b"OK")

    def close(self):
        self.reader.close()
        self.sock.close()


def run_threads(count, target):
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def closed_loop(port, clients, seconds):
    """Each connection sends its next request as soon as the answer arrives."""
    latencies, errors, lock = [], [0], threading.Lock()
    deadline = time.monotonic() + seconds

    def client(n):
        mine, failed = [], 0
        conn = Connection(port)
        key = n * 1_000_000
        while time.monotonic() < deadline:
            key += 1
            started = time.perf_counter()
            if not conn.request(key):
                failed += 1
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    started = time.monotonic()
    run_threads(clients, client)
    elapsed = time.monotonic() - started
    return {
        "requests": len(latencies),
        "errors": errors[0],
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
    }


def open_loop(port, clients, rate, seconds, service_pids):
    """Requests on a fixed schedule, `rate` per second in all, spread over `clients`
    connections; the services' CPU is read around the run."""
    latencies, late, errors, lock = [], [0], [0], threading.Lock()
    per_client = rate / clients
    total = int(per_client * seconds)
    conns = [Connection(port) for _ in range(clients)]
    start = time.perf_counter() + 0.1

    def client(n):
        mine, mine_late, failed = [], 0, 0
        conn = conns[n]
        for i in range(total):
            due = start + (i + n / clients) / per_client
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            if sent - due > LATE_S:
                mine_late += 1
            if not conn.request(n * 1_000_000 + i):
                failed += 1
            mine.append(time.perf_counter() - sent)
        with lock:
            latencies.extend(mine)
            late[0] += mine_late
            errors[0] += failed

    cpu_before = sum(cpu_seconds(pid) for pid in service_pids)
    began = time.perf_counter()
    run_threads(clients, client)
    elapsed = time.perf_counter() - began
    cpu = sum(cpu_seconds(pid) for pid in service_pids) - cpu_before
    for conn in conns:
        conn.close()
    return {
        "open_rate": rate,
        "open_requests": len(latencies),
        "open_errors": errors[0],
        "open_late": late[0],
        "open_rps": len(latencies) / elapsed,
        "open_p50_ms": percentile(latencies, 0.50) * 1e3,
        "open_p99_ms": percentile(latencies, 0.99) * 1e3,
        "workload_cpu_pct": 100 * cpu / elapsed,
        "workload_cpu_us_per_request": 1e6 * cpu / max(1, len(latencies)),
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
    procs, logs = [], []

    def spawn(name, cmd):
        log = open(tmp / f"{name}.log", "w")
        logs.append(log)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    try:
        gateway = spawn("gateway", [str(WBPF), "gateway", "--config", str(tmp / "gateway.yaml")])
        wait_port(grpc, gateway)
        base = free_triple()
        workload = spawn(
            "workload",
            [str(WBPF), "workload", "--otlp-endpoint", f"http://127.0.0.1:{http}",
             "--rate", "1", "--fault-rate", "0", "--base-port", str(base),
             "--ground-truth", str(tmp / "truth.jsonl")],
        )
        wait_port(base, workload)
        services = children(workload.pid)
        probe = None
        before = bpf_programs()
        if kind != "none":
            (tmp / "probe.yaml").write_text(
                f"probe:\n  gateway: http://127.0.0.1:{grpc}\n  admin: null\n"
                f"  context: {{binary: {WORKLOAD}}}\n  detectors:{detectors(kind)}"
            )
            probe = spawn("probe", [str(WBPF), "probe", "--config", str(tmp / "probe.yaml")])
            time.sleep(2.5)  # load, attach, find the pool mapping
            if probe.poll() is not None:
                raise RuntimeError((tmp / "probe.log").read_text())

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
        for proc in reversed(procs):
            stop(proc)
        for log in logs:
            log.close()


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
