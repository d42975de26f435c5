"""A table of malformed OTLP inputs over HTTP protobuf, HTTP JSON and gRPC.

Each kind gets its status and a message naming the problem; the gateway keeps serving; the good
spans of a partly bad request are stored and exported (`partial_success` counts the rest); and
what the span limits repair is visible in the exported spans.
"""

import gzip
import http.client
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Callable

import grpc
import pytest
from conftest import Gateway, wait_for
from google.protobuf.message import Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from otlp_payloads import (
    attribute,
    fill_nested,
    nested,
    new_trace_id,
    otlp_json,
    request,
    span,
    trigger,
)

JSON = "application/json"
PROTO = "application/x-protobuf"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LIMIT = 16 * 1024 * 1024  # receivers.max_request_bytes by default
OK, BAD, TOO_LARGE = 200, 400, 413
G = grpc.StatusCode


@dataclass
class Sent:
    """A payload (a protobuf message, an OTLP/JSON dict or raw bytes), and the span ids that
    must and must not be exported."""

    body: object
    kept: tuple = ()
    gone: tuple = ()


@dataclass
class Case:
    id: str
    via: str  # "proto" or "json" (HTTP), or "grpc"
    make: Callable[[], Sent]
    status: object  # HTTP status or gRPC code
    message: str  # part of the error, or of partial_success's message
    rejected: int | None = None  # partial_success.rejected_spans; None: no partial_success
    encoding: str | None = None  # Content-Encoding, or gRPC compression
    content_type: str | None = None
    check: Callable[[dict], None] | None = None  # on the exported spans by span id
    send: Callable | None = None  # instead of an ordinary request


@dataclass
class Outcome:
    status: object
    message: str
    rejected: int | None


# -- payloads --------------------------------------------------------------------------------


def good(*bad_spans_of: Callable[[bytes, bytes], trace_pb2.Span]) -> Callable[[], Sent]:
    """A released trace (a root and a trigger) and, between them, spans to be rejected, each
    made from (trace id, root span id)."""
    return _trace_with(bad_spans_of, kept=False)


def repaired(*spans_of: Callable[[bytes, bytes], trace_pb2.Span]) -> Callable[[], Sent]:
    """As `good`, with spans to be repaired and kept."""
    return _trace_with(spans_of, kept=True)


def _trace_with(spans_of, kept: bool) -> Callable[[], Sent]:
    def make():
        trace = new_trace_id()
        root = span(trace)
        extra = [of(trace, root.span_id) for of in spans_of]
        last = trigger(trace, root.span_id)
        body = request(root, *extra, last)
        if kept:
            return Sent(body, ids([root, *extra, last]))
        return Sent(body, ids([root, last]), ids(extra))

    return make


def ids(spans) -> tuple:
    return tuple(s.span_id for s in spans)


def with_fields(**fields) -> Callable[[bytes, bytes], trace_pb2.Span]:
    return lambda trace, root: span(trace, root, **fields)


def json_edit(edit: Callable[[dict], None]) -> Callable[[], Sent]:
    """A released trace whose middle span, in OTLP/JSON, is changed by `edit`."""

    def make():
        sent = good(with_fields())()
        body = otlp_json(sent.body)
        edit(body["resourceSpans"][0]["scopeSpans"][0]["spans"][1])
        return Sent(body, sent.kept, sent.gone)

    return make


def only(**fields) -> Callable[[], Sent]:
    return lambda: Sent(request(span(new_trace_id(), **fields)))


def raw(data: bytes) -> Callable[[], Sent]:
    return lambda: Sent(data)


def text(data: str) -> Callable[[], Sent]:
    return lambda: Sent(data.encode())


def replaced(old: bytes, new: bytes, **fields) -> Callable[[], Sent]:
    """A one-span request whose encoding has `old` replaced by `new` (to make invalid bytes)."""

    def make():
        data = request(span(new_trace_id(), **fields)).SerializeToString()
        assert data.count(old) == 1
        return Sent(data.replace(old, new))

    return make


def deep(levels: int, kind: str) -> dict:
    return {"attributes": [attribute("deep", nested(levels, kind))]}


def too_deep(levels: int, kind: str) -> Callable[[], Sent]:
    """A one-span request with an attribute `levels` deep, built in place."""

    def make():
        body = request(span(new_trace_id()))
        value = body.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="deep").value
        fill_nested(value, levels, kind)
        return Sent(body)

    return make


