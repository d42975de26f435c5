"""Overload: offered load far above what the gateway commits yields backpressure (HTTP 503 with
`Retry-After`), which the real OpenTelemetry SDK exporter retries until its spans are in, while
the gateway's memory stays bounded."""

import threading
import time
import urllib.error
import urllib.request

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conftest import wait_for
from durability import GatewayProcess, trace_request

IN_FLIGHT = 1024 * 1024
# Far above what the gateway needs for this load; what grows without a bound is what matters.
RSS_BOUND_MIB = 400


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


class Flood:
    """Threads posting ~600 KB OTLP requests back to back, recording the answers."""

    def __init__(self, url: str, threads: int):
        self.url = url
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.statuses: dict[int, int] = {}
        self.retry_after: set[str] = set()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]

    def run(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            trace_id = bytes([n + 1]) * 8 + i.to_bytes(8, "big")
            spans = [(bytes([n + 1]) + i.to_bytes(4, "big") + bytes([k + 1, 0, 1]), False)
                     for k in range(20)]
            body = trace_request(trace_id, spans, padding=30_000)
            request = urllib.request.Request(
                self.url, data=body, headers={"Content-Type": "application/x-protobuf"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as err:
                status = err.code
                if err.headers.get("Retry-After"):
                    with self.lock:
                        self.retry_after.add(err.headers["Retry-After"])
            except OSError:
                status = 0
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            i += 1

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def test_overload_is_pushed_back_and_the_sdk_exporter_retries_until_accepted(tmp_path):
    gateway = GatewayProcess(
        tmp_path,
        f"  file:\n    path: {tmp_path / 'exported.jsonl'}\n",
        receivers=f"  max_in_flight_bytes: {IN_FLIGHT}",
    )
    exporter = OTLPSpanExporter(endpoint=gateway.http_url, timeout=30)
    try:
        with Flood(gateway.http_url, threads=16) as flood:
            time.sleep(1.0)
            provider = TracerProvider(resource=Resource.create({"service.name": "patient"}))
            spans = InMemorySpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(spans))
            tracer = provider.get_tracer("overload-test")
            with tracer.start_as_current_span("checkout") as root:
                for k in range(50):
                    pad = {"pad": "x" * 20_000}
                    with tracer.start_as_current_span(f"step {k}", attributes=pad):
                        pass
                with tracer.start_as_current_span("probe", attributes={"wbpf.trigger": True}):
                    pass
            result = exporter.export(spans.get_finished_spans())
            time.sleep(1.0)

        refused = flood.statuses.get(503, 0)
        assert refused > 0, f"no backpressure under overload: {flood.statuses}"
        assert flood.retry_after == {"1"}, flood.retry_after
        assert flood.statuses.get(200, 0) > 0, flood.statuses
        assert result == SpanExportResult.SUCCESS, "the SDK exporter gave up"
        peak = peak_rss_mib(gateway.proc.pid)
        print(f"answers {flood.statuses}, gateway peak RSS {peak:.0f} MiB")
        assert peak < RSS_BOUND_MIB

        trace_id = f"{root.get_span_context().trace_id:032x}"
        expected = {f"{s.context.span_id:016x}" for s in spans.get_finished_spans()}
        assert wait_for(lambda: expected <= set(gateway.exported_span_ids()), timeout=15), (
            f"the retried spans of {trace_id} were not all kept"
        )
    finally:
        exporter.shutdown()
        gateway.stop()
