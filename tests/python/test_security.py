"""TLS and auth: a client without the token is refused; with it, accepted.

Real OpenTelemetry SDK exporters (gRPC and HTTP) against a gateway whose receivers and admin
port ask for credentials or serve TLS; certificates are made for each run with the openssl CLI.
"""

import http.client
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request

import grpc
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conftest import BIN_DIR, Gateway, wait_for
from otel_helpers import make_trace, send_trigger

TOKEN = "otlp-token-5d1f0c"
API_KEY = "otlp-key-93ab7e"
ADMIN_TOKEN = "admin-token-c0ffee"
BEARER = {"authorization": f"Bearer {TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
AUTH = {
    "receivers": {"auth": {"bearer_token": TOKEN, "api_key": {"value": API_KEY}}},
    "admin": {"auth": {"bearer_token": ADMIN_TOKEN}},
}


def openssl(*args) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", d / "ca.key", "-out", d / "ca.pem", "-days", 2,
            "-subj", "/CN=wbpf test CA")
    for serial, (name, extensions) in enumerate(
        [
            ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
            ("client", "extendedKeyUsage=clientAuth\n"),
        ],
        start=1,
    ):
        (d / f"{name}.ext").write_text(extensions)
        openssl("req", *ec, "-keyout", d / f"{name}.key", "-out", d / f"{name}.csr",
                "-subj", f"/CN=wbpf test {name}")
        openssl("x509", "-req", "-in", d / f"{name}.csr", "-CA", d / "ca.pem",
                "-CAkey", d / "ca.key", "-set_serial", serial, "-days", 2,
                "-extfile", d / f"{name}.ext", "-out", d / f"{name}.pem")
    return d


def triggered_trace(n: int):
    """A trace with a trigger span, recorded but not sent: (trace id, spans)."""
    recorder = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "secured"}))
    tp.add_span_processor(SimpleSpanProcessor(recorder))
    tracer = tp.get_tracer("test.security")
    root = make_trace(tracer, n)
    send_trigger(tracer, root.trace_id, root.span_id)
    tp.shutdown()
    return f"{root.trace_id:032x}", recorder.get_finished_spans()


def exported_ids(gateway) -> set:
    return {span["traceId"] for _, _, span in gateway.exported()}


def fetch(url: str, headers=None, body=None, context=None):
    """(status, headers, body) of one HTTP request; errors are answers too."""
    method = "POST" if body is not None else "GET"
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def spans_received(admin_url: str, context=None) -> float:
    status, _, text = fetch(admin_url + "/metrics", ADMIN, context=context)
    assert status == 200, text
    for line in text.decode().splitlines():
        if line.startswith("wbpf_gateway_spans_received_total "):
            return float(line.split()[1])
    raise AssertionError("no spans_received counter")


@pytest.fixture
def auth_gateway(tmp_path):
    gw = Gateway(tmp_path, retention="30s", security=AUTH)
    yield gw
    gw.stop()


def exporter(gateway, protocol: str, headers=None):
    if protocol == "grpc":
        return GrpcSpanExporter(endpoint=gateway.grpc_endpoint, insecure=True, headers=headers,
                                timeout=5)
    return HttpSpanExporter(endpoint=gateway.http_url, headers=headers, timeout=5)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_exporter_without_the_token_is_refused_and_with_it_accepted(auth_gateway, protocol):
    refused_id, refused = triggered_trace(1)
    wrong_id, wrong = triggered_trace(2)
    kept_id, kept = triggered_trace(3)

    assert exporter(auth_gateway, protocol).export(refused) == SpanExportResult.FAILURE
    wrong_token = {"authorization": "Bearer not-the-token"}
    assert exporter(auth_gateway, protocol, wrong_token).export(wrong) == SpanExportResult.FAILURE
    assert exporter(auth_gateway, protocol, BEARER).export(kept) == SpanExportResult.SUCCESS

    assert wait_for(lambda: kept_id in exported_ids(auth_gateway)), "the triggered trace"
    assert exported_ids(auth_gateway) == {kept_id}, "refused traces were exported"
    assert spans_received(auth_gateway.admin_url) == len(kept), "refused spans were stored"

    log = (auth_gateway.config_path.parent / "gateway.log").read_text()
    assert "refused a request without valid credentials" in log
    for secret in (TOKEN, "not-the-token", ADMIN_TOKEN):
        assert secret not in log, "a credential was logged"


def test_http_refusal_is_401_with_a_challenge_and_a_status_body(auth_gateway):
    _, spans = triggered_trace(4)
    body = encode_spans(spans).SerializeToString()
    proto = {"Content-Type": "application/x-protobuf"}

    status, headers, answer = fetch(auth_gateway.http_url, proto, body)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="wbpf"'
    rpc_status = status_pb2.Status.FromString(answer)
    assert (rpc_status.code, rpc_status.message) == (
        16, "missing credentials: this listener requires authentication")

    wrong = {"Content-Type": "application/json", "Authorization": "Bearer wrong"}
    status, headers, answer = fetch(auth_gateway.http_url, wrong, b"{}")
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="wbpf", error="invalid_token"'
    assert json.loads(answer) == {"code": 16, "message": "invalid credentials"}

    status, _, _ = fetch(auth_gateway.http_url, {**proto, "X-Api-Key": API_KEY}, body)
    assert status == 200, "the API key is accepted as well as the bearer token"


