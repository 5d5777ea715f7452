"""Waypoint request metrics through the real poller (`build_poller` with `waypoint_targets`)
against loopback waypoint pods serving `/stats/prometheus` in the shape of
tests/data/waypoint/waypoint-sample.prom: exact counts from increases, errors by cause, status
codes, bytes, latency buckets, a restarted pod, dead and garbage targets, sidecar series."""

from __future__ import annotations

import pytest

from app.correlate.identity import NodeIdentity
from app.domain import Endpoint, ErrorCause, L7MetricSample
from app.poll.poller import L4Poller, Polled, build_poller
from app.poll.scrape import WaypointScrape
from app.settings import Settings
from tests.poll.fake_waypoint import FakeWaypoint, call, serve_waypoint, summed
from tests.ports import free_port

OK = call()  # productpage-v1 → reviews-v2, 200, "-", as printed in the sample
NO_HEALTHY_UPSTREAM = call(response_code="503", response_flags="UH")
PLAIN_503 = call(response_code="503")
GRPC_UNAVAILABLE = call(response_code="200", request_protocol="grpc", grpc_response_status="14")
GRPC_OK = call(response_code="200", request_protocol="grpc", grpc_response_status="0")
TO_RATINGS = call("reviews-v2", "ratings-v1")
REVIEWS = Endpoint(
    "default",
    "reviews",
    "reviews-v2",
    principal="spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
)
PRODUCTPAGE = Endpoint(
    "default",
    "productpage",
    "productpage-v1",
    principal="spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
)


class Clock:
    def __init__(self) -> None:
        self.now = 2_000.0

    def __call__(self) -> float:
        return self.now


def make_poller(urls: list[str], clock: Clock) -> tuple[L4Poller, list[Polled]]:
    settings = Settings(waypoint_targets=",".join(urls), poll_interval_s=10, poll_timeout_s=2)
    emitted: list[Polled] = []
    poller = build_poller(settings, emitted.extend, NodeIdentity(), clock=clock)
    assert poller is not None and poller.mode == "scrape"
    assert isinstance(poller.source, WaypointScrape)  # only waypoints configured: no ztunnel
    return poller, emitted


Key = tuple[str, str, str]  # target service, status code, response flags


async def poll(poller: L4Poller, clock: Clock) -> dict[Key, L7MetricSample]:
    """One poll 10 s later; its samples by `Key`, each label set exactly once."""
    clock.now += 10
    samples = await poller.poll_once()
    by_key = {
        (s.target.service, s.status_code, s.response_flags): s
        for s in samples
        if isinstance(s, L7MetricSample)
    }
    assert len(by_key) == len(samples), samples
    return by_key


async def test_increases_are_exact_requests_errors_bytes_and_latency_buckets() -> None:
    fake, clock = FakeWaypoint(), Clock()
    # before the first scrape: history the poller cannot place in time, baselined only
    fake.observe(OK, 500, duration_ms=3, request_bytes=100, response_bytes=900)
    fake.observe(NO_HEALTHY_UPSTREAM, 7, duration_ms=0.2)
    with serve_waypoint(fake) as url:
        poller, emitted = make_poller([url], clock)
        assert await poll(poller, clock) == {}
        first_scrape_s = clock.now
        fake.observe(OK, 30, duration_ms=3, request_bytes=120, response_bytes=1000)
        fake.observe(OK, 8, duration_ms=40, request_bytes=120, response_bytes=5000)
        fake.observe(OK, 2, duration_ms=700, request_bytes=120, response_bytes=7)
        fake.observe(NO_HEALTHY_UPSTREAM, 3, duration_ms=0.2, response_bytes=19)
        fake.observe(PLAIN_503, 2, duration_ms=12, request_bytes=50)
        fake.observe(GRPC_UNAVAILABLE, 4, duration_ms=8)
        fake.observe(GRPC_OK, 6, duration_ms=8)
        fake.observe(TO_RATINGS, 5, duration_ms=2)
        got = await poll(poller, clock)
        await poller.aclose()

    assert set(got) == {
        ("reviews", "200", "-"),
        ("reviews", "503", "UH"),
        ("reviews", "503", "-"),
        ("reviews", "grpc:14", "-"),
        ("reviews", "grpc:0", "-"),
        ("ratings", "200", "-"),
    }, got
    ok = got[("reviews", "200", "-")]
    assert (ok.source, ok.target) == (PRODUCTPAGE, REVIEWS)
    assert (ok.start_s, ok.end_s) == (first_scrape_s, clock.now)
    assert (ok.requests, ok.error_cause, ok.response_flags, ok.protocol) == (40, None, "-", "http")
    # Envoy's `_sum` adds each value at its bin's midpoint (120 B -> 125): within 5 %
    assert (ok.request_bytes, ok.response_bytes) == (
        round(40 * summed(120)),
        round(30 * summed(1000) + 8 * summed(5000) + 2 * summed(7)),
    )
    # per-bucket increases keyed by `le` as Envoy prints it; the 500 baselined requests are not in
    assert ok.latency_buckets == (("5", 30), ("50", 8), ("1000", 2))
    assert ok.latency_sum_ms == pytest.approx(30 * summed(3) + 8 * summed(40) + 2 * summed(700))
    assert ok.mutual_tls and ok.via_waypoint == ""

    # two label sets answer 503: the response flag (UH) is the cause before the status code
    flagged, plain = got[("reviews", "503", "UH")], got[("reviews", "503", "-")]
    assert (flagged.requests, flagged.error_cause) == (3, ErrorCause.RESPONSE_FLAGS)
    assert flagged.response_bytes == round(3 * summed(19))
    assert flagged.latency_buckets == (("0.5", 3),)  # under 1 ms: recorded as 0
    assert (plain.requests, plain.error_cause) == (2, ErrorCause.HTTP_5XX)
    assert plain.request_bytes == round(2 * summed(50)) and plain.latency_buckets == (("25", 2),)

    grpc = got[("reviews", "grpc:14", "-")]
    assert (grpc.requests, grpc.error_cause, grpc.protocol) == (4, ErrorCause.GRPC, "grpc")
    grpc_ok = got[("reviews", "grpc:0", "-")]
    assert (grpc_ok.requests, grpc_ok.error_cause) == (6, None)  # status 0 is OK, code 200
    ratings = got[("ratings", "200", "-")]
    assert ratings.source.service == "reviews" and ratings.target.workload == "ratings-v1"
    assert (ratings.requests, ratings.latency_buckets) == (5, (("5", 5),))
    assert sum(s.requests for s in emitted if isinstance(s, L7MetricSample)) == 40 + 5 + 4 + 6 + 5


