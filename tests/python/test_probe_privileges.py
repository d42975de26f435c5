"""`wbpf probe` with only the Linux capabilities its detectors need, on the real kernel.

The probe runs as the unprivileged user `nobody` (65534) with chosen ambient capabilities,
set by `setpriv` (util-linux). Needs root to hand out the capabilities; without root or
`setpriv` the tests fail and say so rather than pass.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import BIN_DIR, Gateway, wait_for

TARGET = BIN_DIR / "wbpf-probe-target"
NOBODY = 65534
# The README's table: what each detector needs when running as a user other than root.
FUNCTION_LATENCY = ["bpf", "perfmon", "sys_admin"]
MEMORY_PRESSURE = ["bpf", "perfmon", "dac_read_search"]
POOL_FAULTS = ["bpf", "perfmon", "dac_read_search", "sys_ptrace"]
CAP_BITS = {"dac_read_search": 2, "sys_ptrace": 19, "sys_admin": 21, "perfmon": 38, "bpf": 39}


@pytest.fixture(autouse=True)
def can_hand_out_capabilities():
    if os.geteuid() != 0:
        pytest.fail("these tests need root to start the probe with chosen capabilities")
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is not installed; scripts/setup.sh installs it")


@pytest.fixture
def shared_dir():
    """A directory `nobody` can read config files from (pytest's tmp_path is private)."""
    path = Path(tempfile.mkdtemp(prefix="wbpf-caps-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def write_config(directory: Path, gateway: str, detector: str, strict: bool) -> Path:
    config = directory / "probe.yaml"
    config.write_text(
        f"""
probe:
  gateway: {gateway}
  admin: null
  strict_privileges: {str(strict).lower()}
  detectors:
    - {detector}
"""
    )
    config.chmod(0o644)
    return config


def function_detector() -> str:
    return (
        f"{{type: function_latency, name: caps-function, binary: {TARGET}, "
        "symbol: wbpf_test_work, threshold: 20ms}"
    )


def as_nobody(capabilities: list, command: list) -> list:
    caps = ",".join(f"+{cap}" for cap in capabilities)
    return [
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        f"--inh-caps=-all{',' + caps if caps else ''}",
        f"--ambient-caps=-all{',' + caps if caps else ''}",
        *command,
    ]


def probe_command(config: Path) -> list:
    return [str(BIN_DIR / "wbpf"), "probe", "--config", str(config)]


def start_failure(command: list) -> str:
    """Runs a probe expected to refuse to start; returns its output."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"the probe started:\n{output}"
    return output


def status_field(pid: int, key: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{key} not in /proc/{pid}/status")


def test_a_user_with_only_the_documented_capabilities_runs_function_latency(
    shared_dir, gateway: Gateway
):
    config = write_config(shared_dir, gateway.grpc_endpoint, function_detector(), strict=True)
    log_path = shared_dir / "probe.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            as_nobody(FUNCTION_LATENCY, probe_command(config)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        started = wait_for(
            lambda: proc.poll() is not None or "node probe started" in log_path.read_text(),
            timeout=60,
        )
        assert started and proc.poll() is None, log_path.read_text()
        expected = sum(1 << CAP_BITS[cap] for cap in FUNCTION_LATENCY)
        assert int(status_field(proc.pid, "CapEff"), 16) == expected
        assert status_field(proc.pid, "Uid").split() == [str(NOBODY)] * 4

        subprocess.run([str(TARGET), "none", "00f067aa0ba902b7", "60"], check=True, timeout=30)

        def triggers():
            return [
                span
                for _, _, span in gateway.exported()
                if any(
                    a["key"] == "wbpf.detector.name"
                    and a["value"].get("stringValue") == "caps-function"
                    for a in span.get("attributes", [])
                )
            ]

        assert wait_for(triggers, timeout=20), log_path.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0, log_path.read_text()


@pytest.mark.parametrize(
    "detector, capabilities, dropped",
    [
        ("function", FUNCTION_LATENCY, "sys_admin"),
        ("memory", MEMORY_PRESSURE, "bpf"),
        ("memory", MEMORY_PRESSURE, "perfmon"),
        ("memory", MEMORY_PRESSURE, "dac_read_search"),
        ("faults", POOL_FAULTS, "sys_ptrace"),
    ],
)
def test_without_one_needed_capability_the_probe_names_it_and_the_detector(
    shared_dir, detector, capabilities, dropped
):
    detectors = {
        "function": (function_detector(), "caps-function (function_latency)"),
        "memory": ("{type: memory_pressure, name: caps-memory}", "caps-memory (memory_pressure)"),
        "faults": (
            "{type: pool_faults, name: caps-faults, paths: [/dev/shm/wbpf-caps-], max_faults: 5}",
            "caps-faults (pool_faults)",
        ),
    }
    yaml, named = detectors[detector]
    config = write_config(shared_dir, "http://127.0.0.1:9", yaml, strict=False)
    kept = [cap for cap in capabilities if cap != dropped]

    output = start_failure(as_nobody(kept, probe_command(config)))

    assert f"{named}: needs CAP_{dropped.upper()} " in output, output


def test_strict_mode_refuses_full_root_and_lists_the_extra_capabilities(shared_dir):
    config = write_config(shared_dir, "http://127.0.0.1:9", function_detector(), strict=True)

    output = start_failure(probe_command(config))

    assert "strict_privileges: the probe holds capabilities its detectors do not need" in output
    extra = output.split("do not need: ", 1)[1].split(";", 1)[0].split(", ")
    for cap in ["CAP_DAC_OVERRIDE", "CAP_SETUID", "CAP_NET_ADMIN", "CAP_SYS_PTRACE"]:
        assert cap in extra, output
    for cap in ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"]:
        assert cap not in extra, output
    assert "AmbientCapabilities=CAP_SYS_ADMIN CAP_PERFMON CAP_BPF" in output, output
    assert "--ambient-caps=-all,+sys_admin,+perfmon,+bpf" in output, output


def test_doctor_shows_per_detector_which_capabilities_are_held_and_missing():
    doctor = [str(BIN_DIR / "wbpf"), "doctor"]
    result = subprocess.run(
        as_nobody(["bpf", "perfmon"], doctor), capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "capabilities (held: CAP_PERFMON, CAP_BPF):" in lines, result.stdout
    expected = [
        "  syscall_latency (syscall_latency): CAP_BPF held, CAP_PERFMON held",
        "  memory_pressure (memory_pressure): CAP_BPF held, CAP_PERFMON held, "
        "CAP_DAC_READ_SEARCH missing",
        "  function_latency (function_latency): CAP_BPF held, CAP_PERFMON held, "
        "CAP_SYS_ADMIN missing",
        "  syscall_latency (syscall_latency): ready",
    ]
    for line in expected:
        assert line in lines, result.stdout
