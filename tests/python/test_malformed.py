"""Malformed OTLP gets 400 / INVALID_ARGUMENT with a message naming the problem, and the
gateway keeps serving."""

import gzip
import json
import urllib.error
import urllib.request

import grpc
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

JSON = "application/json"
PROTO = "application/x-protobuf"


def post(gateway, body: bytes, content_type: str, encoding: str | None = None):
    request = urllib.request.Request(gateway.http_url, data=body, method="POST")
    request.add_header("Content-Type", content_type)
    if encoding:
        request.add_header("Content-Encoding", encoding)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def json_request(trace_id: str, span_id: str = "00f067aa0ba902b7") -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": []},
                    "scopeSpans": [
                        {
                            "scope": {"name": "t"},
                            "spans": [
                                {
                                    "traceId": trace_id,
                                    "spanId": span_id,
                                    "parentSpanId": "",
                                    "name": "x",
                                    "kind": 2,
                                    "startTimeUnixNano": "1700000000000000000",
                                    "endTimeUnixNano": 1700000000100000000,
                                    "unknownFutureField": {"ignored": True},
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    ).encode()


VALID_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def message_of(content_type: str, body: bytes) -> str:
    if content_type == PROTO:
        status = status_pb2.Status()
        status.ParseFromString(body)
        assert status.code == 3
        return status.message
    return json.loads(body)["message"]


@pytest.mark.parametrize(
    "name, body, content_type, expected",
    [
        ("garbage protobuf", b"\x0a\xff\xff\xff\xff\x0f", PROTO, "invalid OTLP protobuf"),
        ("truncated JSON", b'{"resourceSpans": [', JSON, "invalid OTLP/JSON"),
        ("JSON ids in base64", json_request("S/kvNXezTaajzpKdDg5HNg=="), JSON, "hex"),
        ("all-zero trace id", json_request("0" * 32), JSON, "traceId: an all-zero id"),
        ("all-zero span id", json_request(VALID_ID, "0" * 16), JSON, "spanId: an all-zero"),
        ("short trace id", json_request("4bf92f35"), JSON, "traceId: must be 16 bytes"),
    ],
)
def test_malformed_http_is_400_with_a_message(gateway, name, body, content_type, expected):
    status, answered_type, answer = post(gateway, body, content_type)
    assert status == 400, (name, answer)
    assert answered_type == content_type
    assert expected in message_of(content_type, answer), (name, answer)

    # The gateway keeps serving.
    status, _, _ = post(gateway, json_request(VALID_ID), JSON)
    assert status == 200
    assert gateway.alive()


def test_all_zero_trace_id_over_grpc_is_invalid_argument(gateway):
    span = trace_pb2.Span(trace_id=bytes(16), span_id=b"\x01" * 8, name="x")
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=[span])])
        ]
    )
    with grpc.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Export(request, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "all-zero" in err.value.details()

        span.trace_id = bytes.fromhex(VALID_ID)
        request.resource_spans[0].scope_spans[0].spans[0].CopyFrom(span)
        stub.Export(request, timeout=10)


def test_gzip_json_and_protobuf_are_accepted(gateway):
    status, answered, _ = post(gateway, gzip.compress(json_request(VALID_ID)), JSON, "gzip")
    assert (status, answered) == (200, JSON)

    span = trace_pb2.Span(trace_id=bytes.fromhex(VALID_ID), span_id=b"\x02" * 8, name="p")
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=[span])])
        ]
    )
    body = gzip.compress(request.SerializeToString())
    status, answered, answer = post(gateway, body, PROTO, "gzip")
    assert (status, answered) == (200, PROTO)
    trace_service_pb2.ExportTraceServiceResponse().ParseFromString(answer)


def test_unsupported_content_type_is_415(gateway):
    status, _, answer = post(gateway, b"hello", "text/plain")
    assert status == 415
    assert "Content-Type" in json.loads(answer)["message"]


def test_malformed_protobuf_over_grpc_is_invalid_argument(gateway):
    with grpc.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=lambda raw: raw,
            response_deserializer=lambda raw: raw,
        )
        with pytest.raises(grpc.RpcError) as err:
            export(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "invalid OTLP protobuf" in err.value.details()
    assert gateway.alive()


def test_a_large_resource_shared_by_many_traces_is_413_not_memory_exhaustion(gateway):
    big = "x" * (256 * 1024)
    spans = [
        trace_pb2.Span(trace_id=i.to_bytes(16, "big"), span_id=b"\x01" * 8, name="s")
        for i in range(1, 401)
    ]
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource_pb2.Resource(
                    attributes=[common_pb2.KeyValue(key="blob", value=common_pb2.AnyValue(string_value=big))]
                ),
                scope_spans=[trace_pb2.ScopeSpans(spans=spans)],
            )
        ]
    )
    status, _, answer = post(gateway, request.SerializeToString(), PROTO)
    assert status == 413
    status_msg = status_pb2.Status()
    status_msg.ParseFromString(answer)
    assert "once split per trace" in status_msg.message
    assert post(gateway, json_request(VALID_ID), JSON)[0] == 200


def test_an_all_zero_parent_span_id_marks_a_root(gateway):
    body = json.loads(json_request(VALID_ID))
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["parentSpanId"] = "0" * 16
    status, _, answer = post(gateway, json.dumps(body).encode(), JSON)
    assert status == 200, answer
