"""Compatibility oracle: the OpenTelemetry Collector's tail sampler and `wbpf gateway` in tail
mode, given the same `tail_sampling` policies and the same OTLP bytes, keep the same traces.

One generated corpus (1,200 traces: 1–20 spans, varied status, duration, typed attributes, some
mistyped, tracestate and trace flags, with and without a root) goes once to one Collector that
runs one pipeline per case below, each exporting to its own path of an in-test OTLP/HTTP sink,
and to one gateway per case. Each case then compares the two sets of kept trace ids.
"""

import json
import random
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import Gateway, free_port, wait_for
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from peers import OtlpSink, PeerProcess, peer_binary

TRACES = 1200
TRACES_PER_REQUEST = 50
DECISION_WAIT = "2s"
SEED = 20240611
MS = 1_000_000

# The deterministic policy types, each alone, then combinations. Rate and byte limits and
# `composite` depend on arrival timing once a budget runs out, so they are compared only with
# budgets far above the corpus (about 13,000 spans in all), where what keeps a trace is their
# sub-policies. `ottl_condition` is not supported by wBPF.
CASES = {
    "always_sample": [{"name": "all", "type": "always_sample"}],
    "latency": [{"name": "slow", "type": "latency", "latency": {"threshold_ms": 500}}],
    "latency_upper": [
        {
            "name": "band",
            "type": "latency",
            "latency": {"threshold_ms": 200, "upper_threshold_ms": 1000},
        }
    ],
    "numeric_attribute": [
        {
            "name": "5xx",
            "type": "numeric_attribute",
            "numeric_attribute": {"key": "http.status_code", "min_value": 500, "max_value": 599},
        }
    ],
    "numeric_attribute_min_only": [
        {
            "name": "retried",
            "type": "numeric_attribute",
            "numeric_attribute": {"key": "retries", "min_value": 2},
        }
    ],
    "numeric_attribute_max_only_invert": [
        {
            "name": "not_negative",
            "type": "numeric_attribute",
            "numeric_attribute": {"key": "retries", "max_value": -1, "invert_match": True},
        }
    ],
    "numeric_attribute_zero_min": [
        {
            "name": "few_retries",
            "type": "numeric_attribute",
            "numeric_attribute": {"key": "retries", "min_value": 0, "max_value": 1},
        }
    ],
    "probabilistic": [
        {"name": "quarter", "type": "probabilistic", "probabilistic": {"sampling_percentage": 25}}
    ],
    "probabilistic_salted": [
        {
            "name": "salted",
            "type": "probabilistic",
            "probabilistic": {"hash_salt": "wbpf-oracle", "sampling_percentage": 12.5},
        }
    ],
    "status_code": [
        {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}}
    ],
    "status_code_ok_unset": [
        {"name": "fine", "type": "status_code", "status_code": {"status_codes": ["OK", "UNSET"]}}
    ],
    "string_attribute": [
        {
            "name": "routes",
            "type": "string_attribute",
            "string_attribute": {"key": "http.route", "values": ["/api/checkout", "/health", ""]},
        }
    ],
    "string_attribute_regex": [
        {
            "name": "route_regex",
            "type": "string_attribute",
            "string_attribute": {
                "key": "http.route",
                "values": [r"^/api/.*s$", "admin"],
                "enabled_regex_matching": True,
            },
        }
    ],
    "string_attribute_regex_empty": [
        {
            "name": "empty_route_or_tenant",
            "type": "string_attribute",
            "string_attribute": {
                "key": "http.route",
                "values": ["^$", "^/adm"],
                "enabled_regex_matching": True,
            },
        },
        {
            "name": "empty_tenant",
            "type": "string_attribute",
            "string_attribute": {"key": "tenant", "values": ["^$"], "enabled_regex_matching": True},
        },
    ],
    "string_attribute_resource": [
        {
            "name": "tenant",
            "type": "string_attribute",
            "string_attribute": {"key": "tenant", "values": ["acme"]},
        }
    ],
    "string_attribute_invert": [
        {
            "name": "not_gold",
            "type": "string_attribute",
            "string_attribute": {"key": "customer.tier", "values": ["gold"], "invert_match": True},
        }
    ],
    "boolean_attribute": [
        {
            "name": "cache_hit",
            "type": "boolean_attribute",
            "boolean_attribute": {"key": "cache.hit", "value": True},
        }
    ],
    "boolean_attribute_invert": [
        {
            "name": "no_miss",
            "type": "boolean_attribute",
            "boolean_attribute": {"key": "cache.hit", "value": False, "invert_match": True},
        }
    ],
    "span_count": [
        {"name": "mid", "type": "span_count", "span_count": {"min_spans": 5, "max_spans": 10}}
    ],
    "span_count_min_only": [
        {"name": "big", "type": "span_count", "span_count": {"min_spans": 15}}
    ],
    "trace_state": [
        {
            "name": "rojo",
            "type": "trace_state",
            "trace_state": {"key": "rojo", "values": ["00f067aa0ba902b7", "deadbeef"]},
        }
    ],
    "trace_state_ot": [
        {
            "name": "ot",
            "type": "trace_state",
            "trace_state": {"key": "ot", "values": ["th:8;rv:0123456789abcd"]},
        }
    ],
    "trace_flags": [{"name": "sampled_flag", "type": "trace_flags"}],
    "and": [
        {
            "name": "slow_errors",
            "type": "and",
            "and": {
                "and_sub_policy": [
                    {
                        "name": "e",
                        "type": "status_code",
                        "status_code": {"status_codes": ["ERROR"]},
                    },
                    {"name": "s", "type": "latency", "latency": {"threshold_ms": 300}},
                ]
            },
        }
    ],
    "not": [
        {
            "name": "not_health",
            "type": "not",
            "not": {
                "not_sub_policy": {
                    "name": "health",
                    "type": "string_attribute",
                    "string_attribute": {"key": "http.route", "values": ["/health"]},
                }
            },
        }
    ],
    "not_inverted": [
        {
            "name": "not_not_gold",
            "type": "not",
            "not": {
                "not_sub_policy": {
                    "name": "not_gold",
                    "type": "string_attribute",
                    "string_attribute": {
                        "key": "customer.tier",
                        "values": ["gold"],
                        "invert_match": True,
                    },
                }
            },
        }
    ],
    "drop": [
        {"name": "all", "type": "always_sample"},
        {
            "name": "drop_trials",
            "type": "drop",
            "drop": {
                "drop_sub_policy": [
                    {
                        "name": "trial",
                        "type": "string_attribute",
                        "string_attribute": {"key": "customer.tier", "values": ["free-trial"]},
                    }
                ]
            },
        },
    ],
    "precedence": [
        {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
        {
            "name": "not_gold",
            "type": "string_attribute",
            "string_attribute": {"key": "customer.tier", "values": ["gold"], "invert_match": True},
        },
        {
            "name": "5xx",
            "type": "numeric_attribute",
            "numeric_attribute": {"key": "http.status_code", "min_value": 500, "max_value": 599},
        },
        {"name": "tenth", "type": "probabilistic", "probabilistic": {"sampling_percentage": 10}},
        {
            "name": "drop_cached_big",
            "type": "drop",
            "drop": {
                "drop_sub_policy": [
                    {
                        "name": "hit",
                        "type": "boolean_attribute",
                        "boolean_attribute": {"key": "cache.hit", "value": True},
                    },
                    {"name": "big", "type": "span_count", "span_count": {"min_spans": 10}},
                ]
            },
        },
    ],
    "composite_within_budget": [
        {
            "name": "shares",
            "type": "composite",
            "composite": {
                "max_total_spans_per_second": 10_000_000,
                "policy_order": ["errors", "not_gold", "slow_5xx"],
                "composite_sub_policy": [
                    {
                        "name": "errors",
                        "type": "status_code",
                        "status_code": {"status_codes": ["ERROR"]},
                    },
                    {
                        "name": "not_gold",
                        "type": "string_attribute",
                        "string_attribute": {
                            "key": "customer.tier",
                            "values": ["gold", "silver"],
                            "invert_match": True,
                        },
                    },
                    {
                        "name": "slow_5xx",
                        "type": "and",
                        "and": {
                            "and_sub_policy": [
                                {"name": "s", "type": "latency", "latency": {"threshold_ms": 200}},
                                {
                                    "name": "5xx",
                                    "type": "numeric_attribute",
                                    "numeric_attribute": {
                                        "key": "http.status_code",
                                        "min_value": 500,
                                        "max_value": 599,
                                    },
                                },
                            ]
                        },
                    },
                ],
                "rate_allocation": [
                    {"policy": "errors", "percent": 50},
                    {"policy": "not_gold", "percent": 25},
                ],
            },
        }
    ],
    "rate_limiting_within_budget": [
        {
            "name": "limited_errors",
            "type": "and",
            "and": {
                "and_sub_policy": [
                    {
                        "name": "e",
                        "type": "status_code",
                        "status_code": {"status_codes": ["ERROR"]},
                    },
                    {
                        "name": "rate",
                        "type": "rate_limiting",
                        "rate_limiting": {"spans_per_second": 10_000_000},
                    },
                ]
            },
        }
    ],
    "bytes_limiting_within_budget": [
        {
            "name": "limited_slow",
            "type": "and",
            "and": {
                "and_sub_policy": [
                    {"name": "s", "type": "latency", "latency": {"threshold_ms": 500}},
                    {
                        "name": "bytes",
                        "type": "bytes_limiting",
                        "bytes_limiting": {"bytes_per_second": 1_000_000_000},
                    },
                ]
            },
        }
    ],
}


