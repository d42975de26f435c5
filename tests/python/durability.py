"""Pieces for the durability tests: a gateway process that can be killed and restarted on the
same RocksDB directory and ports, an OTLP/gRPC sink that can be stopped, and OTLP requests
built with the OpenTelemetry protobuf classes."""

import threading
from concurrent import futures
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from conftest import LoopbackGateway

RETRY = "  retry: {initial_interval: 50ms, max_interval: 500ms}\n"


class GatewayProcess(LoopbackGateway):
    """`wbpf gateway` whose exporters retry quickly, on fixed ports and one storage directory
    across kills and restarts."""

    def __init__(self, tmp: Path, exporters: str, retention: str = "60s", receivers: str = ""):
        """`exporters` and `receivers` are YAML lines (indented two spaces) added to those
        sections."""
        super().__init__(tmp, retention, receivers=receivers, exporters=RETRY + exporters)

    def exported_span_ids(self) -> list[str]:
        """Every exported span id (hex), repeats included, from the file exporter."""
        return [span["spanId"] for _, _, span in self.exported()]


class GrpcSink:
    """An OTLP/gRPC receiver that records span ids, and can be stopped and started again on
    the same port."""

    def __init__(self, port: int, options: list | None = None):
        self.port = port
        self.options = options or []
        self.lock = threading.Lock()
        self.span_ids: list[str] = []
        self.server = None

    def start(self) -> None:
        sink = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):
                with sink.lock:
                    for rs in request.resource_spans:
                        for ss in rs.scope_spans:
                            sink.span_ids.extend(s.span_id.hex() for s in ss.spans)
                return trace_service_pb2.ExportTraceServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=self.options)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self.server)
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=None).wait()
            self.server = None

    def received(self) -> list[str]:
        with self.lock:
            return list(self.span_ids)


def trace_request(trace_id: bytes, spans: list[tuple[bytes, bool]], padding: int = 0) -> bytes:
    """An encoded OTLP request with one resource and the given (span id, is trigger) spans,
    each span carrying `padding` bytes of attribute value."""
    out = []
    for span_id, trigger in spans:
        attributes = [KeyValue(key="payload", value=AnyValue(string_value="x" * padding))]
        if trigger:
            attributes.append(KeyValue(key="wbpf.trigger", value=AnyValue(bool_value=True)))
        out.append(
            Span(
                trace_id=trace_id,
                span_id=span_id,
                name="wbpf.trigger crash-test" if trigger else "work",
                start_time_unix_nano=1_700_000_000_000_000_000,
                end_time_unix_nano=1_700_000_000_001_000_000,
                attributes=attributes,
            )
        )
    resource = Resource(
        attributes=[KeyValue(key="service.name", value=AnyValue(string_value="crash-test"))]
    )
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=out)])]
    )
    return request.SerializeToString()
