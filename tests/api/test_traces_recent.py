"""`/traces/{id}` through the real app: every exemplar trace from the store, any recent trace
from the process's ring, and only exemplar traces once the ring is off or restarted."""

from __future__ import annotations

import random
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.settings import Settings
from tests.hardening.support import PROTOBUF, waypoint_request

SPANS = 200  # on at most 12 edges: most traces are not an exemplar of theirs


def _send(client: TestClient, trace_ids: list[bytes]) -> None:
    body = waypoint_request(SPANS, random.Random(7), trace_ids=trace_ids)
    assert client.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    app: Any = client.app
    assert app.state.pipeline.flush()


def _exemplar_traces(client: TestClient) -> set[str]:
    edges = client.get("/edges", params={"window": "1h", "limit": "1000"}).json()["edges"]
    return {e["trace_id"] for edge in edges for e in edge["exemplars"]}


def _found(client: TestClient, trace_ids: list[bytes]) -> set[str]:
    return {t.hex() for t in trace_ids if client.get(f"/traces/{t.hex()}").status_code == 200}


def test_recent_traces_from_the_ring_exemplars_from_the_store(sqlite_url: str) -> None:
    rng = random.Random(1)
    trace_ids = [rng.randbytes(16) for _ in range(SPANS)]
    settings = Settings(database_url=sqlite_url, grpc_port=0)
    with TestClient(create_app(settings)) as client:
        _send(client, trace_ids)
        exemplars = _exemplar_traces(client)
        assert 0 < len(exemplars) < SPANS // 2
        assert _found(client, trace_ids) == {t.hex() for t in trace_ids}  # all, from the ring
        (hop,) = client.get(f"/traces/{trace_ids[0].hex()}").json()["hops"]
        assert hop["target"].startswith("default/")
        # What the ring holds and what was stored, in /readyz and /metrics alike.
        part = client.get("/readyz").json()["parts"]["trace_hops"]
        assert part["recent"] == part["seen_total"] == SPANS
        assert part["recent_capacity"] == settings.recent_trace_hops
        assert part["stored_total"] == len(exemplars)  # one hop per trace here
        text = client.get("/metrics").text
        metrics = {f.name: f for f in text_string_to_metric_families(text)}
        kept = {m.labels["kept"]: m.value for m in metrics["meshstitch_trace_hops"].samples}
        assert kept == {"recent": SPANS, "store": len(exemplars)}
        assert metrics["meshstitch_recent_trace_hops"].samples[0].value == SPANS
    # A new process (or another replica) has an empty ring: the store answers the exemplars.
    with TestClient(create_app(settings)) as client:
        assert _found(client, trace_ids) == exemplars
        assert _exemplar_traces(client) == exemplars


def test_without_a_ring_exactly_the_exemplar_traces_are_found(sqlite_url: str) -> None:
    rng = random.Random(2)
    trace_ids = [rng.randbytes(16) for _ in range(SPANS)]
    settings = Settings(database_url=sqlite_url, grpc_port=0, recent_trace_hops=0)
    with TestClient(create_app(settings)) as client:
        _send(client, trace_ids)
        exemplars = _exemplar_traces(client)
        assert exemplars and _found(client, trace_ids) == exemplars
