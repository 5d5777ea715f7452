"""The ingest queue's memory bound (`ingest_queue_bytes`): past it, exports are refused as
OVERLOADED (HTTP 429 with Retry-After / gRPC RESOURCE_EXHAUSTED with RetryInfo) however few spans
are queued, and a client that retries what was refused gets every span aggregated.

As in test_overload.py, the worker is stalled deterministically: the test holds SQLite's write
lock, so the worker's next aggregate write waits while exports pile up in the queue.
"""

from __future__ import annotations

import random
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from app.ingest.decoder_choice import select_protobuf_decoder
from app.ingest.span_memory import estimate_batch_bytes
from app.settings import Settings
from tests.hardening.support import PROTOBUF, requests_in_store, serve_app, waypoint_request
from tests.hardening.test_overload import EXPORT, _retry_delay_s

BATCH, CLIENTS, POSTS_PER_CLIENT = 40, 8, 6
MAX_ROUNDS = 10  # retries per refused export; each round first lets the worker drain the queue


def _spans_in(body: bytes) -> int:
    request = ExportTraceServiceRequest.FromString(body)
    return sum(len(s.spans) for rs in request.resource_spans for s in rs.scope_spans)


def test_the_memory_bound_refuses_retryably_and_a_retrying_client_loses_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "m.db"
    bodies = [waypoint_request(BATCH, random.Random(i)) for i in range(CLIENTS * POSTS_PER_CLIENT)]
    decode = select_protobuf_decoder("auto").decode
    one_batch = max(estimate_batch_bytes(decode(b, 128).spans) for b in bodies)
    queue_bytes = 2 * one_batch  # two batches fit; the span bound never binds
    settings = Settings(
        database_url=f"sqlite:///{db}",
        host="127.0.0.1",
        http_port=0,
        grpc_port=0,
        ingest_queue_spans=10**6,
        ingest_queue_bytes=queue_bytes,
        flush_interval_s=0.05,
    )
    sent = sum(_spans_in(b) for b in bodies)
    with serve_app(settings) as served:
        pipeline = served.app.state.pipeline
        assert pipeline.flush()  # the schema exists; from here on the worker writes on its timer
        blocker = sqlite3.connect(db, timeout=5, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the worker's next write now waits for this lock
        try:

            def post_all(client_index: int) -> list[tuple[int, httpx.Response]]:
                with httpx.Client(base_url=served.url, timeout=60) as client:
                    return [
                        (i, client.post("/v1/traces", content=bodies[i], headers=PROTOBUF))
                        for i in range(client_index, len(bodies), CLIENTS)
                    ]

            with ThreadPoolExecutor(CLIENTS) as pool:
                answers = [a for answered in pool.map(post_all, range(CLIENTS)) for a in answered]
            _, detail = pipeline.state()
            assert detail["queue_capacity_bytes"] == queue_bytes
            assert 0 < detail["queued_bytes_estimated"] <= queue_bytes, detail
            assert detail["queued_spans"] <= 2 * BATCH, detail  # far below the span bound

            with grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel:
                try:
                    channel.unary_unary(EXPORT)(bodies[0], timeout=30)
                    grpc_refused = None
                except grpc.RpcError as exc:
                    grpc_refused = exc
            metrics = httpx.get(f"{served.url}/metrics").text
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

        refused = [(i, r) for i, r in answers if r.status_code == 429]
        assert {r.status_code for _, r in answers} <= {200, 429}
        assert refused and len(refused) < len(answers)
        for _, response in refused:
            assert int(response.headers["retry-after"]) >= 1
            pb_status = status_pb2.Status.FromString(response.content)
            assert pb_status.code == code_pb2.RESOURCE_EXHAUSTED
            assert "memory" in pb_status.message
            assert _retry_delay_s(pb_status) >= 1
        assert grpc_refused is not None, "gRPC export accepted past the memory bound"
        assert grpc_refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(grpc_refused.trailing_metadata() or ())
        assert _retry_delay_s(status_pb2.Status.FromString(trailers["grpc-status-details-bin"]))
        assert f"meshstitch_ingest_queue_capacity_bytes {queue_bytes}" in metrics
        assert "meshstitch_ingest_queue_bytes " in metrics

        # The client retries what was refused; the flush stands in for the Retry-After wait.
        with httpx.Client(base_url=served.url, timeout=60) as client:
            for i, _ in refused:
                for _round in range(MAX_ROUNDS):
                    assert pipeline.flush()
                    status = client.post("/v1/traces", content=bodies[i], headers=PROTOBUF)
                    if status.status_code == 200:
                        break
                else:
                    raise AssertionError(f"export {i} still refused after {MAX_ROUNDS} rounds")

        assert pipeline.flush(drain_pairing=True)
        assert pipeline.stats.spans_accepted == sent
        assert requests_in_store(served.url) == sent
        _, detail = pipeline.state()
        assert detail["queued_bytes_estimated"] == 0 and detail["queued_spans"] == 0
