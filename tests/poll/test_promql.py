"""PromQL mode: a real Prometheus scraping a fake ztunnel; response handling and auth."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.correlate.identity import NodeIdentity
from app.domain import Reporter
from app.poll.poller import L4Poller
from app.poll.promql import PromQLError, PromQLSource, parse_vector
from tests.poll.fake_ztunnel import FakeZtunnel, destination, series_labels, serve, source
from tests.prometheus_server import instant, run_prometheus, wait_for


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, FakeZtunnel]]:
    fake = FakeZtunnel()
    with serve(fake) as url:
        target = url.split("//")[1].split("/")[0]
        config = (
            f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n"
            f"scrape_configs: [{{job_name: ztunnel, static_configs: [{{targets: ['{target}']}}]}}]\n"
        )
        with run_prometheus(config, tmp_path) as base:
            yield base, fake


@pytest.mark.prometheus
async def test_promql_increase_matches_counter_increases(
    prometheus: tuple[str, FakeZtunnel],
) -> None:
    base, fake = prometheus
    # with ztunnel ≥ 1.26's locality labels (src/proxy/metrics.rs `LocalityLabels`)
    zones = {
        "source_region": "r1",
        "source_zone": "r1-a",
        "destination_region": "r1",
        "destination_zone": "r1-b",
    }
    src = series_labels("source", **source("productpage-v1"), **destination("details-v1"), **zones)
    dst = series_labels(
        "destination", **source("productpage-v1"), **destination("details-v1"), **zones
    )
    for labels in (src, dst):
        fake.add(labels, opened=100, closed=90, req=10_000, resp=50_000)
    # Let Prometheus cover a whole bucket with scrapes before the traffic we measure.
    wait_for(base, "count_over_time(istio_tcp_connections_opened_total[1m])", 12, timeout_s=40)
    for labels in (src, dst):
        fake.add(labels, opened=40, closed=40, req=4_000, resp=20_000)
    wait_for(base, "min(istio_tcp_sent_bytes_total)", 70_000)
    wait_for(
        base,
        "min(count_over_time(istio_tcp_sent_bytes_total[1m]))",
        instant(base, "min(count_over_time(istio_tcp_sent_bytes_total[1m]))") + 3,
    )
    end = int(time.time())
    promql = PromQLSource(base, bucket_s=10, interval_s=5, timeout_s=5, identity=NodeIdentity())
    async with httpx.AsyncClient() as client:
        samples = await promql.bucket(client, end)
        with pytest.raises(PromQLError) as err:
            await promql.query(client, "sum(", end)
    assert err.value.error_type == "bad_data"
    assert sorted(s.reporter for s in samples) == [Reporter.DESTINATION, Reporter.SOURCE]
    for s in samples:
        # increase() extrapolates to the window edges: at most window/(window - 2 scrapes) high.
        for got, true in (
            (s.connections_opened, 40),
            (s.bytes_sent, 4_000),
            (s.bytes_received, 20_000),
        ):
            assert true <= got <= math.ceil(true * 10 / 8), (got, true)
        assert (
            s.mutual_tls
            and s.target.service == "details"
            and (s.start_s, s.end_s) == (end - 10, end)
        )
        (path,) = s.zones  # `sum by` keeps the zones: the bytes' path
        assert (path.client_zone, path.waypoint_zone, path.server_zone) == ("r1-a", "", "r1-b")
        assert path.bytes == s.bytes_sent + s.bytes_received


def test_parse_vector_shapes() -> None:
    ok = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"reporter": "source"}, "value": [1, "2.6"]},
                {"metric": {"reporter": "source"}, "value": [1, "NaN"]},
            ],
        },
    }
    assert parse_vector(ok) == [({"reporter": "source"}, 2.6)]
    assert parse_vector({"status": "success", "data": {"resultType": "vector", "result": []}}) == []
    with pytest.raises(PromQLError, match="timeout: query timed out"):
        parse_vector({"status": "error", "errorType": "timeout", "error": "query timed out"})
    with pytest.raises(PromQLError, match="matrix"):
        parse_vector({"status": "success", "data": {"resultType": "matrix", "result": []}})


@pytest.mark.parametrize(
    ("kwargs", "header"),
    [({"token": "t0k"}, "Bearer t0k"), ({"username": "u", "password": "p"}, "Basic dTpw")],
)
async def test_auth_headers_and_error_reporting(kwargs: dict[str, str], header: str) -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        return httpx.Response(
            503, json={"status": "error", "errorType": "unavailable", "error": "down"}
        )

    promql = PromQLSource(
        "http://prom",
        bucket_s=60,
        interval_s=15,
        timeout_s=1,
        identity=NodeIdentity(),
        settle_s=0,
        **kwargs,
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        assert await promql.poll(client, 1_000_000.0) == []
    assert seen == [header]
    assert not promql.state.healthy and "unavailable: down" in promql.state.last_error
    assert promql.next_end_s == 1_000_000 - 1_000_000 % 60  # the failed bucket is retried


def _target(url: str) -> str:
    return url.split("//")[1].split("/")[0]


@pytest.mark.prometheus
async def test_promql_counts_ztunnels_by_instance_and_says_when_it_cannot(tmp_path: Path) -> None:
    """/cost's "ztunnels per node" in PromQL mode: the distinct `instance` of ztunnel's
    `istio_build` gauge (printed with no traffic at all); one ztunnel scraped by two jobs counts
    once; a Prometheus that drops `istio_build` gives no count and a reason."""
    a, b, c = FakeZtunnel(), FakeZtunnel(), FakeZtunnel()
    with serve(a) as url_a, serve(b) as url_b, serve(c) as url_c:
        drop = "[{source_labels: [__name__], regex: istio_build, action: drop}]"
        config = (
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"- {{job_name: ztunnel, static_configs: [{{targets: ['{_target(url_a)}', "
            f"'{_target(url_b)}']}}]}}\n"
            f"- {{job_name: again, static_configs: [{{targets: ['{_target(url_a)}']}}]}}\n"
            f"- {{job_name: stripped, static_configs: [{{targets: ['{_target(url_c)}']}}], "
            f"metric_relabel_configs: {drop}}}\n"
        )
        with run_prometheus(config, tmp_path) as base:
            wait_for(base, 'count(istio_build{component="ztunnel"})', 3)  # a twice, b once
            # each scraped a few times, so all exist at a whole second already past
            wait_for(base, 'min(count_over_time(istio_build{component="ztunnel"}[1m]))', 3)
            wait_for(base, 'min(count_over_time(up{job="stripped"}[1m]))', 3)
            at = int(time.time())

            def source(job: str = "") -> PromQLSource:
                return PromQLSource(
                    base, bucket_s=10, interval_s=5, timeout_s=5, identity=NodeIdentity(), job=job
                )

            every, again, stripped = source(), source("again"), source("stripped")
            assert every.ztunnels.nodes is None and "not counted yet" in every.ztunnels.counted_from
            async with httpx.AsyncClient() as client:
                await every.bucket(client, at)  # a bucket's evaluation counts them
                one = await again.ztunnel_count(client, at)
                none = await stripped.ztunnel_count(client, at)
    assert every.ztunnels.nodes == 2  # a and b; c's istio_build is dropped
    assert "count by (instance)" in every.ztunnels.counted_from
    assert L4Poller(every, lambda _: None, interval_s=5, mode="promql").ztunnel_count() == (
        every.ztunnels
    )
    assert one.nodes == 1 and 'job=~"again"' in one.counted_from
    assert none.nodes is None and "is empty" in none.counted_from


@pytest.mark.parametrize(("timeout_s", "sent"), [(5.0, "5000ms"), (2.5, "2500ms"), (0.0001, "1ms")])
async def test_the_query_timeout_is_a_duration_prometheus_parses(
    timeout_s: float, sent: str
) -> None:
    """`poll_timeout_s` is a float: "5.0s" is refused by Prometheus (`bad_data: invalid
    parameter "timeout"`), so every query of PromQL mode failed with the default setting."""
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["timeout"])
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": []}}
        )

    promql = PromQLSource(
        "http://prom", bucket_s=60, interval_s=15, timeout_s=timeout_s, identity=NodeIdentity()
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        assert await promql.query(client, "up", 1_000_000.0) == []
    assert seen == [sent]