def truncated_request() -> Sent:
    return Sent(request(span(new_trace_id())).SerializeToString()[:-7])


def huge() -> bytes:
    """A valid request just over the limit, of which gzip makes a few kilobytes."""
    return request(span(new_trace_id(), name="a" * (LIMIT + 1))).SerializeToString()


def shared_resource() -> Sent:
    """A 256 KiB resource shared by 400 traces: 100 MiB once stored per trace."""
    big = attribute("blob", common_pb2.AnyValue(string_value="x" * (256 * 1024)))
    spans = [span(new_trace_id()) for _ in range(400)]
    return Sent(request(*spans, resource_attributes=[big]))


def json_with(path: list, value) -> Callable[[], Sent]:
    """A released trace with `value` set at `path` inside its middle span."""

    def edit(s):
        target = s
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value

    return json_edit(edit)


def gzipped(make: Callable[[], Sent]) -> Callable[[], Sent]:
    def make_gzipped():
        sent = make()
        return Sent(gzip.compress(sent.body.SerializeToString()), sent.kept, sent.gone)

    return make_gzipped


def two_gzip_members() -> Sent:
    sent = good()()
    data = json.dumps(otlp_json(sent.body)).encode()
    half = len(data) // 2
    return Sent(gzip.compress(data[:half]) + gzip.compress(data[half:]), sent.kept)


def zero_parent() -> Sent:
    trace = new_trace_id()
    root = span(trace, parent=bytes(8))
    kept = (root, trigger(trace, root.span_id))
    return Sent(request(*kept), tuple(s.span_id for s in kept))


# -- checks on exported spans ----------------------------------------------------------------


def clamped_end(spans: dict) -> None:
    ends = [int(s["endTimeUnixNano"]) - int(s["startTimeUnixNano"]) for s in spans.values()]
    assert sorted(ends) == [0, 100_000_000, 100_000_000], spans


def attributes_capped(spans: dict) -> None:
    capped = [s for s in spans.values() if s.get("droppedAttributesCount")]
    assert len(capped) == 1, spans
    assert len(capped[0]["attributes"]) == 1024
    assert capped[0]["droppedAttributesCount"] == 2000 - 1024


def events_capped(spans: dict) -> None:
    capped = [s for s in spans.values() if s.get("droppedEventsCount")]
    assert len(capped) == 1 and len(capped[0]["events"]) == 1024, spans
    assert capped[0]["droppedEventsCount"] == 1100 - 1024


def string_index_cleared(spans: dict) -> None:
    values = [a.get("value") for s in spans.values() for a in s.get("attributes", [])
              if a["key"] == "peer"]
    assert values == [{}], spans


def nan_as_string(spans: dict) -> None:
    values = [a.get("value") for s in spans.values() for a in s.get("attributes", [])
              if a["key"] == "ratio"]
    assert values == [{"stringValue": "NaN"}], spans


def deep_attribute_dropped(spans: dict) -> None:
    for s in spans.values():
        assert "deep" not in {a["key"] for a in s.get("attributes", [])}, s
    assert any(s.get("droppedAttributesCount") == 1 for s in spans.values()), spans


# -- sending ---------------------------------------------------------------------------------


def encode(case: Case, body) -> bytes:
    if isinstance(body, Message):
        body = otlp_json(body) if case.via == "json" else body.SerializeToString()
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    return body


def send_http(gateway, case: Case, body: bytes) -> Outcome:
    content_type = case.content_type or (JSON if case.via == "json" else PROTO)
    return post(gateway, body, content_type, case.encoding)


def post(gateway, body: bytes, content_type: str, encoding: str | None = None) -> Outcome:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.http_port, timeout=30)
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    conn.request("POST", "/v1/traces", body=body, headers=headers)
    return read_http(conn, content_type)


def send_length_only(gateway, case: Case, body: bytes) -> Outcome:
    """Declares a body one byte over the limit and sends none of it."""
    conn = http.client.HTTPConnection("127.0.0.1", gateway.http_port, timeout=30)
    conn.putrequest("POST", "/v1/traces")
    conn.putheader("Content-Type", PROTO)
    conn.putheader("Content-Length", str(LIMIT + 1))
    conn.endheaders()
    return read_http(conn, PROTO)


