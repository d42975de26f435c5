"""`wbpf probe` and `wbpf doctor` as a user runs them, on the real kernel (needs root):
detectors added and removed on SIGHUP and on `POST /v1/reload`, an invalid file rejected
without changing anything, load and unload latency in `/metrics`, and the doctor's verdict
for every detector."""

import json
import signal
import subprocess
import urllib.error
import urllib.request

import pytest
from conftest import BIN_DIR, Gateway, free_port, wait_for
from processes import wait_listening

TARGET = BIN_DIR / "wbpf-probe-target"
COMM = "wbpf-cli-sc"
DETECTOR_TYPES = [
    "function_latency",
    "syscall_latency",
    "memory_pressure",
    "pool_objects",
    "pool_faults",
]


def probe_yaml(gateway: Gateway, admin_port: int, with_function: bool) -> str:
    detectors = f"""
    - {{type: syscall_latency, name: cli-syscalls, threshold: 20ms, comms: [{COMM}]}}
"""
    if with_function:
        detectors += f"""
    - {{type: function_latency, name: cli-function, binary: {TARGET},
       symbol: wbpf_test_work, threshold: 20ms}}
"""
    return f"""
probe:
  gateway: {gateway.grpc_endpoint}
  admin: 127.0.0.1:{admin_port}
  detectors:{detectors}"""


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def post(url: str):
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def running(admin: str) -> dict:
    return {d["detector"]: d["status"] for d in json.loads(get(f"{admin}/v1/detectors"))}


def metric(text: str, name: str, labels: str = "") -> float:
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    raise AssertionError(f"{prefix!r} not in metrics:\n{text}")


def slow_syscall():
    subprocess.run([str(TARGET), "syscalls", COMM, "40"], check=True, timeout=30)


def syscall_triggers(gateway: Gateway) -> int:
    return sum(
        1
        for _, _, span in gateway.exported()
        if any(
            a["key"] == "wbpf.detector.name" and a["value"].get("stringValue") == "cli-syscalls"
            for a in span.get("attributes", [])
        )
    )


@pytest.fixture
def probe_run(tmp_path, gateway):
    admin_port = free_port()
    config = tmp_path / "probe.yaml"
    config.write_text(probe_yaml(gateway, admin_port, with_function=False))
    log = open(tmp_path / "probe.log", "w")
    proc = subprocess.Popen(
        [str(BIN_DIR / "wbpf"), "probe", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_listening(admin_port, proc, timeout=60)
    except Exception:
        proc.kill()
        raise RuntimeError((tmp_path / "probe.log").read_text())
    yield proc, config, f"http://127.0.0.1:{admin_port}", admin_port
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    log.close()


def test_sighup_and_the_admin_port_add_and_remove_detectors(probe_run, gateway):
    proc, config, admin, admin_port = probe_run
    assert running(admin) == {"cli-syscalls": "running"}
    slow_syscall()

    config.write_text(probe_yaml(gateway, admin_port, with_function=True))
    proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "cli-function" in running(admin), timeout=20), running(admin)
    assert running(admin) == {"cli-syscalls": "running", "cli-function": "running"}
    slow_syscall()

    config.write_text(probe_yaml(gateway, admin_port, with_function=False))
    status, report = post(f"{admin}/v1/reload")
    assert status == 200, report
    changes = {c["detector"]: c["change"] for c in report["changes"]}
    assert changes == {"cli-syscalls": "kept", "cli-function": "removed"}, report
    assert [u["type"] for u in report["unloads"]] == ["function_latency"]
    assert running(admin) == {"cli-syscalls": "running"}
    slow_syscall()

    config.write_text("probe:\n  detectors:\n    - {type: no_such_detector}\n")
    status, answer = post(f"{admin}/v1/reload")
    assert status == 422 and "no_such_detector" in answer["message"], answer
    assert running(admin) == {"cli-syscalls": "running"}, "a bad file changes nothing"

    metrics = get(f"{admin}/metrics")
    fn = 'detector_type="function_latency"'
    assert metric(metrics, "wbpf_probe_object_loads_total", fn) == 1
    assert metric(metrics, "wbpf_probe_object_unloads_total", fn) == 1
    assert metric(metrics, "wbpf_probe_object_load_max_seconds", fn) > 0
    assert metric(metrics, "wbpf_probe_object_unload_last_seconds", fn) > 0
    sc = 'detector_type="syscall_latency"'
    assert metric(metrics, "wbpf_probe_object_loads_total", sc) == 1, "never reloaded"
    assert metric(metrics, "wbpf_probe_reloads_total", 'result="applied"') == 2
    assert metric(metrics, "wbpf_probe_reloads_total", 'result="rejected"') == 1
    assert metric(metrics, "wbpf_probe_events_lost_total") == 0

    # The syscall detector kept running through every reload: all three slow calls arrived.
    assert wait_for(lambda: syscall_triggers(gateway) == 3, timeout=15), gateway.exported()
    assert proc.poll() is None


def test_doctor_names_every_detector_type_and_its_status():
    result = subprocess.run(
        [str(BIN_DIR / "wbpf"), "doctor"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for detector_type in DETECTOR_TYPES:
        assert f"  {detector_type} ({detector_type}): ready" in lines, result.stdout
    assert "  kernel BTF (/sys/kernel/btf/vmlinux): yes" in lines
    assert "  program type raw_tracepoint: yes" in lines


def test_doctor_says_why_a_configured_detector_cannot_run(tmp_path):
    config = tmp_path / "probe.yaml"
    workload = BIN_DIR / "wbpf-workload"
    config.write_text(
        f"""
probe:
  detectors:
    - {{type: syscall_latency, name: sc, threshold: 20ms, comms: [x]}}
    - {{type: function_latency, name: gone, binary: {tmp_path}/missing, symbol: f,
       threshold: 1ms}}
    - {{type: function_latency, name: typo, binary: {workload}, symbol: wbpf_pool_acces,
       threshold: 1ms}}
    - {{type: function_latency, name: pool, binary: {workload}, symbol: wbpf_pool_access,
       threshold: 1ms}}
"""
    )
    result = subprocess.run(
        [str(BIN_DIR / "wbpf"), "doctor", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "  sc (syscall_latency): ready" in result.stdout
    assert (
        f"  gone (function_latency): cannot run: {tmp_path}/missing (uprobe target) does not exist"
        in result.stdout
    )
    assert (
        f"  typo (function_latency): cannot run: {workload} (uprobe target) defines no symbol "
        "wbpf_pool_acces" in result.stdout
    )
    assert "  pool (function_latency): ready" in result.stdout
    assert "some detectors cannot run here" in result.stderr
