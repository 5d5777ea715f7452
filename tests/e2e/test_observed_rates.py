"""Rates divide by the part of the window meshstitch could observe (issue 15): a user who starts
meshstitch, sends 50 s of traffic and asks for "the last 5 minutes" sees the traffic's own rate,
not a sixth of it. The simulator's truth knows how many requests it sent in those 50 s."""

from __future__ import annotations

import httpx

from app.settings import Settings
from app.sim import bookinfo
from app.sim.harness import SimulatedRun, aligned_start, serve_meshstitch

TRAFFIC_S = 50.0
WINDOW_S = 300.0


def test_fifty_seconds_of_traffic_over_a_five_minute_window_show_the_traffic_rate(
    settings: Settings,
) -> None:
    with serve_meshstitch(settings) as running:
        run = SimulatedRun(running, bookinfo(), seed=5, protocol="grpc", tick_s=TRAFFIC_S)
        try:
            start = aligned_start(1, TRAFFIC_S, settings.bucket_s)
            run.run_ticks(1, start)
            assert run.settle(), running.pipeline.stats.last_flush_error
            end = start + TRAFFIC_S
            params = {"from": str(int((end - WINDOW_S) * 1000)), "to": str(int(end * 1000))}
            graph = httpx.get(
                f"{running.base_url}/graph",
                params={**params, "service": "productpage", "depth": "2"},
                timeout=60,
            ).json()
            services = httpx.get(f"{running.base_url}/services", params=params, timeout=60).json()
            table = httpx.get(
                f"{running.base_url}/graph",
                params={**params, "service": "productpage", "format": "table"},
                timeout=60,
            ).text
        finally:
            run.stop()

    truth = run.sim.truth.edge("bookinfo/productpage", "bookinfo/reviews")
    assert truth is not None and truth.requests > 100
    window = graph["window"]
    assert window["seconds"] == WINDOW_S
    # The store's first data is the first request's end (whole seconds): within the traffic.
    assert TRAFFIC_S - 2 <= window["observed_seconds"] <= TRAFFIC_S, window
    edge = next(e for e in graph["edges"] if e["target"] == "bookinfo/reviews")
    assert edge["l7"]["requests"] == truth.requests
    assert edge["l7"]["rps"] == round(truth.requests / window["observed_seconds"], 4)
    assert edge["l7"]["rps"] > 5 * truth.requests / WINDOW_S  # not diluted by unobserved time
    reviews = next(s for s in services["services"] if s["id"] == "bookinfo/reviews")
    assert services["window"]["observed_seconds"] == window["observed_seconds"]
    incoming = sum(
        e["l7"]["requests"] for e in graph["edges"] if e["target"] == "bookinfo/reviews" and e["l7"]
    )
    assert reviews["rps_in"] == round(incoming / window["observed_seconds"], 4)
    assert f"over the observed {window['observed_seconds']:.0f} s of the 5 min window" in table
