"""Running the demo workload, the gateway and the probe as processes, and driving the
workload's frontend, for the benchmarks that measure them (probe_overhead.py,
workload_curve.py). Binaries come from $CARGO_TARGET_DIR/release (default /var/tmp/wbpf-target).

The frontend answers `REQ <key> <fault> <traceparent>` lines on its own port, one at a time per
connection. `closed_loop` sends the next request as soon as the answer comes; `open_loop` sends
on a fixed schedule whatever the answers do, as an open-loop load generator should.
"""

import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/wbpf-target")) / "release"
WBPF = TARGET / "wbpf"
WORKLOAD = TARGET / "wbpf-workload"
POOL = "/dev/shm/wbpf-pool"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LATE_S = 0.001
PR_SET_TIMERSLACK = 29


def free_triple():
    """Three consecutive free ports, below the kernel's ephemeral range (whose ports any
    outgoing connection may take before the services bind them)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral = int(f.read().split()[0])
    for base in range(10_000, max(ephemeral, 10_300) - 3, 3):
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


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Processes:
    """Processes started for one run, each logging to `<dir>/<name>.log`; `stop_all` ends
    them in reverse start order."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.procs, self.logs = [], []

    def spawn(self, name, cmd):
        log = open(self.directory / f"{name}.log", "w")
        self.logs.append(log)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop_all(self):
        for proc in reversed(self.procs):
            stop(proc)
        for log in self.logs:
            log.close()


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds():
    """CPU seconds all cores spent outside idle and iowait since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


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


def start_workload(procs, otlp_http_port, tmp, tracing=True):
    """`wbpf workload` with its own load nearly idle (1 request/s, no faults), exporting to
    the gateway's OTLP/HTTP port unless `tracing` is off; returns its process, the
    frontend's port and the three services' pids."""
    base = free_triple()
    command = [str(WBPF), "workload", "--rate", "1", "--fault-rate", "0",
               "--base-port", str(base), "--ground-truth", str(Path(tmp) / "truth.jsonl")]
    if tracing:
        command += ["--otlp-endpoint", f"http://127.0.0.1:{otlp_http_port}"]
    else:
        command.append("--no-tracing")
    workload = procs.spawn("workload", command)
    wait_for_port(base, proc=workload)
    return workload, base, children(workload.pid)


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


def start_probe(procs, grpc_port, kind, tmp):
    """The node probe with `detectors(kind)`, sending triggers to the gateway's gRPC port."""
    config = Path(tmp) / "probe.yaml"
    config.write_text(
        f"probe:\n  gateway: http://127.0.0.1:{grpc_port}\n  admin: null\n"
        f"  context: {{binary: {WORKLOAD}}}\n  detectors:{detectors(kind)}"
    )
    probe = procs.spawn("probe", [str(WBPF), "probe", "--config", str(config)])
    time.sleep(2.5)  # load, attach, find the pool mapping
    if probe.poll() is not None:
        raise RuntimeError((Path(tmp) / "probe.log").read_text())
    return probe


def gateway_metrics(admin_port):
    """The gateway's counters from /metrics, by name without the `wbpf_gateway_` prefix and
    `_total` suffix (unlabelled series only)."""
    url = f"http://127.0.0.1:{admin_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    figures = {}
    for line in text.splitlines():
        if line.startswith("wbpf_gateway_") and "{" not in line:
            name, value = line.split()[:2]
            name = name.removeprefix("wbpf_gateway_").removesuffix("_total")
            figures[name] = float(value)
    return figures


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


def precise_sleeps():
    """Wake this thread within a microsecond of the time asked rather than Linux's default
    timer slack of 50 µs, so requests leave close to their slot."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def open_loop(port, clients, rate, seconds, service_pids, give_up_s=None):
    """Requests on a fixed schedule, `rate` per second in all, spread over `clients`
    connections; the services' CPU is read around the run.

    Latency is measured from the send (`open_p50_ms`) and from the slot the request was due
    in (`open_sched_p50_ms`), which adds the wait for a free connection: past saturation the
    first stays flat while the second grows with the queue. With `give_up_s`, requests not
    sent `give_up_s` after the schedule's end are abandoned (`open_unsent`), so a run past
    saturation still ends in time."""
    latencies, sched, late, errors, lock = [], [], [0], [0], threading.Lock()
    per_client = rate / clients
    total = int(per_client * seconds)
    conns = [Connection(port) for _ in range(clients)]
    start = time.perf_counter() + 0.1
    cutoff = start + seconds + give_up_s if give_up_s is not None else float("inf")

    def client(n):
        precise_sleeps()
        mine, mine_sched, mine_late, failed = [], [], 0, 0
        conn = conns[n]
        for i in range(total):
            due = start + (i + n / clients) / per_client
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            if sent > cutoff:
                break
            if sent - due > LATE_S:
                mine_late += 1
            if not conn.request(n * 1_000_000 + i):
                failed += 1
            answered = time.perf_counter()
            mine.append(answered - sent)
            mine_sched.append(answered - due)
        with lock:
            latencies.extend(mine)
            sched.extend(mine_sched)
            late[0] += mine_late
            errors[0] += failed

    cpu_before = sum(cpu_seconds(pid) for pid in service_pids)
    run_threads(clients, client)
    elapsed = time.perf_counter() - start
    cpu = sum(cpu_seconds(pid) for pid in service_pids) - cpu_before
    for conn in conns:
        conn.close()
    return {
        "open_rate": rate,
        "open_requests": len(latencies),
        "open_unsent": total * clients - len(latencies),
        "open_errors": errors[0],
        "open_late": late[0],
        "open_elapsed_s": elapsed,
        "open_rps": len(latencies) / elapsed,
        "open_p50_ms": percentile(latencies, 0.50) * 1e3,
        "open_p99_ms": percentile(latencies, 0.99) * 1e3,
        "open_sched_p50_ms": percentile(sched, 0.50) * 1e3,
        "open_sched_p99_ms": percentile(sched, 0.99) * 1e3,
        "workload_cpu_pct": 100 * cpu / elapsed,
        "workload_cpu_us_per_request": 1e6 * cpu / max(1, len(latencies)),
    }
