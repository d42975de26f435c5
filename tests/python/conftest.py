"""Fixtures that run the real `wbpf gateway` binary on loopback ports."""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

BIN_DIR = Path(os.environ.get("WBPF_BIN_DIR", "/var/tmp/wbpf-target/release"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"gateway did not listen on {port}")


class Gateway:
    """A running gateway with a file exporter; `exported()` reads back what it released."""

    def __init__(
        self,
        tmp: Path,
        retention: str,
        sampling: dict | None = None,
        otlp_endpoint: str | None = None,
        security: dict | None = None,
    ):
        """`sampling` is merged into the config's `sampling:` block; `otlp_endpoint` adds an
        OTLP/gRPC exporter next to the file exporter; `security` maps `receivers` and `admin`
        to keys added to those blocks (`auth`, `tls`)."""
        extra = {section: "".join(f"  {key}: {json.dumps(value)}\n" for key, value in
                                  (security or {}).get(section, {}).items())
                 for section in ("receivers", "admin")}
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.admin_port = free_port()
        self.export_path = tmp / "exported.jsonl"
        self.config_path = tmp / "gateway.yaml"
        self.config_path.write_text(
            f"""
receivers:
  grpc: 127.0.0.1:{self.grpc_port}
  http: 127.0.0.1:{self.http_port}
{extra["receivers"]}admin:
  listen: 127.0.0.1:{self.admin_port}
{extra["admin"]}storage:
  path: {tmp / "rocksdb"}
  retention: {retention}
sampling: {json.dumps({"sweep_interval": "100ms", **(sampling or {})})}
exporters:
  file:
    path: {self.export_path}
"""
            + (f"  otlp:\n    endpoint: {otlp_endpoint}\n" if otlp_endpoint else "")
        )
        self.log = open(tmp / "gateway.log", "w")
        self.proc = subprocess.Popen(
            [str(BIN_DIR / "wbpf"), "gateway", "--config", str(self.config_path)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_listening(self.grpc_port, self.proc)
        wait_listening(self.http_port, self.proc)

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1/traces"

    def exported(self) -> list:
        """Every exported span as (resource attributes, scope name, span dict)."""
        spans = []
        if not self.export_path.exists():
            return spans
        # The exporter may be writing while we read: only complete lines count.
        for line in self.export_path.read_text().split("\n")[:-1]:
            request = json.loads(line)
            for rs in request.get("resourceSpans", []):
                resource = rs.get("resource", {})
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        spans.append((resource, ss.get("scope", {}), span))
        return spans

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture
def gateway(tmp_path):
    gw = Gateway(tmp_path, retention="3s")
    yield gw
    gw.stop()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Polls `predicate` until it returns a truthy value; returns that value or the last one."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value
