"""Real servers and countable traffic for the hardening tests.

`serve_app` runs a full `create_app` (lifespan on: pipeline, gRPC server, poller) under uvicorn
in a thread on a socket bound first; `serve_process` runs `python -m app serve` with its output in
a file. `waypoint_request` builds root waypoint spans, each of which is exactly one request on an
edge, so `requests_in_store` (the sum over /edges) must equal the spans acknowledged.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from app.main import create_app
from app.settings import Settings
from tests.ports import listening_socket

ROOT = Path(__file__).resolve().parents[2]
PROTOBUF = {"content-type": "application/x-protobuf"}
SERVICES = ("reviews", "ratings", "details", "productpage")
PEERS = ("10.42.0.11", "10.42.0.12", "10.42.1.13")
STARTUP_S = 60.0


@dataclass
class Served:
    app: FastAPI
    url: str
    server: uvicorn.Server

    @property
    def grpc_port(self) -> int:
        return int(self.app.state.grpc_port)


@contextmanager
def serve_app(settings: Settings, app: FastAPI | None = None) -> Iterator[Served]:
    """Serve `create_app(settings)` with its lifespan until the block ends (then a clean
    shutdown: the pipeline writes everything it accepted)."""
    app = app or create_app(settings)
    sock = listening_socket(512)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="on", ws="none", log_level="warning", access_log=False, backlog=512
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_S
    while not server.started:  # bounded: the lifespan runs migrations, then serving starts
        assert thread.is_alive(), "uvicorn stopped during startup"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Served(app, f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down"


def cli_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHSTITCH_")}
    env.update({f"MESHSTITCH_{k.upper()}": v for k, v in settings.items()})
    return env


@contextmanager
def serve_process(env: Mapping[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m app serve`, output (stdout and stderr) appended to `log_path`; yields once
    uvicorn has announced its socket. Killed at exit if still running."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"],
            cwd=ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_S
        while "Uvicorn running on" not in log_path.read_text(errors="replace"):
            assert proc.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _waypoint_export() -> tuple[ExportTraceServiceRequest, Any]:
    """An export request from one waypoint, and the scope its spans go in."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(
        key="service.name", value=AnyValue(string_value="waypoint.default")
    )
    return request, resource_spans.scope_spans.add()


def _add_waypoint_span(
    scope: Any, rng: random.Random, end: int, trace_id: bytes, name: str, url: str, cluster: str
) -> None:
    """One root waypoint SERVER span with Envoy's tags (bench/ingest.py's shape)."""
    pb_span = scope.spans.add(
        trace_id=trace_id,
        span_id=rng.randbytes(8),
        name=name,
        kind=2,
        start_time_unix_nano=end - rng.randrange(500_000, 40_000_000),
        end_time_unix_nano=end,
    )
    tags = {
        "node_id": "waypoint~10.42.0.9~waypoint-6b9f7c7d9-abcde.default~default.svc.cluster.local",
        "http.url": url,
        "http.method": "GET",
        "peer.address": f"{rng.choice(PEERS)}:{rng.randrange(30_000, 60_000)}",
        "response_flags": "-",
        "upstream_cluster": cluster,
        "http.status_code": rng.choice(("200", "200", "200", "503")),
        "component": "proxy",
        "istio.canonical_service": "waypoint",
        "istio.namespace": "default",
    }
    pb_span.attributes.extend(
        KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in tags.items()
    )


def waypoint_request(
    spans: int,
    rng: random.Random,
    *,
    end_ns: int | None = None,
    trace_ids: list[bytes] | None = None,
) -> bytes:
    """An OTLP export of `spans` root waypoint SERVER spans (no parent: each resolves at once to
    one request unknown/<peer> -> default/<service>), on at most 12 edges."""
    request, scope = _waypoint_export()
    end = end_ns or time.time_ns() - 1_000_000_000
    for i in range(spans):
        host = f"{rng.choice(SERVICES)}.default.svc.cluster.local"
        trace_id = trace_ids[i] if trace_ids else rng.randbytes(16)
        url, cluster = f"http://{host}:9080/items/{i}", f"inbound-vip|9080|http|{host}"
        _add_waypoint_span(scope, rng, end, trace_id, f"{host}:9080/*", url, cluster)
    return request.SerializeToString()


def edges(
    url: str, headers: Mapping[str, str] | None = None, **params: str
) -> list[dict[str, Any]]:
    query = {"window": "6h", "limit": "50000", **params}
    response = httpx.get(f"{url}/edges", params=query, headers=dict(headers or {}), timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["edges"])


def requests_in_store(url: str, headers: Mapping[str, str] | None = None) -> int:
    return sum(e["l7"]["requests"] for e in edges(url, headers) if e["l7"])


POLL_INTERVAL_S = 0.1
POLLER_WAIT_S = 30.0


def poll_settings(database_url: str, **targets: str) -> Settings:
    """Settings for a served app that polls the given targets fast (`ztunnel_targets=…`,
    `waypoint_targets=…`)."""
    return Settings(
        database_url=database_url,
        host="127.0.0.1",
        http_port=0,
        grpc_port=0,
        poll_interval_s=POLL_INTERVAL_S,
        poll_timeout_s=10,
        **targets,  # type: ignore[arg-type]
    )


def wait_for_poller(url: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Bounded polling of /readyz (the poller runs on its own thread and clock) until `check`
    holds for its poller part; every answer on the way is a 200."""
    deadline = time.monotonic() + POLLER_WAIT_S
    while True:
        report = httpx.get(f"{url}/readyz", timeout=10)
        assert report.status_code == 200, report.text
        poller: dict[str, Any] = report.json()["parts"]["poller"]
        if check(poller):
            return poller
        assert time.monotonic() < deadline, report.text
        time.sleep(POLL_INTERVAL_S)


def live_and_dead(live: str, dead: str) -> Callable[[dict[str, Any]], bool]:
    """The poller has scraped `live` and failed `dead` at least once."""
    return lambda p: (
        p["targets"].get(live, {}).get("healthy") is True
        and p["targets"].get(dead, {}).get("consecutive_failures", 0) > 0
    )


def many_destinations_request(spans: int, rng: random.Random, *, first: int = 0) -> bytes:
    """Like `waypoint_request`, but span i calls its own destination: in-mesh
    `svc-<i>.default.svc.cluster.local` (even i) or external `bucket-<i>.s3.amazonaws.com`
    (odd i), as a misconfigured client or egress to many hosts would."""
    request, scope = _waypoint_export()
    end = time.time_ns() - 1_000_000_000
    for i in range(first, first + spans):
        host = (
            f"svc-{i}.default.svc.cluster.local" if i % 2 == 0 else f"bucket-{i}.s3.amazonaws.com"
        )
        url, cluster = f"https://{host}/items/{i}", f"outbound|443||{host}"
        _add_waypoint_span(scope, rng, end, rng.randbytes(16), f"{host}:443/*", url, cluster)
    return request.SerializeToString()
