"""End to end into a real Jaeger: traces the gateway releases are found through Jaeger's query
API with every span and their trigger span inside; traces it does not release never arrive."""

import json
import time
import urllib.error
import urllib.request

import pytest
from conftest import Gateway, wait_for
from otel_helpers import make_trace, provider, send_trigger
from peers import Jaeger


@pytest.fixture
def jaeger(tmp_path):
    j = Jaeger(tmp_path)
    yield j
    j.stop()


@pytest.fixture
def gateway_to_jaeger(tmp_path, jaeger):
    gw = Gateway(tmp_path, retention="3s", otlp_endpoint=jaeger.otlp_endpoint)
    yield gw
    gw.stop()


def jaeger_trace(jaeger, trace_id: str):
    """The trace as Jaeger's query API returns it, or None while Jaeger does not have it."""
    url = f"{jaeger.query_url}/api/traces/{trace_id}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            data = json.load(response)["data"]
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise
    assert len(data) == 1, data
    return data[0]


def tags(span) -> dict:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def test_released_traces_reach_jaeger_whole_and_the_rest_never(jaeger, gateway_to_jaeger):
    gateway = gateway_to_jaeger
    tp, sent = provider(gateway, "grpc", "checkout")
    tracer = tp.get_tracer("test.app")
    contexts = [make_trace(tracer, n) for n in range(12)]
    chosen = contexts[::3]
    trigger_tracer = tp.get_tracer("wbpf.test-probe")
    triggers = {
        f"{c.trace_id:032x}": f"{send_trigger(trigger_tracer, c.trace_id, c.span_id):016x}"
        for c in chosen
    }

    expected: dict[str, dict[str, str]] = {}
    for span in sent.get_finished_spans():
        trace_id = f"{span.context.trace_id:032x}"
        expected.setdefault(trace_id, {})[f"{span.context.span_id:016x}"] = span.name
    released = {t: expected[t] for t in triggers}
    assert all(len(spans) == 4 for spans in released.values())  # 3 spans + the trigger

    def all_in_jaeger():
        for trace_id, spans in released.items():
            got = jaeger_trace(jaeger, trace_id)
            if got is None or len(got["spans"]) < len(spans):
                return False
        return True

    assert wait_for(all_in_jaeger, timeout=30, interval=0.25), "released traces not in Jaeger"

    for trace_id, spans in released.items():
        got = jaeger_trace(jaeger, trace_id)
        assert got["traceID"] == trace_id
        by_id = {s["spanID"]: s for s in got["spans"]}
        assert {i: s["operationName"] for i, s in by_id.items()} == spans

        trigger = by_id[triggers[trace_id]]
        assert tags(trigger)["wbpf.trigger"] is True
        parents = [r["spanID"] for r in trigger["references"] if r["refType"] == "CHILD_OF"]
        assert parents and parents[0] in by_id, "the trigger span sits inside its trace"
        service = got["processes"][trigger["processID"]]["serviceName"]
        assert service == "checkout"

    # The others age out of the gateway (retention 3 s) without ever being exported.
    time.sleep(4.5)
    assert gateway.alive() and jaeger.alive()
    for c in contexts:
        trace_id = f"{c.trace_id:032x}"
        if trace_id not in released:
            assert jaeger_trace(jaeger, trace_id) is None, f"{trace_id} was never triggered"
    tp.shutdown()
