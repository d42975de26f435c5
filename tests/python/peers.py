"""The real peers wBPF is checked against, built by bench/peers/build.sh: Jaeger and an
OpenTelemetry Collector with tail sampling. Plus a small OTLP/HTTP sink for the Collector."""

import gzip
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from processes import LoggedProcess, free_port

PEERS_DIR = Path(os.environ.get("WBPF_PEERS_DIR", "/var/tmp/wbpf-peers"))
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "peers" / "build.sh"
JAEGER_CONFIG = BUILD_SCRIPT.parent / "jaeger" / "memstore.yaml"


def peer_binary(name: str) -> Path:
    """The built peer `name`; fails the test (never skips it) when it has not been built."""
    path = PEERS_DIR / "bin" / name
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"peer binary {path} is missing: run `bash {BUILD_SCRIPT}` "
            "(scripts/setup.sh does) or point WBPF_PEERS_DIR at its cache",
            pytrace=False,
        )
    return path


class PeerProcess(LoggedProcess):
    """A peer started with a YAML config in a test's temporary directory."""

    def __init__(self, tmp: Path, name: str, binary: Path, config: str, ports: list[int]):
        self.config_path = tmp / f"{name}.yaml"
        self.config_path.write_text(config)
        command = [str(binary), "--config", str(self.config_path)]
        super().__init__(tmp, name, command, ports, timeout=60)


class Jaeger(PeerProcess):
    """Jaeger v2 all-in-one with in-memory storage: OTLP/gRPC in, the query API out."""

    def __init__(self, tmp: Path):
        self.otlp_grpc_port = free_port()
        self.query_port = free_port()
        config = JAEGER_CONFIG.read_text().format(
            otlp_grpc=self.otlp_grpc_port, query_http=self.query_port, query_grpc=free_port()
        )
        ports = [self.otlp_grpc_port, self.query_port]
        super().__init__(tmp, "jaeger", peer_binary("jaeger"), config, ports)

    @property
    def otlp_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.otlp_grpc_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"


class OtlpSink:
    """An OTLP/HTTP receiver that records the trace ids of every protobuf request per path."""

    def __init__(self):
        self.lock = threading.Lock()
        self.trace_ids: dict[str, set[str]] = {}
        self.spans: dict[str, int] = {}
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse their connections

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                sink.record(self.path, request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256  # many exporters connect at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def record(self, path: str, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            ids = self.trace_ids.setdefault(path, set())
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        ids.add(span.trace_id.hex())
                        self.spans[path] = self.spans.get(path, 0) + 1

    def kept(self, path: str) -> set[str]:
        with self.lock:
            return set(self.trace_ids.get(path, set()))

    def span_count(self, path: str) -> int:
        with self.lock:
            return self.spans.get(path, 0)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
