"""PromQL mode against a real Prometheus that scrapes the same ztunnel and the same waypoint under
two jobs (an annotation job beside deploy/prometheus's): every series is counted once, two
ztunnels with identical series still add up, `prometheus_job` restricts the jobs, and waypoint
request metrics come back as exact L7 samples."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.correlate.identity import NodeIdentity
from app.domain import ErrorCause, L4Sample, L7MetricSample
from app.poll.promql import PromQLSource, build_query
from tests.poll.fake_ztunnel import FakeZtunnel, destination, series_labels, serve, source
from tests.prometheus_server import instant, run_prometheus, wait_for

SAMPLE = (Path(__file__).parents[1] / "data" / "waypoint" / "waypoint-sample.prom").read_text()


@dataclass
class FakeWaypoint:
    """Serves tests/data/waypoint/waypoint-sample.prom with its counters filled in."""

    values: dict[str, float] = field(
        default_factory=lambda: {"ok": 0, "failed": 0, "fast": 0, "sum": 0.0}
    )

    def render(self) -> str:
        text = SAMPLE
        for name, value in self.values.items():
            text = text.replace("} {" + name + "}", f"}} {value}")
        return text


@dataclass
class Mesh:
    base: str
    a: FakeZtunnel
    b: FakeZtunnel
    waypoint: FakeWaypoint


def _host(url: str) -> str:
    return url.split("//")[1].split("/")[0]


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    a, b, waypoint = FakeZtunnel(), FakeZtunnel(), FakeWaypoint()
    with serve(a) as url_a, serve(b) as url_b, serve(waypoint) as url_w:  # type: ignore[arg-type]
        ta, tb, tw = _host(url_a), _host(url_b), _host(url_w)
        config = (
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - {{job_name: ztunnel, static_configs: [{{targets: ['{ta}', '{tb}']}}]}}\n"
            # the same ztunnel A and the same waypoint again, as an annotation job would
            f"  - {{job_name: annotations, static_configs: [{{targets: ['{ta}', '{tw}']}}]}}\n"
            f"  - {{job_name: waypoints, static_configs: [{{targets: ['{tw}']}}]}}\n"
        )
        with run_prometheus(config, tmp_path) as base:
            yield Mesh(base, a, b, waypoint)


def _within(got: int, true: int) -> bool:
    """increase() extrapolates to the window's edges: at most window/(window - 2 scrapes) high."""
    return true <= got <= math.ceil(true * 10 / 8)


def test_queries_take_the_max_over_the_dedupe_labels_before_summing() -> None:
    query = build_query("istio_tcp_sent_bytes_total", 60, job='zt|"x"', dedupe=("job", "x"))
    assert "max without (job, x) (increase(istio_tcp_sent_bytes_total{" in query
    assert 'job=~"zt|\\"x\\""' in query and query.startswith("sum by (reporter, ")
    assert "max without" not in build_query("f", 60, dedupe=())


@pytest.mark.prometheus
async def test_a_target_scraped_twice_counts_once_and_waypoint_metrics_are_exact(
    mesh: Mesh,
) -> None:
    labels = series_labels("source", **source("productpage-v1"), **destination("details-v1"))
    for z in (mesh.a, mesh.b):
        z.add(labels, opened=100, closed=100, req=1000, resp=1000)
    mesh.waypoint.values.update(ok=1000, failed=10, fast=600, sum=20_000.0)
    wait_for(mesh.base, "count(up == 1)", 5, timeout_s=30)
    wait_for(mesh.base, "min(count_over_time(istio_tcp_connections_opened_total[1m]))", 12, 40)
    for z in (mesh.a, mesh.b):
        z.add(labels, opened=40, closed=40, req=4_000, resp=20_000)
    mesh.waypoint.values.update(ok=1100, failed=20, fast=660, sum=22_500.0)
    wait_for(mesh.base, "min(istio_tcp_sent_bytes_total)", 21_000)
    wait_for(mesh.base, 'min(istio_requests_total{response_code="200"})', 1100)
    done = instant(mesh.base, "min(count_over_time(istio_tcp_sent_bytes_total[1m]))")
    wait_for(mesh.base, "min(count_over_time(istio_tcp_sent_bytes_total[1m]))", done + 3)
    end = int(time.time())
    assert instant(mesh.base, "count(istio_tcp_connections_opened_total)") == 3  # A twice, B

    async def poll(job: str = "") -> list[L4Sample | L7MetricSample]:
        source_ = PromQLSource(
            mesh.base, bucket_s=10, interval_s=5, timeout_s=5, identity=NodeIdentity(), job=job
        )
        async with httpx.AsyncClient() as client:
            return await source_.bucket(client, end)

    samples = await poll()
    (l4,) = [s for s in samples if isinstance(s, L4Sample)]
    assert _within(l4.connections_opened, 80), l4  # A + B, A not counted twice
    assert _within(l4.bytes_received, 40_000), l4
    metrics = {s.status_code: s for s in samples if isinstance(s, L7MetricSample)}
    ok, failed = metrics["200"], metrics["503"]
    assert _within(ok.requests, 100) and _within(failed.requests, 10)
    assert (failed.error_cause, failed.response_flags) == (ErrorCause.RESPONSE_FLAGS, "UH")
    assert ok.error_cause is None and ok.target.service == "reviews"
    assert ok.source.service == "productpage" and ok.source.workload == "productpage-v1"
    buckets = dict(ok.latency_buckets)
    assert _within(buckets["10"], 60) and sum(buckets.values()) == ok.requests
    assert 2500 <= ok.latency_sum_ms <= 2500 * 10 / 8

    (restricted,) = [s for s in await poll(job="annotations") if isinstance(s, L4Sample)]
    assert _within(restricted.connections_opened, 40)  # ztunnel A only
