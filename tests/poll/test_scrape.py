"""Direct scrape against loopback fake ztunnels: deltas, reset, late series, dead/slow/garbage targets."""

from __future__ import annotations

import pytest

from app.correlate.identity import NodeIdentity
from app.domain import L4Sample, Reporter
from app.poll.poller import L4Poller
from app.poll.scrape import DirectScrape, static_targets, waypoint_target
from app.settings import Settings
from tests.poll.fake_ztunnel import FakeZtunnel, destination, series_labels, serve, source

A_TO_B = series_labels("source", **source("productpage-v1"), **destination("details-v1"))
C_TO_B = series_labels("source", **source("ratings-v1"), **destination("details-v1"))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make_poller(
    urls: list[str], clock: Clock, timeout_s: float = 2.0
) -> tuple[L4Poller, list[L4Sample]]:
    emitted: list[L4Sample] = []
    scrape = DirectScrape(
        static_targets(urls), interval_s=10, timeout_s=timeout_s, identity=NodeIdentity()
    )
    return L4Poller(scrape, emitted.extend, interval_s=10, mode="scrape", clock=clock), emitted


async def test_first_scrape_baselines_then_deltas_reset_and_late_series() -> None:
    fake, clock = FakeZtunnel(), Clock()
    fake.add(A_TO_B, opened=5, closed=5, req=1000, resp=9000)
    with serve(fake) as url:
        poller, emitted = make_poller([url], clock)
        assert await poller.poll_once() == []  # baseline only
        fake.add(A_TO_B, opened=2, closed=1, req=30, resp=400)
        clock.now += 10
        (s,) = await poller.poll_once()
        assert (s.connections_opened, s.connections_closed, s.bytes_sent, s.bytes_received) == (
            2,
            1,
            30,
            400,
        )
        assert (s.start_s, s.end_s, s.reporter) == (1000.0, 1010.0, Reporter.SOURCE)
        # ztunnel restarts: counters restart from zero, then see new traffic
        fake.reset()
        fake.add(A_TO_B, opened=1, req=7, resp=8)
        clock.now += 10
        (s,) = await poller.poll_once()
        assert (s.connections_opened, s.bytes_sent, s.bytes_received) == (1, 7, 8)
        # a series first seen after the first scrape counts whole
        fake.add(C_TO_B, opened=3, req=11, resp=12)
        clock.now += 10
        (s,) = await poller.poll_once()
        assert s.source.workload == "ratings-v1" and (s.connections_opened, s.bytes_sent) == (3, 11)
        clock.now += 10
        assert await poller.poll_once() == []  # nothing moved
        assert poller.readiness().ready and poller.readiness().detail["all_targets_healthy"]
        await poller.aclose()
    assert len(emitted) == 3


async def test_dead_slow_and_garbage_targets_do_not_stall_the_good_one() -> None:
    good, slow, garbage, clock = FakeZtunnel(), FakeZtunnel(), FakeZtunnel(garbage=True), Clock()
    good.add(A_TO_B, opened=1)
    dead = "http://127.0.0.1:9/metrics"  # discard port: connection refused
    with serve(good) as g, serve(slow, delay_s=30) as s, serve(garbage) as b:
        poller, _ = make_poller([g, s, b, dead], clock, timeout_s=0.5)
        assert poller.ztunnel_count().nodes == 0  # none known before the first poll
        await poller.poll_once()
        # /cost's ztunnel nodes: every target, up or not, and it says so
        assert poller.ztunnel_count() == (4, "ztunnel endpoints scraped (up or not)")
        good.add(A_TO_B, opened=4)
        clock.now += 10
        samples = await poller.poll_once()
        assert [x.connections_opened for x in samples] == [4]
        state = poller.readiness()
        assert state.ready and not state.detail["all_targets_healthy"]
        targets = state.detail["targets"]
        assert targets[g]["healthy"] and targets[g]["last_success_s"] == clock.now
        assert "timed out" in targets[s]["last_error"]
        assert "not Prometheus text" in targets[b]["last_error"]
        assert targets[dead]["consecutive_failures"] == 2 and targets[dead]["last_error"]
        # backed off: not retried before its next attempt time, exponentially
        assert targets[dead]["next_attempt_s"] == clock.now + 20
        clock.now += 1
        await poller.poll_once()
        assert poller.readiness().detail["targets"][dead]["consecutive_failures"] == 2
        families = {f.name: f for f in poller.collect()}
        results = {
            (dict(x.labels)["target"], dict(x.labels)["result"]): x.value
            for x in families["meshstitch_poll_scrapes"].samples
        }
        assert (
            results[(g, "ok")] == 3
            and results[(s, "timeout")] == 2
            and results[(b, "invalid")] == 2
        )
        assert results[(dead, "error")] == 2
        assert families["meshstitch_poll_series"].samples[0].value == 4
        await poller.aclose()


def test_background_thread_start_stop() -> None:
    fake = FakeZtunnel()
    with serve(fake) as url:
        poller, _ = make_poller([url], Clock())
        assert not poller.readiness().ready
        poller.start()
        try:
            assert poller.running
        finally:
            poller.stop()
        assert not poller.running


def test_a_named_waypoint_target_names_its_waypoint_and_bad_names_are_refused() -> None:

    plain = waypoint_target("http://10.0.0.9:15020/stats/prometheus")
    assert (plain.url, plain.via) == ("http://10.0.0.9:15020/stats/prometheus", "")
    named = waypoint_target("bookinfo/bookinfo-pods=http://10.0.0.9:15020/stats/prometheus")
    assert (named.url, named.via) == (
        "http://10.0.0.9:15020/stats/prometheus",
        "bookinfo/bookinfo-pods",
    )
    # a URL whose query has '=' is still a plain URL
    query = waypoint_target("http://10.0.0.9:15020/stats/prometheus?usedonly=1")
    assert query.via == "" and query.url.endswith("usedonly=1")
    for bad in ("bookinfo=http://x", "a/b/c=http://x", "/w=http://x", "ns/w="):
        with pytest.raises(ValueError, match="waypoint target"):
            Settings(waypoint_targets=bad)
