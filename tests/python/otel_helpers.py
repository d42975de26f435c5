"""Helpers around the real OpenTelemetry Python SDK: providers, trigger spans, normalisation."""

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags


def provider(gateway, protocol: str, service: str):
    """A tracer provider exporting to the gateway over `protocol`, remembering what it sent."""
    resource = Resource.create(
        {"service.name": service, "deployment.environment": "test", "service.instance.id": "i-1"}
    )
    sent = InMemorySpanExporter()
    if protocol == "grpc":
        exporter = GrpcSpanExporter(endpoint=gateway.grpc_endpoint, insecure=True)
    else:
        exporter = HttpSpanExporter(endpoint=gateway.http_url)
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(SimpleSpanProcessor(sent))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp, sent


def make_trace(tracer, n: int):
    """A small trace with children, events, a link, a status and typed attributes."""
    with tracer.start_as_current_span(
        f"GET /item/{n}", kind=trace.SpanKind.SERVER, attributes={"http.route": "/item/{id}"}
    ) as root:
        root.set_attribute("item.id", n)
        root.set_attribute("ratio", n / 7)
        root.set_attribute("cached", n % 2 == 0)
        root.set_attribute("tags", ["a", "b", str(n)])
        link = SpanContext(
            trace_id=0x1234 + n, span_id=0x99, is_remote=True, trace_flags=TraceFlags(1)
        )
        with tracer.start_as_current_span(
            "db.query", kind=trace.SpanKind.CLIENT, links=[trace.Link(link, {"why": "batch"})]
        ) as child:
            child.add_event("rows", {"count": n})
            with tracer.start_as_current_span("decode") as leaf:
                if n % 3 == 0:
                    leaf.set_status(trace.Status(trace.StatusCode.ERROR, "bad row"))
                else:
                    leaf.set_status(trace.Status(trace.StatusCode.OK))
        return root.get_span_context()


def send_trigger(tracer, trace_id: int, parent_span_id: int, detector: str = "test"):
    """A trigger span inside the given trace, as a node probe would send it."""
    parent = SpanContext(
        trace_id=trace_id,
        span_id=parent_span_id,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    ctx = trace.set_span_in_context(NonRecordingSpan(parent))
    span = tracer.start_span(
        f"wbpf.trigger {detector}",
        context=ctx,
        attributes={"wbpf.trigger": True, "wbpf.detector": detector},
    )
    span.end()
    return span.get_span_context().span_id


def _value(v):
    if isinstance(v, (list, tuple)):
        return tuple(_value(x) for x in v)
    return v


def _json_value(v):
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return tuple(_json_value(x) for x in v["arrayValue"].get("values", []))
    raise AssertionError(f"unexpected attribute value {v}")


def _json_attrs(attrs):
    return {a["key"]: _json_value(a.get("value", {})) for a in attrs or []}


def normalise_sent(span):
    """A ReadableSpan from the SDK, as comparable plain data."""
    return {
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent": f"{span.parent.span_id:016x}" if span.parent else "",
        "name": span.name,
        "kind": span.kind.value + 1,
        "start": span.start_time,
        "end": span.end_time,
        "attributes": {k: _value(v) for k, v in span.attributes.items()},
        "events": [(e.name, e.timestamp, {k: _value(v) for k, v in e.attributes.items()})
                   for e in span.events],
        "links": [(f"{l.context.trace_id:032x}", f"{l.context.span_id:016x}",
                   {k: _value(v) for k, v in l.attributes.items()}) for l in span.links],
        "status": (span.status.status_code.value, span.status.description or ""),
        "resource": {k: _value(v) for k, v in span.resource.attributes.items()},
        "scope": span.instrumentation_scope.name,
    }


def normalise_exported(resource, scope, span):
    """A span from the gateway's OTLP/JSON export, as comparable plain data."""
    status = span.get("status", {})
    return {
        "trace_id": span["traceId"],
        "span_id": span["spanId"],
        "parent": span.get("parentSpanId", ""),
        "name": span["name"],
        "kind": span.get("kind", 0),
        "start": int(span["startTimeUnixNano"]),
        "end": int(span["endTimeUnixNano"]),
        "attributes": _json_attrs(span.get("attributes")),
        "events": [(e["name"], int(e["timeUnixNano"]), _json_attrs(e.get("attributes")))
                   for e in span.get("events", [])],
        "links": [(l["traceId"], l["spanId"], _json_attrs(l.get("attributes")))
                  for l in span.get("links", [])],
        "status": (status.get("code", 0), status.get("message", "")),
        "resource": _json_attrs(resource.get("attributes")),
        "scope": scope.get("name", ""),
    }
