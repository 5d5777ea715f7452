"""One real meshstitch, fed by the simulated bookinfo mesh, shared by the Grafana tests.

The app runs for real (uvicorn, OTLP/gRPC, pipeline, SQLite store) and the simulator's ztunnels
are scraped once per tick. The scrape clock is the tick's end (minus a second), so the L4 deltas
of a tick land in the tick's bucket like its spans do: in a live mesh both layers of a minute
share a bucket, and per-bucket results (series, annotations) are only comparable with the truth
that way.

The run is 3 ticks, a `/metrics` scrape, 1 more tick, a second scrape: the scrapes check the
Tempo counters are monotonic, and the truth covers all 4 ticks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.settings import Settings
from app.sim import Coverage, Topology, Truth, bookinfo
from app.sim.harness import SimulatedRun, aligned_start, serve_meshstitch
from tests.ports import free_port

BUCKET_S = 60
TICKS = 4


def iso(seconds: float) -> str:
    """Grafana's `range.from`/`range.to`: ISO 8601 UTC with milliseconds."""
    text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@dataclass
class Mesh:
    base_url: str
    topology: Topology
    truth: Truth
    start_s: float
    end_s: float
    metrics_before: str  # /metrics after 3 of the 4 ticks
    metrics_after: str  # /metrics after all 4 ticks

    @property
    def range(self) -> dict[str, Any]:
        return {
            "from": iso(self.start_s),
            "to": iso(self.end_s),
            "raw": {"from": "now-15m", "to": "now"},
        }

    def post(self, path: str, body: Any) -> httpx.Response:
        return httpx.post(f"{self.base_url}/grafana{path}", json=body, timeout=30)

    def visible(self) -> dict[tuple[str, str], Any]:
        return {(e.source, e.target): e for e in self.truth.visible_edges()}

    def l7_edges(self) -> dict[tuple[str, str], Any]:
        return {k: e for k, e in self.visible().items() if e.coverage is not Coverage.L4_ONLY}


@pytest.fixture(scope="package")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    db = tmp_path_factory.mktemp("grafana") / "meshstitch.db"
    settings = Settings(
        database_url=f"sqlite:///{db}",
        host="127.0.0.1",
        http_port=free_port(),
        grpc_port=free_port(),
        bucket_s=BUCKET_S,
        flush_interval_s=3600,  # flushed explicitly by settle()
    )
    topology = bookinfo()
    with serve_meshstitch(settings) as running:
        run = SimulatedRun(running, topology, seed=5, protocol="grpc", tick_s=BUCKET_S)
        try:
            start = aligned_start(TICKS, BUCKET_S, BUCKET_S)
            run.run_ticks(TICKS - 1, start)
            assert run.settle(), running.pipeline.stats.last_flush_error
            before = httpx.get(f"{running.base_url}/metrics", timeout=30).text
            run.run_ticks(1, start + (TICKS - 1) * BUCKET_S)
            assert run.settle(), running.pipeline.stats.last_flush_error
            after = httpx.get(f"{running.base_url}/metrics", timeout=30).text
            assert start + TICKS * BUCKET_S < time.time()
            yield Mesh(
                running.base_url,
                topology,
                run.sim.truth,
                start,
                start + TICKS * BUCKET_S,
                before,
                after,
            )
        finally:
            run.stop()