# ---------------------------------------------------------------------------------------------
# The corpus


def _value(v) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=v)


def _attributes(pairs: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in pairs.items()]


# Exact boundaries of the latency cases (ms): on, just under and just over each threshold.
BOUNDARY_DURATIONS_NS = [
    t * MS + d for t in (200, 300, 500, 1000) for d in (-1, 0, 1, MS - 1, MS)
]
ROUTES = ["/api/checkout", "/api/carts", "/api/items", "/health", "/admin/users", "/search", ""]
TIERS = ["gold", "silver", "bronze", "free-trial"]
TRACESTATES = [
    "",
    "rojo=00f067aa0ba902b7",
    "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
    "rojo=deadbeef,congo=ucfJifl5GOE",
    "rojo=00f067aa0ba902b8",
    "ot=th:8;rv:0123456789abcd",
    "vendor@tenant=x,rojo=00f067aa0ba902b7",
    "not a tracestate",
    "rojo=00f067aa0ba902b7,rojo=deadbeef",
]
FLAGS = [0, 0x01, 0x100, 0x101, 0x301, 0x300]


def _span_attributes(rng: random.Random) -> dict:
    attrs = {}
    roll = rng.random()
    if roll < 0.6:
        attrs["http.route"] = rng.choice(ROUTES)
    elif roll < 0.65:
        attrs["http.route"] = rng.randint(1, 9)  # mistyped: a string policy reads ""
    roll = rng.random()
    if roll < 0.5:
        attrs["http.status_code"] = rng.choice([200, 201, 204, 301, 404, 429, 499, 500, 503, 599])
    elif roll < 0.55:
        attrs["http.status_code"] = rng.choice(["500", 503.0, True])  # mistyped: reads as 0
    roll = rng.random()
    if roll < 0.3:
        attrs["retries"] = rng.randint(-3, 5)
    roll = rng.random()
    if roll < 0.3:
        attrs["cache.hit"] = rng.random() < 0.4
    elif roll < 0.35:
        attrs["cache.hit"] = rng.choice(["true", 1])  # mistyped: reads as false
    if rng.random() < 0.2:
        attrs["customer.tier"] = rng.choice(TIERS)
    return attrs


