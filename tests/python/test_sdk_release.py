"""The real OpenTelemetry Python SDK sends traces over gRPC and HTTP; triggers release exactly
the triggered ones, unchanged, and untriggered ones are gone after the retention window."""

import time

import pytest
from conftest import Gateway, wait_for
from otel_helpers import make_trace, normalise_exported, normalise_sent, provider, send_trigger


def exported_by_trace(gateway):
    out = {}
    for resource, scope, span in gateway.exported():
        n = normalise_exported(resource, scope, span)
        out.setdefault(n["trace_id"], []).append(n)
    return out


def test_triggered_traces_are_released_whole_and_unchanged(gateway):
    grpc_tp, grpc_sent = provider(gateway, "grpc", "checkout")
    http_tp, http_sent = provider(gateway, "http", "inventory")
    contexts = []
    for n in range(20):
        tp = grpc_tp if n % 2 == 0 else http_tp
        contexts.append(make_trace(tp.get_tracer("test.app", "1.2.3"), n))

    chosen = contexts[::5]  # 4 traces, two sent over each protocol
    trigger_tracer = grpc_tp.get_tracer("wbpf.test-probe")
    trigger_ids = {send_trigger(trigger_tracer, c.trace_id, c.span_id) for c in chosen}

    sent = [normalise_sent(s) for s in grpc_sent.get_finished_spans()]
    sent += [normalise_sent(s) for s in http_sent.get_finished_spans()]
    chosen_ids = {f"{c.trace_id:032x}" for c in chosen}
    expected = [s for s in sent if s["trace_id"] in chosen_ids]
    assert len(expected) == 4 * 3 + 4  # three spans per trace plus its trigger span

    def all_released():
        got = exported_by_trace(gateway)
        return sum(len(v) for k, v in got.items() if k in chosen_ids) >= len(expected)

    assert wait_for(all_released, timeout=10), "triggered traces were not released"
    got = exported_by_trace(gateway)

    assert set(got) == chosen_ids, "only triggered traces may leave the gateway"
    exported = sorted((s for spans in got.values() for s in spans), key=lambda s: s["span_id"])
    assert exported == sorted(expected, key=lambda s: s["span_id"])
    assert {int(s["span_id"], 16) for s in exported} >= trigger_ids

    # Untriggered traces age out (retention 3 s): a trigger afterwards finds nothing to release.
    time.sleep(4.0)
    late = contexts[1]
    send_trigger(trigger_tracer, late.trace_id, late.span_id)
    late_id = f"{late.trace_id:032x}"
    assert wait_for(lambda: late_id in exported_by_trace(gateway), timeout=10)
    time.sleep(0.5)
    late_spans = exported_by_trace(gateway)[late_id]
    assert [s["name"] for s in late_spans] == ["wbpf.trigger test"], late_spans

    grpc_tp.shutdown()
    http_tp.shutdown()


@pytest.fixture
def patient_gateway(tmp_path):
    """A gateway whose retention window is far longer than any pause of a busy machine."""
    gw = Gateway(tmp_path, retention="60s")
    yield gw
    gw.stop()


def test_trigger_before_and_after_the_spans_both_release(patient_gateway):
    gateway = patient_gateway
    tp, sent = provider(gateway, "http", "orders")
    tracer = tp.get_tracer("test.app")

    # Before: the trigger names a trace none of whose spans have arrived yet.
    early_trace = 0x0AF7651916CD43DD8448EB211C80319C
    send_trigger(tracer, early_trace, 0x00F067AA0BA902B7)
    from opentelemetry import trace as api
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    parent = SpanContext(early_trace, 0x00F067AA0BA902B7, True, TraceFlags(1))
    with tracer.start_as_current_span(
        "late-arriving work", context=api.set_span_in_context(NonRecordingSpan(parent))
    ):
        pass

    # After: spans first, trigger a moment later.
    ctx = make_trace(tracer, 7)
    time.sleep(0.3)
    send_trigger(tracer, ctx.trace_id, ctx.span_id)

    early_id = f"{early_trace:032x}"
    after_id = f"{ctx.trace_id:032x}"

    def released():
        got = exported_by_trace(gateway)
        return len(got.get(early_id, [])) == 2 and len(got.get(after_id, [])) == 4

    assert wait_for(released, timeout=10), exported_by_trace(gateway).keys()
    names = sorted(s["name"] for s in exported_by_trace(gateway)[early_id])
    assert names == ["late-arriving work", "wbpf.trigger test"]
    tp.shutdown()
