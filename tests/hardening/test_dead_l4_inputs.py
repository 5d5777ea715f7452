"""A dead L4 input (a ztunnel target, or Prometheus) degrades the service, never stops it:
/readyz stays 200 and names the dead target, spans are still ingested, live targets still count."""

from __future__ import annotations

import random

import httpx

from app.settings import Settings
from tests.hardening.support import (
    POLL_INTERVAL_S,
    PROTOBUF,
    edges,
    live_and_dead,
    poll_settings,
    requests_in_store,
    serve_app,
    wait_for_poller,
    waypoint_request,
)
from tests.poll.fake_ztunnel import FakeZtunnel, destination, series_labels, serve, source
from tests.ports import free_port


def _ingest(url: str, posts: int) -> int:
    rng = random.Random(3)
    for _ in range(posts):
        response = httpx.post(
            f"{url}/v1/traces", content=waypoint_request(10, rng), headers=PROTOBUF, timeout=30
        )
        assert response.status_code == 200, response.text
    return posts * 10


def test_a_dead_ztunnel_target_beside_a_live_one(sqlite_url: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    fake = FakeZtunnel()
    labels = series_labels(
        "destination", **source("productpage-v1", "default"), **destination("reviews-v1", "default")
    )
    fake.add(labels, opened=1, closed=1, req=100, resp=200)
    with serve(fake) as live:
        settings = poll_settings(sqlite_url, ztunnel_targets=f"{dead},{live}")
        with serve_app(settings) as served:
            poller = served.app.state.poller
            state = wait_for_poller(served.url, live_and_dead(live, dead))
            targets = state["targets"]
            assert targets[dead]["healthy"] is False and targets[dead]["last_error"]
            assert targets[live]["healthy"] is True
            assert state["all_targets_healthy"] is False

            sent = _ingest(served.url, 5)
            emitted = poller.samples_emitted
            fake.add(labels, opened=4, closed=4, req=1000, resp=2000)
            wait_for_poller(served.url, lambda p: poller.samples_emitted > emitted)
            assert served.app.state.pipeline.flush(drain_pairing=True)
            assert requests_in_store(served.url) == sent
            l4 = [e["l4"] for e in edges(served.url) if e["l4"]]
            assert l4 and sum(x["connections_opened"] for x in l4) >= 4, l4


def test_a_dead_prometheus(sqlite_url: str) -> None:
    prometheus = f"http://127.0.0.1:{free_port()}"
    settings = Settings(
        database_url=sqlite_url,
        host="127.0.0.1",
        http_port=0,
        grpc_port=0,
        prometheus_url=prometheus,
        poll_interval_s=POLL_INTERVAL_S,
        poll_timeout_s=10,
    )
    with serve_app(settings) as served:
        state = wait_for_poller(
            served.url,
            lambda p: any(t["consecutive_failures"] for t in p["targets"].values()),
        )
        assert state["mode"] == "promql" and state["all_targets_healthy"] is False
        sent = _ingest(served.url, 5)
        assert served.app.state.pipeline.flush(drain_pairing=True)
        assert requests_in_store(served.url) == sent
