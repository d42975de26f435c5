"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

OTLP seeds are requests built with the opentelemetry-proto package (tests/python/otlp_payloads),
written as protobuf for `otlp_protobuf` and as OTLP/JSON for `otlp_json`: valid ones of every
shape the gateway handles (triggers, every attribute value type, events, links, tracestate,
several resources and scopes) and a few the validation rejects or repairs. Config seeds are
the YAML files of the repository and the YAML blocks of the README.

Run from the repository root: python3 fuzz/seed_corpus.py
"""

import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "python"))

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: E402
from opentelemetry.proto.common.v1 import common_pb2  # noqa: E402
from opentelemetry.proto.trace.v1 import trace_pb2  # noqa: E402
from otlp_payloads import (  # noqa: E402
    START,
    attribute,
    nested,
    new_span_id,
    new_trace_id,
    otlp_json,
    request,
    span,
    trigger,
)

CORPUS = ROOT / "fuzz" / "corpus"
AnyValue = common_pb2.AnyValue


def every_value_type() -> list:
    kvlist = common_pb2.KeyValueList(values=[attribute("k", AnyValue(int_value=1))])
    array = common_pb2.ArrayValue(values=[AnyValue(string_value="a"), AnyValue(bool_value=False)])
    return [
        attribute("http.route", AnyValue(string_value="/checkout")),
        attribute("http.status_code", AnyValue(int_value=503)),
        attribute("ratio", AnyValue(double_value=0.25)),
        attribute("internal", AnyValue(bool_value=True)),
        attribute("blob", AnyValue(bytes_value=b"\x00\xff")),
        attribute("list", AnyValue(array_value=array)),
        attribute("map", AnyValue(kvlist_value=kvlist)),
    ]


def requests() -> dict:
    """Seed requests by name."""
    a, b = new_trace_id(), new_trace_id()
    root = span(a)
    child = span(a, root.span_id, name="SELECT item", kind=trace_pb2.Span.SPAN_KIND_CLIENT)
    error = span(b, status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR))
    rich = span(
        a,
        root.span_id,
        attributes=every_value_type(),
        trace_state="ot=th:c;rv:02468ace13579b,vendor=x",
        flags=0x101,
        events=[trace_pb2.Span.Event(time_unix_nano=START, name="retry", attributes=[
            attribute("attempt", AnyValue(int_value=2)),
        ])],
        links=[trace_pb2.Span.Link(trace_id=b, span_id=error.span_id, trace_state="k=v")],
    )
    two_resources = request(root, child)
    two_resources.resource_spans.append(request(error).resource_spans[0])
    two_resources.resource_spans[1].scope_spans.append(
        trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name="db", version="1"),
                             spans=[span(b, error.span_id)]),
    )
    return {
        "one_trace": request(root, child),
        "two_resources": two_resources,
        "trigger": request(span(a), trigger(a, root.span_id)),
        "every_value_type": request(rich),
        "tracestate_head": request(span(new_trace_id(), trace_state="ot=th:8")),
        "bad_ids": request(
            span(a, span_id=b"\x00" * 8), span(a, parent=b"\x01\x02"), span(b"\x00" * 16), span(a)
        ),
        "end_before_start": request(span(a, end_time_unix_nano=START - 1)),
        "too_deep": request(span(a, attributes=[attribute("deep", nested(17, "kvlist"))])),
        "empty": trace_service_pb2.ExportTraceServiceRequest(),
        # Regressions: a profiles string table index, a double the JSON parser rounded, and
        # doubles OTLP/JSON wrote as null.
        "profiles_string_index": request(span(a, attributes=[
            common_pb2.KeyValue(key="k", key_strindex=2, value=AnyValue(string_value_strindex=3)),
        ])),
        "exact_double": request(span(a, attributes=[
            attribute("ratio", AnyValue(double_value=1.3552527156068805e-20)),
        ])),
        "non_finite_doubles": request(span(a, attributes=[
            attribute("nan", AnyValue(double_value=float("nan"))),
            attribute("up", AnyValue(double_value=float("inf"))),
        ])),
        "trigger_string": request(span(
            a, attributes=[attribute("wbpf.trigger", AnyValue(string_value="TRUE"))],
            parent=new_span_id(),
        )),
    }


def write_otlp() -> None:
    for target, suffix in (("otlp_protobuf", "pb"), ("otlp_json", "json")):
        (CORPUS / target).mkdir(parents=True, exist_ok=True)
    for name, message in requests().items():
        (CORPUS / "otlp_protobuf" / f"{name}.pb").write_bytes(message.SerializeToString())
        body = json.dumps(otlp_json(message), separators=(",", ":"))
        (CORPUS / "otlp_json" / f"{name}.json").write_text(body)


def write_config() -> None:
    out = CORPUS / "config_yaml"
    out.mkdir(parents=True, exist_ok=True)
    for path in [*sorted((ROOT / "config/tests/fixtures").glob("*.yaml")),
                 ROOT / "deploy/compose-config.yaml"]:
        shutil.copy(path, out / path.name)
    readme = (ROOT / "README.md").read_text()
    for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", readme, re.S)):
        (out / f"readme_{i:02}.yaml").write_text(block)


if __name__ == "__main__":
    write_otlp()
    write_config()
