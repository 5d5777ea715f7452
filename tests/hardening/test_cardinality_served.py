"""Runaway cardinality through a served app: past the caps traffic is counted under overflow
names, every request still counted, and the overflow is visible where operators look."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.settings import Settings
from tests.hardening.support import PROTOBUF, many_destinations_request, serve_app

SPANS = 600


def _all_edges(url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset: int | None = 0
    for _ in range(SPANS):  # bounded: a page holds at least one edge
        if offset is None:
            return out
        body = httpx.get(
            f"{url}/edges", params={"window": "1h", "limit": 25, "offset": offset}, timeout=30
        ).json()
        out.extend(body["edges"])
        offset = body["page"]["next_offset"]
    raise AssertionError("pages did not end")


def test_overflow_conserves_requests_and_is_reported(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        host="127.0.0.1",
        http_port=0,
        grpc_port=0,
        max_nodes_per_window=40,
        max_edges_per_window=60,
        max_external_hosts_per_namespace=5,
    )
    rng = random.Random(18)
    with serve_app(settings) as served:
        for first in range(0, SPANS, 100):
            body = many_destinations_request(100, rng, first=first)
            response = httpx.post(
                f"{served.url}/v1/traces", content=body, headers=PROTOBUF, timeout=30
            )
            assert response.status_code == 200
        assert served.app.state.pipeline.flush(drain_pairing=True)

        edges = _all_edges(served.url)
        assert sum(e["l7"]["requests"] for e in edges if e["l7"]) == SPANS
        service_edges = {(e["source"], e["target"]) for e in edges}
        assert len(service_edges) <= 60 + 10 + 1  # the cap, its reserve, the mesh-wide edge
        targets = {e["target"] for e in edges}
        assert "default/__overflow__" in targets
        assert "external/*.s3.amazonaws.com" in targets  # grouped before overflowing

        graph = httpx.get(f"{served.url}/graph", params={"window": "1h"}, timeout=30).json()
        kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
        assert kinds["default/__overflow__"] == "overflow"

        ready = httpx.get(f"{served.url}/readyz", timeout=30)
        assert ready.status_code == 200  # overflow loses nothing: still ready
        cardinality = ready.json()["parts"]["cardinality"]
        assert cardinality["overflowing"] is True
        assert cardinality["overflow_requests"] > 0
        sender = cardinality["top_senders"][0]["name"]
        assert sender.startswith("unknown/10.42.")  # the waypoint's unattributed callers

        text = httpx.get(f"{served.url}/metrics", timeout=30).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        counted = {
            s.labels["input"]: s.value for s in families["meshstitch_cardinality_overflow"].samples
        }
        assert counted["l7_observation"] == cardinality["overflow_requests"]

        overflowed = next(e["source"] for e in edges if e["target"] == "default/__overflow__")
        triage = httpx.get(
            f"{served.url}/triage", params={"service": overflowed, "window": "1h"}, timeout=30
        )
        assert triage.status_code == 200, triage.text
        findings = [f for f in triage.json()["findings"] if f["kind"] == "cardinality_overflow"]
        assert findings and findings[0]["evidence"]["sender"] == overflowed