def _trace(rng: random.Random, index: int, base_ns: int) -> tuple[bytes, list[ResourceSpans]]:
    trace_id = rng.randbytes(16)
    n_spans = rng.choice([1, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 14, 15, 16, 20])
    if index < len(BOUNDARY_DURATIONS_NS):
        duration = BOUNDARY_DURATIONS_NS[index]
    else:
        duration = int(rng.uniform(0, rng.choice([150, 1500, 4000])) * MS)
    has_root = rng.random() < 0.9
    start = base_ns + index * 7 * MS
    trace_state = rng.choice(TRACESTATES)
    flags = rng.choice(FLAGS)

    services = ["frontend"] + rng.sample(["cart", "payments", "search", "inventory"], 2)
    resources = []
    for service in services:
        attrs = {"service.name": service}
        if rng.random() < 0.15:
            attrs["tenant"] = rng.choice(["acme", "globex", ""])
        resources.append(_attributes(attrs))

    span_ids = [rng.randbytes(8) for _ in range(n_spans)]
    by_resource: dict[int, list[Span]] = {}
    for i in range(n_spans):
        if i == 0:
            # The first span spans the whole trace, whether or not it is the root.
            s, e = start, start + duration
            parent = b"" if has_root else rng.randbytes(8)
        else:
            s = start + rng.randint(0, duration)
            e = rng.randint(s, start + duration)
            parent = span_ids[rng.randrange(i)]
        status_code = rng.choices([0, 1, 2], weights=[70, 22, 8])[0]
        span = Span(
            trace_id=trace_id,
            span_id=span_ids[i],
            parent_span_id=parent,
            trace_state=trace_state if rng.random() < 0.8 else rng.choice(TRACESTATES),
            flags=flags,
            name=f"op-{i % 5}",
            kind=rng.randint(1, 5),
            start_time_unix_nano=s,
            end_time_unix_nano=e,
            attributes=_attributes(_span_attributes(rng)),
            status=Status(code=status_code, message="boom" if status_code == 2 else ""),
        )
        by_resource.setdefault(0 if i == 0 else rng.randrange(len(resources)), []).append(span)

    scope = InstrumentationScope(name="wbpf.oracle", version="1")
    resource_spans = [
        ResourceSpans(
            resource=Resource(attributes=resources[r]),
            scope_spans=[ScopeSpans(scope=scope, spans=spans)],
        )
        for r, spans in sorted(by_resource.items())
    ]
    return trace_id, resource_spans


