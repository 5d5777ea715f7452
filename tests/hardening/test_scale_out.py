"""Two replicas sharing one PostgreSQL, spans routed by trace id (as the Collector's loadbalancing
exporter does), give exactly the graph one process gives: counts, coverage, percentiles (the
sketches merge exactly), exemplars, provenance."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from sqlalchemy import text

from app.settings import Settings
from app.sim import MeshSimulator, bookinfo
from app.sim.export import make_exporter
from app.store.engine import create_store_engine
from app.store.schema import upgrade
from tests.hardening.support import Served, serve_app
from tests.postgres_cluster import PostgresCluster

TICKS, TICK_S = 3, 60


class TraceIdRouter(SpanExporter):
    """Every span of a trace to the same replica: trace_id % len(exporters)."""

    def __init__(self, exporters: Sequence[SpanExporter]) -> None:
        self.exporters = list(exporters)
        self.spans_per_exporter = [0] * len(self.exporters)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        groups: list[list[ReadableSpan]] = [[] for _ in self.exporters]
        for span in spans:
            assert span.context is not None
            groups[span.context.trace_id % len(groups)].append(span)
        for i, (exporter, group) in enumerate(zip(self.exporters, groups, strict=True)):
            if group:
                if exporter.export(group) is not SpanExportResult.SUCCESS:
                    return SpanExportResult.FAILURE
                self.spans_per_exporter[i] += len(group)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        for exporter in self.exporters:
            exporter.shutdown()


@contextlib.contextmanager
def _migrated_database(cluster: PostgresCluster, name: str) -> Iterator[str]:
    admin = create_store_engine(cluster.url())
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = cluster.url(name)
    engine = create_store_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _settings(url: str) -> Settings:
    # Pairing waits longer than the test runs, and aggregates are written when the test flushes:
    # pairs form by arrival and writes by the test, never by a wall-clock race.
    return Settings(
        database_url=url,
        host="127.0.0.1",
        http_port=0,
        grpc_port=0,
        pairing_wait_s=600,
        flush_interval_s=3600,
    )


def _drive(exporter: SpanExporter, t0: int) -> int:
    with MeshSimulator(bookinfo(), seed=11, exporter=exporter, batch_spans=300) as sim:
        spans = 0
        for i in range(TICKS):
            spans += sim.tick(t0 + TICK_S * i, t0 + TICK_S * (i + 1)).spans
    return spans


def _views(served: Served, t0: int) -> dict[str, Any]:
    window = {"from": str(t0 * 1000), "to": str((t0 + TICKS * TICK_S) * 1000)}
    views: dict[str, Any] = {}
    for level in ("service", "workload"):
        for path in ("/edges", "/services"):
            response = httpx.get(
                f"{served.url}{path}", params={**window, "level": level}, timeout=30
            )
            assert response.status_code == 200, response.text
            views[f"{path}?level={level}"] = response.json()
    graph = httpx.get(
        f"{served.url}/graph", params={**window, "service": "reviews", "depth": "2"}, timeout=30
    )
    assert graph.status_code == 200, graph.text
    views["/graph"] = graph.json()
    return views


@pytest.fixture(scope="module")
def runs(pg_cluster: PostgresCluster) -> Iterator[tuple[dict[str, Any], ...]]:
    """(single process, replica a, replica b) views of the same simulated traffic."""
    t0 = int(time.time()) // TICK_S * TICK_S - TICKS * TICK_S
    with contextlib.ExitStack() as stack:
        single_url = stack.enter_context(_migrated_database(pg_cluster, "scale_out_single"))
        shared_url = stack.enter_context(_migrated_database(pg_cluster, "scale_out_shared"))
        with serve_app(_settings(single_url)) as single:
            sent_single = _drive(make_exporter(single.url, "http"), t0)
            assert single.app.state.pipeline.flush(drain_pairing=True)
            expected = _views(single, t0)

        with serve_app(_settings(shared_url)) as a, serve_app(_settings(shared_url)) as b:
            router = TraceIdRouter([make_exporter(a.url, "http"), make_exporter(b.url, "http")])
            sent_split = _drive(router, t0)
            assert all(router.spans_per_exporter), router.spans_per_exporter  # both worked
            for replica in (a, b):
                assert replica.app.state.pipeline.flush(drain_pairing=True)
            from_a, from_b = _views(a, t0), _views(b, t0)
        assert sent_split == sent_single
        yield expected, from_a, from_b


def _without_failed_exemplars(view: Any) -> Any:
    if isinstance(view, dict):
        return {
            k: [x for x in v if x.get("kind") != "failed"]
            if k == "exemplars"
            else _without_failed_exemplars(v)
            for k, v in view.items()
        }
    if isinstance(view, list):
        return [_without_failed_exemplars(v) for v in view]
    return view


@pytest.mark.postgres
def test_two_replicas_on_one_postgres_equal_one_process(runs: tuple[dict[str, Any], ...]) -> None:
    expected, from_a, from_b = runs
    edges = expected["/edges?level=service"]["edges"]
    assert edges and sum(e["l7"]["requests"] for e in edges if e["l7"]) > 100
    assert from_a == from_b  # one shared store
    # Counts, coverage, percentiles, provenance, slowest exemplars: exactly one process's.
    assert _without_failed_exemplars(from_a) == _without_failed_exemplars(expected)


@pytest.mark.postgres
def test_failed_exemplars_equal_one_process(runs: tuple[dict[str, Any], ...]) -> None:
    expected, from_a, _ = runs
    assert from_a == expected