async def test_a_restarted_waypoint_counts_its_new_counters_whole_as_ztunnel_resets_do() -> None:
    fake, clock = FakeWaypoint(), Clock()
    fake.observe(OK, 100, duration_ms=3, request_bytes=10, response_bytes=20)
    with serve_waypoint(fake) as url:
        poller, _ = make_poller([url], clock)
        await poll(poller, clock)
        fake.observe(OK, 50, duration_ms=3, request_bytes=10, response_bytes=20)
        assert got_requests(await poll(poller, clock)) == {("reviews", "200", "-"): 50}
        # the pod restarts: every counter is lower than before, then counts new traffic
        fake.reset()
        fake.observe(OK, 4, duration_ms=3, request_bytes=11, response_bytes=21)
        fake.observe(OK, 1, duration_ms=40, request_bytes=11, response_bytes=21)
        after = await poll(poller, clock)
        ok = after[("reviews", "200", "-")]
        assert (ok.requests, ok.request_bytes, ok.response_bytes) == (
            5,
            round(5 * summed(11)),
            round(5 * summed(21)),
        )
        assert ok.latency_buckets == (("5", 4), ("50", 1))
        assert ok.latency_sum_ms == pytest.approx(4 * summed(3) + summed(40))
        assert poller.source.scraped[url].deltas.resets > 0  # type: ignore[attr-defined]
        # nothing moved: no samples, not the old totals again
        assert await poll(poller, clock) == {}
        await poller.aclose()


def got_requests(samples: dict[Key, L7MetricSample]) -> dict[Key, int]:
    return {key: s.requests for key, s in samples.items()}


async def test_garbage_and_dead_targets_are_reported_and_the_live_one_still_counts() -> None:
    good, garbage, clock = FakeWaypoint(), FakeWaypoint(garbage=True), Clock()
    good.observe(OK, 10)
    dead = f"http://127.0.0.1:{free_port()}/stats/prometheus"  # nothing listens there
    with serve_waypoint(good) as live, serve_waypoint(garbage) as bad:
        poller, _ = make_poller([dead, bad, live], clock)
        await poll(poller, clock)
        good.observe(OK, 12, request_bytes=3)
        got = await poll(poller, clock)
        assert got_requests(got) == {("reviews", "200", "-"): 12}
        assert got[("reviews", "200", "-")].request_bytes == round(12 * summed(3))
        state = poller.readiness()
        assert state.ready and state.detail["all_targets_healthy"] is False
        targets = state.detail["targets"]
        assert set(targets) == {dead, bad, live}
        assert targets[live]["healthy"] and targets[live]["last_success_s"] == clock.now
        assert not targets[bad]["healthy"]
        assert "not Prometheus text" in targets[bad]["last_error"]
        assert not targets[dead]["healthy"] and targets[dead]["last_error"]
        assert targets[dead]["consecutive_failures"] == 2
        # the garbage target recovers: it is baselined, then counts (no history replayed)
        garbage.garbage = False
        garbage.observe(TO_RATINGS, 1000)
        clock.now += 30  # past its back-off
        assert got_requests(await poll(poller, clock)) == {}
        garbage.observe(TO_RATINGS, 2)
        good.observe(OK, 1)
        assert got_requests(await poll(poller, clock)) == {
            ("reviews", "200", "-"): 1,
            ("ratings", "200", "-"): 2,
        }
        assert poller.readiness().detail["targets"][bad]["healthy"] is True
        await poller.aclose()


async def test_sidecar_reported_series_are_not_the_waypoints_view_and_are_ignored() -> None:
    fake, clock = FakeWaypoint(), Clock()
    with serve_waypoint(fake) as url:
        poller, emitted = make_poller([url], clock)
        await poll(poller, clock)
        for reporter in ("source", "destination"):
            fake.observe(call(reporter=reporter), 1000, request_bytes=5)
            fake.observe(call("productpage-v1", "details-v1", reporter=reporter), 700)
            fake.observe(call(reporter=reporter, response_code="500"), 300)
        fake.observe(OK, 9, request_bytes=2)
        got = await poll(poller, clock)
        assert got_requests(got) == {("reviews", "200", "-"): 9}
        assert got[("reviews", "200", "-")].request_bytes == 18
        # a poll where only sidecar series move emits nothing
        fake.observe(call(reporter="source"), 50)
        assert await poll(poller, clock) == {}
        await poller.aclose()
    assert [s.requests for s in emitted if isinstance(s, L7MetricSample)] == [9]
