"""Sending faster than the service can process: 429 / RESOURCE_EXHAUSTED with a retry hint, the
queue never grows past `ingest_queue_spans`, and exactly the acknowledged spans are counted.

The worker is made slow deterministically rather than by out-running it: the test holds SQLite's
write lock, so the worker's next aggregate write waits on the busy timeout while posts pile up.
"""

from __future__ import annotations

import random
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
from google.rpc import code_pb2, error_details_pb2, status_pb2

from app.settings import Settings
from tests.hardening.support import PROTOBUF, requests_in_store, serve_app, waypoint_request

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
QUEUE_SPANS, BATCH, CLIENTS, POSTS_PER_CLIENT = 200, 50, 12, 8


def _retry_delay_s(pb_status: status_pb2.Status) -> int:
    for detail in pb_status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return int(info.retry_delay.seconds)
    raise AssertionError(f"no RetryInfo in {pb_status}")


def test_overload_is_refused_with_retry_hints_and_only_acknowledged_spans_count(
    tmp_path: Path,
) -> None:
    db = tmp_path / "m.db"
    settings = Settings(
        database_url=f"sqlite:///{db}",
        host="127.0.0.1",
        http_port=0,
        grpc_port=0,
        ingest_queue_spans=QUEUE_SPANS,
        flush_interval_s=0.05,
    )
    bodies = [waypoint_request(BATCH, random.Random(i)) for i in range(CLIENTS * POSTS_PER_CLIENT)]
    with serve_app(settings) as served:
        pipeline = served.app.state.pipeline
        assert pipeline.flush()  # the schema exists; from here on the worker writes on its timer
        blocker = sqlite3.connect(db, timeout=5, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the worker's next write now waits for this lock
        try:

            def post_all(client_index: int) -> list[httpx.Response]:
                with httpx.Client(base_url=served.url, timeout=60) as client:
                    return [
                        client.post("/v1/traces", content=bodies[i], headers=PROTOBUF)
                        for i in range(client_index, len(bodies), CLIENTS)
                    ]

            with ThreadPoolExecutor(CLIENTS) as pool:
                responses = [r for rs in pool.map(post_all, range(CLIENTS)) for r in rs]
            _, detail = pipeline.state()
            assert detail["queued_spans"] <= QUEUE_SPANS, detail  # bounded, never a growing queue

            with grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel:
                export = channel.unary_unary(EXPORT)
                try:
                    export(bodies[0], timeout=30)
                    grpc_refused = None
                except grpc.RpcError as exc:
                    grpc_refused = exc
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 429}, statuses
        accepted = statuses.count(200)
        refused = [r for r in responses if r.status_code == 429]
        assert refused and accepted, statuses
        for response in refused:
            assert response.headers["content-type"] == "application/x-protobuf"
            assert int(response.headers["retry-after"]) >= 1
            pb_status = status_pb2.Status.FromString(response.content)
            assert pb_status.code == code_pb2.RESOURCE_EXHAUSTED
            assert _retry_delay_s(pb_status) >= 1

        assert grpc_refused is not None, "gRPC export accepted while the queue was full"
        assert grpc_refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(grpc_refused.trailing_metadata() or ())
        assert _retry_delay_s(status_pb2.Status.FromString(trailers["grpc-status-details-bin"]))

        assert pipeline.flush(drain_pairing=True)
        assert pipeline.stats.spans_accepted == accepted * BATCH
        assert requests_in_store(served.url) == accepted * BATCH