def test_grpc_refusal_is_unauthenticated(auth_gateway):
    _, spans = triggered_trace(5)
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(
        encode_spans(spans).SerializeToString())
    with grpc.insecure_channel(f"127.0.0.1:{auth_gateway.grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Export(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "missing credentials" in refused.value.details()

        stub.Export(request, timeout=10, metadata=[("x-api-key", API_KEY)])


PROBE_TOKEN = "probe-token-7e2a11"
PROBE = {"authorization": f"Bearer {PROBE_TOKEN}"}
TRIGGER_AUTH = {
    "receivers": {
        "auth": {"bearer_token": TOKEN},
        "trigger_auth": {"bearer_token": PROBE_TOKEN},
    },
    "admin": {"auth": {"bearer_token": ADMIN_TOKEN}},
}


@pytest.fixture
def trigger_auth_gateway(tmp_path):
    gw = Gateway(tmp_path, retention="30s", security=TRIGGER_AUTH)
    yield gw
    gw.stop()


def export_raw(gateway, protocol: str, spans, headers: dict):
    """Exports `spans` as one request; returns the OTLP response (raises on a refusal)."""
    request = encode_spans(spans)
    if protocol == "grpc":
        with grpc.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            return stub.Export(request, timeout=10, metadata=list(headers.items()))
    proto = {"Content-Type": "application/x-protobuf", **headers}
    status, _, answer = fetch(gateway.http_url, proto, request.SerializeToString())
    assert status == 200, (status, answer)
    return trace_service_pb2.ExportTraceServiceResponse.FromString(answer)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_only_the_probes_credentials_send_trigger_spans(trigger_auth_gateway, protocol):
    gateway = trigger_auth_gateway
    trace_id, spans = triggered_trace(11)
    triggers = [s for s in spans if s.attributes.get("wbpf.trigger")]
    assert len(triggers) == 1 and len(spans) > 2

    # A client holding the clients' token: its spans are kept, its trigger span refused.
    answer = export_raw(gateway, protocol, spans, BEARER)
    assert answer.partial_success.rejected_spans == 1, answer
    message = answer.partial_success.error_message
    assert "wbpf.trigger" in message and "receivers.trigger_auth" in message, message
    assert spans_received(gateway.admin_url) == len(spans) - 1
    # The buffer sweeps every second; a trigger that counted would have released the trace.
    assert not wait_for(lambda: exported_ids(gateway), timeout=2), "a refused trigger counted"

    # The probe's token alone admits the request, and its trigger span releases the trace.
    answer = export_raw(gateway, protocol, triggers, PROBE)
    assert not answer.HasField("partial_success"), answer
    assert wait_for(lambda: trace_id in exported_ids(gateway)), "the probe's trigger"
    assert len(gateway.exported()) == len(spans), "the client's spans and the trigger span"

    # The SDK's exporter with the probe's token, as the node probe sends.
    other_id, other = triggered_trace(12)
    assert exporter(gateway, protocol, PROBE).export(other) == SpanExportResult.SUCCESS
    assert wait_for(lambda: other_id in exported_ids(gateway))


def test_admin_refuses_requests_without_the_token(auth_gateway, tmp_path):
    trace_id, spans = triggered_trace(6)
    assert exporter(auth_gateway, "http", BEARER).export(spans[:3]) == SpanExportResult.SUCCESS
    trigger = json.dumps({"trace_id": trace_id}).encode()

    for path, body in [("/metrics", None), ("/v1/triggers", trigger), ("/v1/compare", None)]:
        status, headers, answer = fetch(auth_gateway.admin_url + path, body=body)
        assert status == 401, (path, answer)
        assert headers["WWW-Authenticate"] == 'Bearer realm="wbpf"'
        assert "missing credentials" in json.loads(answer)["message"]
    status, _, _ = fetch(auth_gateway.admin_url + "/metrics", BEARER)
    assert status == 401, "the OTLP token does not open the admin port"
    assert exported_ids(auth_gateway) == set(), "a refused trigger released the trace"

    status, _, answer = fetch(auth_gateway.admin_url + "/v1/triggers", ADMIN, trigger)
    assert status == 202, answer
    assert wait_for(lambda: trace_id in exported_ids(auth_gateway))

    # `wbpf compare` sends its --token; this gateway compares nothing, hence 404 once admitted.
    compare = [BIN_DIR / "wbpf", "compare", "--admin", f"127.0.0.1:{auth_gateway.admin_port}",
               "--json", "--svg", tmp_path / "compare.svg"]
    env = {k: v for k, v in os.environ.items() if k != "WBPF_ADMIN_TOKEN"}
    refused = subprocess.run(compare, capture_output=True, text=True, timeout=30, env=env)
    assert "answered 401" in refused.stderr, refused.stderr
    admitted = subprocess.run([*compare, "--token", ADMIN_TOKEN], capture_output=True,
                              text=True, timeout=30, env=env)
    assert "answered 404" in admitted.stderr, admitted.stderr


@pytest.fixture(autouse=True)
def no_ca_bundle_override(monkeypatch):
    """requests prefers these variables to the exporter's `certificate_file`: unset them."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def tls_gateway(tmp_path, certs):
    tls = {"cert_file": str(certs / "server.pem"), "key_file": str(certs / "server.key")}
    gw = Gateway(tmp_path, retention="30s",
                 security={"receivers": {"tls": tls}, "admin": {"tls": tls, **AUTH["admin"]}})
    yield gw
    gw.stop()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_tls_client_trusting_the_ca_is_accepted_and_a_plaintext_client_fails(
    tls_gateway, certs, protocol
):
    plain_id, plain = triggered_trace(7)
    kept_id, kept = triggered_trace(8)
    if protocol == "grpc":
        plaintext = GrpcSpanExporter(endpoint=tls_gateway.grpc_endpoint, insecure=True,
                                     timeout=2)
        credentials = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes())
        secure = GrpcSpanExporter(endpoint=f"https://127.0.0.1:{tls_gateway.grpc_port}",
                                  credentials=credentials, timeout=10)
    else:
        plaintext = HttpSpanExporter(endpoint=tls_gateway.http_url, timeout=2)
        secure = HttpSpanExporter(endpoint=tls_gateway.http_url.replace("http:", "https:"),
                                  certificate_file=str(certs / "ca.pem"), timeout=10)

    assert plaintext.export(plain) == SpanExportResult.FAILURE
    assert secure.export(kept) == SpanExportResult.SUCCESS
    assert wait_for(lambda: kept_id in exported_ids(tls_gateway))
    assert plain_id not in exported_ids(tls_gateway)

    # The admin port serves TLS too, and still asks for its token.
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    admin = tls_gateway.admin_url.replace("http:", "https:")
    assert spans_received(admin, context) == len(kept)
    status, _, _ = fetch(admin + "/metrics", context=context)
    assert status == 401
    with pytest.raises((OSError, http.client.HTTPException)):
        fetch(tls_gateway.admin_url + "/metrics", ADMIN)


@pytest.fixture
def mtls_gateway(tmp_path, certs):
    tls = {
        "cert_file": str(certs / "server.pem"),
        "key_file": str(certs / "server.key"),
        "client_ca_file": str(certs / "ca.pem"),
    }
    gw = Gateway(tmp_path, retention="30s", security={"receivers": {"tls": tls}})
    yield gw
    gw.stop()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_mtls_refuses_a_client_without_a_certificate(mtls_gateway, certs, protocol):
    anonymous_id, anonymous = triggered_trace(9)
    kept_id, kept = triggered_trace(10)
    ca, key, cert = (certs / name for name in ("ca.pem", "client.key", "client.pem"))
    if protocol == "grpc":
        endpoint = f"https://127.0.0.1:{mtls_gateway.grpc_port}"
        without = GrpcSpanExporter(
            endpoint=endpoint, credentials=grpc.ssl_channel_credentials(ca.read_bytes()),
            timeout=2)
        with_cert = GrpcSpanExporter(
            endpoint=endpoint,
            credentials=grpc.ssl_channel_credentials(
                ca.read_bytes(), key.read_bytes(), cert.read_bytes()),
            timeout=10)
    else:
        endpoint = mtls_gateway.http_url.replace("http:", "https:")
        without = HttpSpanExporter(endpoint=endpoint, certificate_file=str(ca), timeout=2)
        with_cert = HttpSpanExporter(endpoint=endpoint, certificate_file=str(ca),
                                     client_key_file=str(key),
                                     client_certificate_file=str(cert), timeout=10)

    assert without.export(anonymous) == SpanExportResult.FAILURE
    assert with_cert.export(kept) == SpanExportResult.SUCCESS
    assert wait_for(lambda: kept_id in exported_ids(mtls_gateway))
    assert anonymous_id not in exported_ids(mtls_gateway)


def test_unusable_tls_files_are_reported_with_their_key_and_path(tmp_path, certs):
    missing = tmp_path / "missing.pem"
    config = tmp_path / "missing.yaml"
    config.write_text(f"receivers:\n  tls:\n    cert_file: {missing}\n    key_file: {missing}\n")
    result = subprocess.run([BIN_DIR / "wbpf", "validate", config], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode != 0
    assert f"{config}:3:5: receivers.tls.cert_file: cannot read {missing}" in result.stderr

    # A key of another certificate: readable files, refused at start, naming the key file.
    config = tmp_path / "mismatch.yaml"
    config.write_text(
        f"receivers:\n  grpc: 127.0.0.1:0\n  http: 127.0.0.1:0\n"
        f"  tls: {{cert_file: {certs / 'server.pem'}, key_file: {certs / 'client.key'}}}\n"
        f"admin: null\nstorage: {{path: {tmp_path / 'db'}}}\n")
    result = subprocess.run([BIN_DIR / "wbpf", "gateway", "--config", config],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"receivers.tls.key_file: {certs / 'client.key'}: unusable with" in output, output