def read_http(conn: http.client.HTTPConnection, content_type: str) -> Outcome:
    response = conn.getresponse()
    answer, answered = response.read(), response.getheader("Content-Type")
    conn.close()
    if response.status == 415:
        return Outcome(415, json.loads(answer)["message"], None)
    assert answered == content_type
    if response.status != OK:
        if content_type == PROTO:
            return Outcome(response.status, status_pb2.Status.FromString(answer).message, None)
        return Outcome(response.status, json.loads(answer)["message"], None)
    if content_type == PROTO:
        parsed = trace_service_pb2.ExportTraceServiceResponse.FromString(answer)
        if not parsed.HasField("partial_success"):
            return Outcome(OK, "", None)
        partial = parsed.partial_success
        return Outcome(OK, partial.error_message, partial.rejected_spans)
    partial = json.loads(answer).get("partialSuccess")
    if not partial:
        return Outcome(OK, "", None)
    return Outcome(OK, partial.get("errorMessage", ""), int(partial.get("rejectedSpans", 0)))


def send_grpc(gateway, case: Case, body: bytes) -> Outcome:
    compression = grpc.Compression.Gzip if case.encoding == "gzip" else None
    with grpc.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
        export = channel.unary_unary(
            EXPORT,
            request_serializer=lambda data: data,
            response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
        )
        try:
            response = export(body, timeout=30, compression=compression)
        except grpc.RpcError as err:
            return Outcome(err.code(), err.details(), None)
    if not response.HasField("partial_success"):
        return Outcome(G.OK, "", None)
    partial = response.partial_success
    return Outcome(G.OK, partial.error_message, partial.rejected_spans)


def exported(gateway, wanted: set) -> dict | None:
    """The exported spans by span id, once all of `wanted` are among them."""
    spans = {s["spanId"]: s for _, _, s in gateway.exported()}
    return spans if wanted <= spans.keys() else None


def serves(gateway) -> bool:
    """Whether a valid request is still accepted over HTTP and gRPC."""
    body = request(span(new_trace_id()))
    over_http = post(gateway, json.dumps(otlp_json(body)).encode(), JSON)
    probe = Case("probe", "grpc", raw(b""), G.OK, "")
    over_grpc = send_grpc(gateway, probe, body.SerializeToString())
    return (over_http.status, over_grpc.status) == (OK, G.OK) and gateway.alive()


# -- the table -------------------------------------------------------------------------------

GARBAGE = b"\x0a\xff\xff\xff\xff\x0f"  # a field whose length runs past the end
MANY_ATTRIBUTES = [attribute(f"a{i}", common_pb2.AnyValue(int_value=i)) for i in range(2000)]
MANY_EVENTS = [trace_pb2.Span.Event(name="e", time_unix_nano=1) for _ in range(1100)]
# A reference into a profile's string table, which traces do not have.
STRING_INDEX = [attribute("peer", common_pb2.AnyValue(string_value_strindex=4))]
STRING_INDEX_CLEARED = (
    "spans[1].attributes[0].value.stringValueStrindex: a profiles string table index, cleared"
)
NAN = [attribute("ratio", common_pb2.AnyValue(double_value=float("nan")))]
KEY = [attribute("k\u00e9y", common_pb2.AnyValue(int_value=1))]
INT_AS_WORD = [{"key": "n", "value": {"intValue": "twelve"}}]
BYTES_NOT_BASE64 = [{"key": "b", "value": {"bytesValue": "!!!"}}]
LONE_SURROGATE = '{"resourceSpans": [{"schemaUrl": "\\ud800\\u0041"}]}'
JSON_NOT_UTF8 = b'{"resourceSpans": [{"schemaUrl": "\xff"}]}'
SECOND_SPAN = "resourceSpans[0].scopeSpans[0].spans[1]"
REJECTED_FIRST = f"rejected 1 of 3 spans, first at {SECOND_SPAN}"
END_CLAMPED = "endTimeUnixNano: earlier than startTimeUnixNano"

