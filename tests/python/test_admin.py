"""The admin port: a manual trigger releases a trace; /metrics exposes the counters."""

import json
import urllib.error
import urllib.request

from conftest import wait_for
from otel_helpers import make_trace, provider


def admin(gateway, method: str, path: str, body: bytes | None = None):
    request = urllib.request.Request(gateway.admin_url + path, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_manual_trigger_releases_the_trace(gateway):
    tp, _ = provider(gateway, "grpc", "payments")
    tracer = tp.get_tracer("test.app")
    kept = make_trace(tracer, 1)
    other = make_trace(tracer, 2)

    trace_id = f"{kept.trace_id:032x}"
    request = json.dumps({"trace_id": trace_id}).encode()
    status, body = admin(gateway, "POST", "/v1/triggers", request)
    assert status == 202, body
    assert json.loads(body) == {"trace_id": trace_id, "status": "triggered"}

    def released():
        ids = {span["traceId"] for _, _, span in gateway.exported()}
        return ids if trace_id in ids else None

    ids = wait_for(released, timeout=10)
    assert ids == {trace_id}, "only the triggered trace is released"
    assert len(gateway.exported()) == 3
    assert f"{other.trace_id:032x}" not in ids
    tp.shutdown()


def test_bad_manual_triggers_are_400_with_a_message(gateway):
    for body, expected in [
        (b"not json", "trace_id"),
        (json.dumps({"trace_id": "xyz"}).encode(), "not hex"),
        (json.dumps({"trace_id": "abcd"}).encode(), "16 bytes"),
        (json.dumps({"trace_id": "0" * 32}).encode(), "all-zero"),
    ]:
        status, answer = admin(gateway, "POST", "/v1/triggers", body)
        assert status == 400, (body, answer)
        assert expected in json.loads(answer)["message"], (body, answer)


def test_metrics_expose_the_gateway_counters(gateway):
    tp, _ = provider(gateway, "http", "search")
    make_trace(tp.get_tracer("test.app"), 3)
    tp.shutdown()

    status, text = admin(gateway, "GET", "/metrics")
    assert status == 200
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    assert values["wbpf_gateway_spans_received_total"] == 3
    assert values["wbpf_gateway_traces_received_total"] == 1
    assert values["wbpf_gateway_traces_buffered"] == 1
    assert "wbpf_gateway_traces_released_total" in values
