"""PostgreSQL stopped while spans flow, then started again: ingest keeps accepting into a bounded
buffer of unwritten aggregate batches, then answers 503 / UNAVAILABLE with a retry hint while
/readyz says why; after the restart everything accepted is written, exactly once."""

from __future__ import annotations

import random
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.rpc import code_pb2, status_pb2

from app.settings import Settings
from app.store.engine import create_store_engine
from app.store.schema import upgrade
from tests.hardening.support import PROTOBUF, requests_in_store, serve_app, waypoint_request
from tests.postgres_cluster import PostgresCluster

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
BATCH = 20
MAX_POSTS_WHILE_DOWN = 400  # far above the pipeline's buffer of 120 unwritten batches
MAX_FLUSHES_AFTER_RESTART = 10


@pytest.fixture
def migrated_pg_url(pg_url: str) -> str:
    engine = create_store_engine(pg_url)
    upgrade(engine)  # serve never upgrades PostgreSQL itself
    engine.dispose()
    return pg_url


@pytest.fixture
def cluster(pg_cluster: PostgresCluster) -> Iterator[PostgresCluster]:
    yield pg_cluster
    # However the test ends, the session's other tests get their cluster back.
    try:
        pg_cluster.start()
    except RuntimeError as exc:
        assert "another server might be running" in str(exc), exc


@pytest.mark.postgres
def test_database_outage_buffers_refuses_then_flushes_everything(
    migrated_pg_url: str, cluster: PostgresCluster
) -> None:
    settings = Settings(
        database_url=migrated_pg_url,
        host="127.0.0.1",
        http_port=0,
        grpc_port=0,
        flush_interval_s=3600,  # writes happen when this test flushes, not on a timer
    )
    rng = random.Random(7)
    with serve_app(settings) as served, httpx.Client(base_url=served.url, timeout=30) as client:
        pipeline = served.app.state.pipeline

        def post() -> httpx.Response:
            return client.post("/v1/traces", content=waypoint_request(BATCH, rng), headers=PROTOBUF)

        acknowledged = 0
        assert post().status_code == 200
        acknowledged += BATCH
        assert pipeline.flush()

        cluster.stop("fast")
        refused = None
        for _ in range(MAX_POSTS_WHILE_DOWN):
            response = post()
            if response.status_code != 200:
                refused = response
                break
            acknowledged += BATCH
            assert not pipeline.flush()  # the batch stays buffered in memory
        assert refused is not None, "ingest never pushed back while the database was down"
        assert acknowledged > 100 * BATCH  # it buffered before refusing
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        pb_status = status_pb2.Status.FromString(refused.content)
        assert pb_status.code == code_pb2.UNAVAILABLE and pb_status.details

        with (
            grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel,
            pytest.raises(grpc.RpcError) as raised,
        ):
            channel.unary_unary(EXPORT)(waypoint_request(BATCH, rng), timeout=30)
        assert raised.value.code() is grpc.StatusCode.UNAVAILABLE

        ready = client.get("/readyz")
        assert ready.status_code == 503
        parts = ready.json()["parts"]
        assert parts["database"]["ready"] is False and parts["database"]["error"]
        assert parts["pipeline"]["ready"] is False
        assert parts["pipeline"]["pending_writes"] >= 100
        assert parts["pipeline"]["last_flush_error"]

        cluster.start()
        for _ in range(MAX_FLUSHES_AFTER_RESTART):
            if pipeline.flush(drain_pairing=True):
                break
        else:
            raise AssertionError(f"never flushed after restart: {pipeline.state()}")

        assert client.get("/readyz").status_code == 200
        assert post().status_code == 200
        acknowledged += BATCH
        assert pipeline.flush(drain_pairing=True)
        assert requests_in_store(served.url) == acknowledged
        assert pipeline.stats.spans_accepted == acknowledged