PROTO_CASES = [
    Case("garbage", "proto", raw(GARBAGE), BAD, "invalid OTLP protobuf"),
    Case("truncated", "proto", truncated_request, BAD, "invalid OTLP protobuf"),
    Case(
        "invalid UTF-8 in a name", "proto",
        replaced(b"\xc3\xa9", b"\xff\xfe", name="caf\u00e9"), BAD, "not UTF-8",
    ),
    Case("wrong wire type", "proto", raw(b"\x08\x01"), BAD, "invalid wire type"),
    Case("nesting beyond the decoder", "proto", too_deep(40, "kvlist"), BAD, "nested too deeply"),
    Case(
        "only a short trace id", "proto", only(trace_id=b"\x01" * 4), BAD,
        "rejected 1 of 1 spans, first at resourceSpans[0].scopeSpans[0].spans[0].traceId: "
        "must be 16 bytes (32 hex characters), got 4 bytes",
    ),
    Case(
        "all-zero span id among good", "proto", good(with_fields(span_id=bytes(8))), OK,
        f"{REJECTED_FIRST}.spanId: an all-zero id is invalid", rejected=1,
    ),
    Case(
        "short parent id among good", "proto", good(with_fields(parent_span_id=b"\x01" * 3)),
        OK, f"{REJECTED_FIRST}.parentSpanId: must be 8 bytes", rejected=1,
    ),
    Case(
        "2000 attributes", "proto", repaired(with_fields(attributes=MANY_ATTRIBUTES)), OK,
        "spans[1].attributes: over the limit of 1024, 976 dropped", rejected=0,
        check=attributes_capped,
    ),
    Case(
        "1100 events", "proto", repaired(with_fields(events=MANY_EVENTS)), OK,
        "spans[1].events: over the limit of 1024, 76 dropped", rejected=0, check=events_capped,
    ),
    Case(
        "profiles string index", "proto", repaired(with_fields(attributes=STRING_INDEX)), OK,
        STRING_INDEX_CLEARED, rejected=0, check=string_index_cleared,
    ),
    Case(
        "NaN double", "proto", repaired(with_fields(attributes=NAN)), OK,
        'spans[1].attributes[0].value.doubleValue: not a finite number, kept as the string "NaN"',
        rejected=0, check=nan_as_string,
    ),
    Case(
        "gzip bomb", "proto", lambda: Sent(gzip.compress(huge())), TOO_LARGE,
        f"request body exceeds {LIMIT} bytes after decompression", encoding="gzip",
    ),
    Case(
        "declared length over the limit", "proto", raw(b""), TOO_LARGE,
        f"request body exceeds {LIMIT} bytes", send=send_length_only,
    ),
    Case(
        "bad span among good, gzip", "proto", gzipped(good(with_fields(span_id=b"\x01"))), OK,
        f"{REJECTED_FIRST}.spanId: must be 8 bytes", rejected=1, encoding="gzip",
    ),
    Case("not gzip", "proto", raw(b"plainly not gzip"), BAD, "invalid gzip", encoding="gzip"),
    Case(
        "truncated gzip", "proto", raw(gzip.compress(b"\x0a" * 4096)[:20]), BAD,
        "invalid gzip body", encoding="gzip",
    ),
    Case(
        "unsupported encoding", "proto", raw(b"x"), BAD, "unsupported Content-Encoding",
        encoding="br",
    ),
    Case(
        "resource repeated past the limit", "proto", shared_resource, TOO_LARGE,
        "once split per trace",
    ),
    Case("empty body is an empty request", "proto", raw(b""), OK, ""),
]

