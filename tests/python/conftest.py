"""Fixtures that run the real `wbpf gateway` binary on loopback ports."""

import json
import time
from pathlib import Path

import pytest
from processes import BIN_DIR, LoggedProcess, free_port

EXPORT_FILE = "exported.jsonl"


def yaml_lines(text: str) -> str:
    """`text` with every line ending in a newline, so that it can precede the next key."""
    return "".join(f"{line}\n" for line in text.splitlines())


class LoopbackGateway(LoggedProcess):
    """`wbpf gateway` on free loopback ports, with its config, storage, export file and logs in
    `tmp`; `kill` and `start` restart it on the same ports and storage."""

    def __init__(
        self,
        tmp: Path,
        retention: str,
        receivers: str = "",
        admin: str = "",
        sampling: dict | None = None,
        exporters: str = "",
    ):
        """`receivers`, `admin` and `exporters` are YAML lines (indented two spaces) added to
        those sections; `sampling` is merged into the config's `sampling:` block."""
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.admin_port = free_port()
        self.export_path = tmp / EXPORT_FILE
        self.config_path = tmp / "gateway.yaml"
        self.config_path.write_text(
            f"""
receivers:
  grpc: 127.0.0.1:{self.grpc_port}
  http: 127.0.0.1:{self.http_port}
{yaml_lines(receivers)}admin:
  listen: 127.0.0.1:{self.admin_port}
{yaml_lines(admin)}storage:
  path: {tmp / "rocksdb"}
  retention: {retention}
sampling: {json.dumps({"sweep_interval": "100ms", **(sampling or {})})}
exporters:
{yaml_lines(exporters)}"""
        )
        command = [str(BIN_DIR / "wbpf"), "gateway", "--config", str(self.config_path)]
        super().__init__(tmp, "gateway", command, [self.grpc_port, self.http_port])

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


class Gateway(LoopbackGateway):
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
        exporters = f"  file:\n    path: {tmp / EXPORT_FILE}\n"
        if otlp_endpoint:
            exporters += f"  otlp:\n    endpoint: {otlp_endpoint}\n"
        super().__init__(
            tmp,
            retention,
            receivers=extra["receivers"],
            admin=extra["admin"],
            sampling=sampling,
            exporters=exporters,
        )


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