def corpus() -> tuple[list[bytes], dict[str, int]]:
    """Serialized export requests and the span count of every trace id (hex)."""
    rng = random.Random(SEED)
    # Recent timestamps, whole seconds: only differences within a trace matter to the policies.
    base_ns = (int(time.time()) - 60) * 1_000_000_000
    requests, spans = [], {}
    for first in range(0, TRACES, TRACES_PER_REQUEST):
        request = ExportTraceServiceRequest()
        for index in range(first, min(first + TRACES_PER_REQUEST, TRACES)):
            trace_id, resource_spans = _trace(rng, index, base_ns)
            assert trace_id.hex() not in spans
            spans[trace_id.hex()] = sum(len(ss.spans) for rs in resource_spans
                                        for ss in rs.scope_spans)
            request.resource_spans.extend(resource_spans)
        requests.append(request.SerializeToString())
    return requests, spans


def post_all(url: str, requests: list[bytes]) -> None:
    for body in requests:
        req = urllib.request.Request(url, data=body, method="POST")
        req.add_header("Content-Type", "application/x-protobuf")
        with urllib.request.urlopen(req, timeout=30) as response:
            assert response.status == 200, response.read()


# ---------------------------------------------------------------------------------------------
# The two systems


def collector_config(http_port: int, sink: OtlpSink) -> str:
    """One pipeline per case: the shared OTLP receiver, its tail sampler, its own sink path."""
    processors, exporters, pipelines = {}, {}, {}
    for case, policies in CASES.items():
        processors[f"tail_sampling/{case}"] = {
            "decision_wait": DECISION_WAIT,
            "policies": policies,
        }
        # The sampler releases each trace as its own export call: batch them, and never let a
        # full queue drop one.
        exporters[f"otlp_http/{case}"] = {
            "traces_endpoint": sink.url(f"/{case}/v1/traces"),
            "encoding": "proto",
            "compression": "none",
            "sending_queue": {
                "queue_size": 100000,
                "block_on_overflow": True,
                "batch": {"flush_timeout": "200ms", "sizer": "items", "min_size": 2000},
            },
            "retry_on_failure": {"initial_interval": "100ms", "max_interval": "500ms"},
        }
        pipelines[f"traces/{case}"] = {
            "receivers": ["otlp"],
            "processors": [f"tail_sampling/{case}"],
            "exporters": [f"otlp_http/{case}"],
        }
    config = {
        "receivers": {
            "otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{http_port}"}}}
        },
        "processors": processors,
        "exporters": exporters,
        "service": {
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
            "pipelines": pipelines,
        },
    }
    return json.dumps(config, indent=1)