JSON_CASES = [
    Case("truncated", "json", text('{"resourceSpans": ['), BAD, "invalid OTLP/JSON body: EOF"),
    Case(
        "a string, not an object", "json", text('"traces"'), BAD,
        "expected struct ExportTraceServiceRequest",
    ),
    Case(
        "resourceSpans not a list", "json", text('{"resourceSpans": {}}'), BAD,
        "invalid type: map, expected a sequence",
    ),
    Case(
        "ids in base64", "json", json_with(["traceId"], "S/kvNXezTaajzpKdDg5HNg=="), BAD,
        "invalid character 'S'",
    ),
    Case("non-hex id", "json", json_with(["spanId"], "zz" * 8), BAD, "invalid character 'z'"),
    Case("odd-length id", "json", json_with(["spanId"], "abc"), BAD, "odd number of digits"),
    Case(
        "enum as a name", "json", json_with(["kind"], "SPAN_KIND_SERVER"), BAD,
        'invalid type: string "SPAN_KIND_SERVER", expected i32',
    ),
    Case(
        "intValue not a number", "json", json_with(["attributes"], INT_AS_WORD), BAD,
        "invalid digit",
    ),
    Case(
        "timestamp not a number", "json", json_with(["startTimeUnixNano"], "yesterday"), BAD,
        "invalid digit",
    ),
    Case(
        "bytesValue not base64", "json", json_with(["attributes"], BYTES_NOT_BASE64), BAD,
        "Invalid symbol",
    ),
    Case("invalid UTF-8", "json", raw(JSON_NOT_UTF8), BAD, "invalid unicode code point"),
    Case("lone surrogate", "json", text(LONE_SURROGATE), BAD, "lone leading surrogate"),
    Case("nesting beyond the decoder", "json", too_deep(60, "array"), BAD, "nested too deeply"),
    Case(
        "only an all-zero trace id", "json", only(trace_id=bytes(16)), BAD,
        "traceId: an all-zero id is invalid",
    ),
    Case(
        "all-zero trace id among good", "json", good(with_fields(trace_id=bytes(16))), OK,
        f"{REJECTED_FIRST}.traceId: an all-zero id is invalid", rejected=1,
    ),
    Case(
        "short span id among good", "json", json_with(["spanId"], "00f067aa"), OK,
        f"{REJECTED_FIRST}.spanId: must be 8 bytes (16 hex characters), got 4 bytes",
        rejected=1,
    ),
    Case(
        "missing trace id among good", "json", json_edit(lambda s: s.pop("traceId")), OK,
        f"{REJECTED_FIRST}.traceId: must be 16 bytes (32 hex characters), got 0 bytes",
        rejected=1,
    ),
    Case(
        "end before start", "json", repaired(with_fields(end_time_unix_nano=1)), OK,
        f"clamped or dropped data in 1 place, first at {SECOND_SPAN}.{END_CLAMPED}",
        rejected=0, check=clamped_end,
    ),
    Case(
        "array nested 20 deep", "json", repaired(with_fields(**deep(20, "array"))), OK,
        "spans[1].attributes[0].value: nested deeper than 16 levels", rejected=0,
        check=deep_attribute_dropped,
    ),
    Case("all-zero parent id is a root", "json", zero_parent, OK, ""),
    Case("gzip of two members", "json", two_gzip_members, OK, "", encoding="gzip"),
    Case(
        "unsupported Content-Type", "json", raw(b"hello"), 415, "unsupported Content-Type",
        content_type="text/plain",
    ),
]

GRPC_CASES = [
    Case("garbage", "grpc", raw(GARBAGE), G.INVALID_ARGUMENT, "invalid OTLP protobuf"),
    Case(
        "invalid UTF-8 in a key", "grpc",
        replaced(b"k\xc3\xa9y", b"k\xc3\x28y", attributes=KEY), G.INVALID_ARGUMENT,
        "Span.attributes",
    ),
    Case(
        "nesting beyond the decoder", "grpc", too_deep(40, "kvlist"), G.INVALID_ARGUMENT,
        "messages nested more than 100 deep",
    ),
    Case(
        "only an all-zero trace id", "grpc", only(trace_id=bytes(16)), G.INVALID_ARGUMENT,
        "traceId: an all-zero id is invalid",
    ),
    Case(
        "short span id among good", "grpc", good(with_fields(span_id=b"\x02" * 4)), G.OK,
        f"{REJECTED_FIRST}.spanId: must be 8 bytes", rejected=1,
    ),
    Case(
        "three kinds of bad ids among good", "grpc",
        good(
            with_fields(trace_id=bytes(16)),
            with_fields(trace_id=b"\x01" * 17),
            with_fields(span_id=bytes(8)),
        ),
        G.OK, "rejected 3 of 5 spans", rejected=3,
    ),
    Case(
        "bad id among good, gzip", "grpc", good(with_fields(trace_id=b"\x03" * 8)), G.OK,
        "traceId: must be 16 bytes", rejected=1, encoding="gzip",
    ),
    Case(
        "end before start", "grpc", repaired(with_fields(end_time_unix_nano=0)), G.OK,
        END_CLAMPED, rejected=0, check=clamped_end,
    ),
    Case(
        "key-value list nested 20 deep", "grpc", repaired(with_fields(**deep(20, "kvlist"))),
        G.OK, "nested deeper than 16 levels, attribute dropped", rejected=0,
        check=deep_attribute_dropped,
    ),
    Case(
        "profiles string index", "grpc", repaired(with_fields(attributes=STRING_INDEX)), G.OK,
        STRING_INDEX_CLEARED, rejected=0, check=string_index_cleared,
    ),
    Case(
        "gzip bomb", "grpc", lambda: Sent(huge()), G.RESOURCE_EXHAUSTED,
        f"size limit, of {LIMIT} bytes, exceeded while decompressing", encoding="gzip",
    ),
    Case(
        "message over the limit", "grpc", lambda: Sent(huge()), G.RESOURCE_EXHAUSTED,
        "decoded message length too large",
    ),
]

