"""OTLP trace requests built with the opentelemetry-proto package, and their OTLP/JSON form."""

import base64
import itertools

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

START = 1_700_000_000_000_000_000
_ids = itertools.count(1)


def new_trace_id() -> bytes:
    """A trace id no other call returns."""
    return (0x5EED << 64 | next(_ids)).to_bytes(16, "big")


def new_span_id() -> bytes:
    return (0xC0DE << 32 | next(_ids)).to_bytes(8, "big")


def span(trace: bytes, parent: bytes = b"", **fields) -> trace_pb2.Span:
    """A server span of 100 ms in `trace`; `fields` override any Span field."""
    values = {
        "trace_id": trace,
        "span_id": new_span_id(),
        "parent_span_id": parent,
        "name": "GET /item",
        "kind": trace_pb2.Span.SPAN_KIND_SERVER,
        "start_time_unix_nano": START,
        "end_time_unix_nano": START + 100_000_000,
        **fields,
    }
    return trace_pb2.Span(**values)


def trigger(trace_id: bytes, parent: bytes) -> trace_pb2.Span:
    """A trigger span, as a node probe sends it: its trace is released at once."""
    return span(
        trace_id,
        parent,
        name="wbpf.trigger test",
        attributes=[attribute("wbpf.trigger", common_pb2.AnyValue(bool_value=True))],
    )


def attribute(key: str, value: common_pb2.AnyValue) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=value)


def nested(levels: int, kind: str = "array") -> common_pb2.AnyValue:
    """A value `levels` deep: an int inside arrays (or key-value lists)."""
    value = common_pb2.AnyValue()
    fill_nested(value, levels, kind)
    return value


def fill_nested(value: common_pb2.AnyValue, levels: int, kind: str) -> None:
    """Makes `value` `levels` deep in place: the protobuf package refuses to copy a message
    nested more than 100 deep, and the gateway has to refuse such messages itself."""
    for _ in range(levels - 1):
        if kind == "array":
            value = value.array_value.values.add()
        else:
            value = value.kvlist_value.values.add(key="k").value
    value.int_value = 1


def request(*spans: trace_pb2.Span, resource_attributes=()):
    """One resource and one scope holding `spans`."""
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource_pb2.Resource(
                    attributes=[
                        attribute("service.name", common_pb2.AnyValue(string_value="shop")),
                        *resource_attributes,
                    ]
                ),
                scope_spans=[
                    trace_pb2.ScopeSpans(
                        scope=common_pb2.InstrumentationScope(name="malformed"), spans=spans
                    )
                ],
            )
        ]
    )


def otlp_json(message) -> dict:
    """`message` in OTLP/JSON: lowerCamelCase keys, integer enums and hex ids."""
    body = json_format.MessageToDict(message, use_integers_for_enums=True)
    for resource_spans in body.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for s in scope_spans.get("spans", []):
                _hex_ids(s)
                for link in s.get("links", []):
                    _hex_ids(link)
    return body


def _hex_ids(obj: dict) -> None:
    for key in ("traceId", "spanId", "parentSpanId"):
        if key in obj:
            obj[key] = base64.b64decode(obj[key]).hex()
