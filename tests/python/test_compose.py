"""docker-compose.yml is valid for a real compose implementation and wires the stack as the
README describes."""

import json
import re
import subprocess
import tomllib
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
    # SYS_ADMIN implies BPF and PERFMON; Docker 20.10 refuses to add those two by name.
    assert probe["cap_add"] == ["SYS_ADMIN"]
    assert probe["pid"] == "host"
    mounts = " ".join(str(v) for v in probe["volumes"])
    for path in ("/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/bpf"):
        assert path in mounts, path

    assert any("16686" in str(p) for p in services["jaeger"]["ports"])
    # The gateway in the stack asks for no credentials: nothing is published beyond loopback.
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert len(published) == 3, published
    for port in published:
        assert "127.0.0.1" in str(port), f"{port} is published on every interface"
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


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2])


def test_compose_build_image_has_the_rust_the_locked_crates_need():
    """The image's build stage uses the workspace's `rust-version`, and no crate in Cargo.lock
    needs a newer rustc: cargo refuses to build one that does."""
    rust_version = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"][
        "rust-version"
    ]
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    image = re.search(r"^FROM rust:(\d+\.\d+)-\S+ AS build$", dockerfile, re.MULTILINE)
    assert image, "deploy/Dockerfile builds FROM rust:<version>-<debian release>"
    assert version(image.group(1)) == version(rust_version)

    host = subprocess.run(
        ["rustc", "--print", "host-tuple"], capture_output=True, text=True, check=True
    ).stdout.strip()
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked",
             "--filter-platform", host],
            capture_output=True, text=True, check=True, cwd=ROOT,
        ).stdout
    )
    built = {node["id"] for node in metadata["resolve"]["nodes"]}
    too_new = [
        f"{package['name']} {package['version']} needs rustc {package['rust_version']}"
        for package in metadata["packages"]
        if package["id"] in built
        and package.get("rust_version")
        and version(package["rust_version"]) > version(rust_version)
    ]
    assert not too_new, f"rust-version is {rust_version}, but " + "; ".join(too_new)