CASES = PROTO_CASES + JSON_CASES + GRPC_CASES


@pytest.fixture(scope="module")
def shared_gateway(tmp_path_factory):
    gateway = Gateway(tmp_path_factory.mktemp("malformed"), retention="60s")
    yield gateway
    gateway.stop()


def test_the_table_covers_at_least_thirty_kinds_on_every_transport():
    assert len(CASES) >= 30
    assert {c.via for c in CASES} == {"proto", "json", "grpc"}
    assert len({(c.via, c.id) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.via}: {c.id}")
def test_malformed_input_gets_its_status_and_message(shared_gateway, case):
    gateway = shared_gateway
    sent = case.make()
    body = encode(case, sent.body)
    send = case.send or (send_grpc if case.via == "grpc" else send_http)

    outcome = send(gateway, case, body)
    assert outcome.status == case.status, outcome
    assert case.message in outcome.message, outcome
    assert outcome.rejected == case.rejected, outcome

    accepted = case.status in (OK, G.OK)
    if accepted and sent.kept:
        wanted = {i.hex() for i in sent.kept}
        spans = wait_for(lambda: exported(gateway, wanted))
        assert spans, f"the good spans were not exported: {wanted}"
        assert not {i.hex() for i in sent.gone} & spans.keys(), "a rejected span was exported"
        if case.check:
            case.check({k: v for k, v in spans.items() if k in wanted})

    assert serves(gateway), "the gateway stopped serving"
    if not accepted:
        refused = {i.hex() for i in sent.kept + sent.gone}
        assert not refused & exported(gateway, set()).keys(), "a refused request was stored"


def test_a_client_that_stops_sending_is_cut_off_and_the_rest_are_served(tmp_path):
    security = {"receivers": {"read_header_timeout": "1s", "read_timeout": "1s"}}
    gateway = Gateway(tmp_path, retention="30s", security=security)
    try:
        # Stops in the middle of its headers: the connection is closed.
        headers_cut = socket.create_connection(("127.0.0.1", gateway.http_port), timeout=20)
        headers_cut.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: gateway\r\n")
        # Sends its headers, then one byte of the 500 its Content-Length announced.
        body_cut = socket.create_connection(("127.0.0.1", gateway.http_port), timeout=20)
        body_cut.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Content-Length: 500\r\n\r\n{"
        )

        # Connects to the gRPC port and says nothing, not even the HTTP/2 preface.
        silent = socket.create_connection(("127.0.0.1", gateway.grpc_port), timeout=20)

        assert headers_cut.recv(4096) == b"", "a connection without whole headers stayed open"
        assert silent.recv(4096) == b"", "a silent gRPC connection stayed open"
        silent.close()
        answer = body_cut.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 408"), answer
        assert "receivers.read_timeout" in answer, answer
        headers_cut.close()
        body_cut.close()
        assert serves(gateway), "the gateway stopped serving"
    finally:
        gateway.stop()


def test_out_of_file_descriptors_the_gateway_pauses_accepts_and_recovers(tmp_path):
    gateway = Gateway(tmp_path, retention="30s")
    held = []
    try:
        # Leave the running gateway few descriptors; RocksDB and the listeners hold some.
        limit = len(os.listdir(f"/proc/{gateway.proc.pid}/fd")) + 8
        prlimit = ["prlimit", f"--pid={gateway.proc.pid}", f"--nofile={limit}:{limit}"]
        subprocess.run(prlimit, check=True, capture_output=True)
        for _ in range(40):
            connection = socket.create_connection(("127.0.0.1", gateway.http_port), timeout=5)
            connection.sendall(b"POST /v1/traces HTTP/1.1\r\n")
            held.append(connection)
        time.sleep(2)  # Each refused connection waits in the backlog: accept keeps failing.

        log = gateway.log_path.read_text()
        assert "accept failed; pausing accepts" in log, log[-2000:]
        # One warning per 10 s: a loop that did not pause would have written thousands.
        assert log.count("accept failed") <= 2, log.count("accept failed")
        for connection in held:
            connection.close()
        held.clear()
        assert wait_for(lambda: serves(gateway), timeout=20), "the gateway did not recover"
    finally:
        for connection in held:
            connection.close()
        gateway.stop()
