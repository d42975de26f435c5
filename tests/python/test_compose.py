"""docker-compose.yml is valid for a real compose implementation and wires the stack as the
README describes."""

import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_valid_for_docker_compose():
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) == {"jaeger", "gateway", "probe", "workload"}

    probe = services["probe"]
    assert "privileged" not in probe, "the probe gets capabilities, not privileged mode"
    assert probe["cap_drop"] == ["ALL"]
    assert sorted(probe["cap_add"]) == ["BPF", "PERFMON", "SYS_ADMIN"]
    assert probe["pid"] == "host"
    mounts = " ".join(str(v) for v in probe["volumes"])
    for path in ("/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/bpf"):
        assert path in mounts, path

    assert any("16686" in str(p) for p in services["jaeger"]["ports"])
    for name in ("gateway", "probe", "workload"):
        assert services[name]["build"]["target"] == name


def test_compose_config_exports_to_jaeger_and_validates():
    config = yaml.safe_load((ROOT / "deploy/compose-config.yaml").read_text())
    assert config["exporters"]["otlp"]["endpoint"] == "http://jaeger:4317"
    assert config["probe"]["gateway"] == "http://gateway:4317"

    from conftest import BIN_DIR

    result = subprocess.run(
        [str(BIN_DIR / "wbpf"), "validate", str(ROOT / "deploy/compose-config.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