def gateway_decided(gateway: Gateway) -> int:
    """Traces the gateway has decided, kept or not, from its admin metrics."""
    with urllib.request.urlopen(gateway.admin_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    decided = 0
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.endswith(("traces_released_total", "traces_sampled_out_total")):
            decided += int(float(value))
    return decided


def settled(read, quiet: float, timeout: float):
    """Polls `read` until its value has not changed for `quiet` seconds; returns it."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return value


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    """Runs the corpus through the Collector (all cases) and one gateway per case."""
    tmp: Path = tmp_path_factory.mktemp("oracle")
    requests, spans = corpus()
    sink = OtlpSink()
    http_port = free_port()
    collector = PeerProcess(
        tmp,
        "collector",
        peer_binary("wbpf-otelcol"),
        collector_config(http_port, sink),
        [http_port],
    )
    gateways = {}

    def start(case: str) -> Gateway:
        case_dir = tmp / case
        case_dir.mkdir()
        sampling = {
            "mode": "tail",
            "tail_sampling": {"decision_wait": DECISION_WAIT, "policies": CASES[case]},
        }
        return Gateway(case_dir, retention="10m", sampling=sampling)

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            started = {case: pool.submit(start, case) for case in CASES}
            failures = []
            for case, future in started.items():
                try:
                    gateways[case] = future.result()
                except Exception as err:  # every started gateway is stopped below
                    failures.append(err)
            if failures:
                raise failures[0]

            urls = [f"http://127.0.0.1:{http_port}/v1/traces"]
            urls += [g.http_url for g in gateways.values()]
            list(pool.map(lambda url: post_all(url, requests), urls))

        def all_decided():
            return all(gateway_decided(g) >= len(spans) for g in gateways.values())

        assert wait_for(all_decided, timeout=40, interval=0.5), {
            case: gateway_decided(g) for case, g in gateways.items()
        }
        # Decided traces are written out right after: wait until no export file grows.
        def sizes():
            paths = [g.export_path for g in gateways.values()]
            return [p.stat().st_size if p.exists() else 0 for p in paths]

        settled(sizes, quiet=1.0, timeout=20)
        wbpf = {}
        for case, gateway in gateways.items():
            exported = gateway.exported()
            wbpf[case] = {span["traceId"] for _, _, span in exported}
            assert len(exported) == sum(spans[t] for t in wbpf[case]), f"{case}: partial traces"
        # The Collector says nothing when it is done: wait until its always_sample pipeline
        # has every trace, then until no pipeline has received anything for a while.
        everything = "/always_sample/v1/traces"
        assert wait_for(lambda: len(sink.kept(everything)) == len(spans), timeout=20), (
            f"the collector released {len(sink.kept(everything))} of {len(spans)} traces"
        )
        collector_kept = settled(
            lambda: {case: sink.span_count(f"/{case}/v1/traces") for case in CASES},
            quiet=3.0,
            timeout=30,
        )
        log = collector.log_path.read_text()
        assert collector.alive(), log[-4000:]
        assert "Dropping data" not in log and "Rejecting data" not in log, log[-4000:]
        otel = {case: sink.kept(f"/{case}/v1/traces") for case in CASES}
        for case in CASES:
            assert collector_kept[case] == sum(spans[t] for t in otel[case]), case
        yield {"spans": spans, "wbpf": wbpf, "collector": otel}
    finally:
        for gateway in gateways.values():
            gateway.stop()
        collector.stop()
        sink.stop()


@pytest.mark.parametrize("case", list(CASES))
def test_same_traces_kept_as_the_collector(oracle, case):
    total = len(oracle["spans"])
    wbpf, otel = oracle["wbpf"][case], oracle["collector"][case]
    print(f"{case}: collector kept {len(otel)}/{total}, wbpf kept {len(wbpf)}/{total}")
    only_wbpf = sorted(wbpf - otel)
    only_otel = sorted(otel - wbpf)
    assert not only_wbpf and not only_otel, (
        f"{case}: {len(only_wbpf)} kept by wbpf only (e.g. {only_wbpf[:3]}), "
        f"{len(only_otel)} kept by the collector only (e.g. {only_otel[:3]})"
    )
    if case != "always_sample":
        assert 0 < len(otel) < total, f"{case} does not discriminate on this corpus"
