"""Bearer tokens end to end through `python -m app serve`: the API token (REST, /grafana) and the
OTLP token (HTTP and gRPC ingest) each open only their own door, probes stay open, and neither
secret appears anywhere in the server's output. CORS is off unless origins are named."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import grpc
import httpx
import pytest

from app.settings import Settings
from tests.hardening.support import (
    PROTOBUF,
    cli_env,
    serve_app,
    serve_process,
    waypoint_request,
)
from tests.ports import free_port

API_TOKEN = "api-7c1e0b6f-rest-secret"
OTLP_TOKEN = "otlp-93d2a4e8-ingest-secret"
WRONG_TOKEN = "guess-0f5b-not-a-token"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
ORIGIN = "https://grafana.example.com"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _grpc_code(port: int, body: bytes, token: str | None) -> grpc.StatusCode:
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            channel.unary_unary(EXPORT)(body, metadata=metadata, timeout=30)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def test_tokens_guard_their_own_doors_and_never_reach_the_logs(tmp_path: Path) -> None:
    http_port, grpc_port = free_port(), free_port()
    env = cli_env(
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        host="127.0.0.1",
        http_port=str(http_port),
        grpc_port=str(grpc_port),
        api_token=API_TOKEN,
        otlp_token=OTLP_TOKEN,
        log_level="debug",
    )
    log_path = tmp_path / "serve.log"
    body = waypoint_request(5, random.Random(1))
    with (
        serve_process(env, log_path) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as client,
    ):
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200

        for headers in ({}, _bearer(OTLP_TOKEN), _bearer(WRONG_TOKEN)):
            rest = client.get("/edges", headers=headers)
            assert rest.status_code == 401, rest.text
            assert rest.headers["content-type"] == "application/problem+json"
            assert rest.json()["status"] == 401
            assert rest.headers["www-authenticate"].startswith("Bearer")
            grafana = client.post("/grafana/metrics", json={}, headers=headers)
            assert grafana.status_code == 401
            assert grafana.headers["content-type"] == "application/json"
            assert set(grafana.json()) == {"message"}
        assert client.get("/edges", headers=_bearer(API_TOKEN)).status_code == 200
        assert client.get("/grafana", headers=_bearer(API_TOKEN)).status_code == 200

        for headers in ({}, _bearer(API_TOKEN), _bearer(WRONG_TOKEN)):
            otlp = client.post("/v1/traces", content=body, headers={**PROTOBUF, **headers})
            assert otlp.status_code == 401, otlp.text
        otlp = client.post("/v1/traces", content=body, headers={**PROTOBUF, **_bearer(OTLP_TOKEN)})
        assert otlp.status_code == 200, otlp.text

        for token in (None, API_TOKEN, WRONG_TOKEN):
            assert _grpc_code(grpc_port, body, token) is grpc.StatusCode.UNAUTHENTICATED
        assert _grpc_code(grpc_port, body, OTLP_TOKEN) is grpc.StatusCode.OK

        # CORS is off by default: a cross-origin request gets no allow-origin header.
        cross = client.get("/healthz", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in cross.headers
        preflight = client.options(
            "/edges", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
        )
        assert "access-control-allow-origin" not in preflight.headers

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)

    output = log_path.read_text(errors="replace")
    assert "meshstitch stopped" in output, output
    for secret in (API_TOKEN, OTLP_TOKEN, WRONG_TOKEN):
        assert secret not in output


@pytest.mark.parametrize("token", ["", API_TOKEN])
def test_cors_answers_only_the_named_origin(sqlite_url: str, token: str) -> None:
    settings = Settings(
        database_url=sqlite_url,
        host="127.0.0.1",
        http_port=0,
        grpc_port=0,
        cors_origins=f"{ORIGIN}, https://other.example",
        api_token=token,
    )
    with serve_app(settings) as served, httpx.Client(base_url=served.url, timeout=30) as client:
        preflight = client.options(
            "/edges",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        actual = client.get("/edges", headers={"Origin": ORIGIN, **_bearer(token)})
        assert actual.status_code == 200
        assert actual.headers["access-control-allow-origin"] == ORIGIN
        stranger = client.get(
            "/edges", headers={"Origin": "https://evil.example", **_bearer(token)}
        )
        assert "access-control-allow-origin" not in stranger.headers
