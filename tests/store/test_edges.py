from __future__ import annotations

import random
import threading
from typing import Any

from sqlalchemy import Engine, select

from app.domain import Level, NodeKind
from app.edge.batch import TraceHop
from app.edge.bucket import EdgeBucket, EdgeKey
from app.edge.exemplars import Exemplar, top_exemplars
from app.edge.merge import merge_rows
from app.edge.sketch import LatencySketch
from app.edge.stats import L4Stats
from app.store.edges import EdgeRepository
from app.store.exemplars import ExemplarRepository
from app.store.nodes import NodeRepository
from app.store.tables import edge_buckets, exemplars, nodes, trace_hops
from app.store.traces import TraceHopRepository
from app.store.writer import delete_expired, write_batch
from tests.store.batches import batch, l4_bucket, l7_bucket

A, B = "default/a", "default/b"


def _stored(engine: Engine, target: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(edge_buckets).where(edge_buckets.c.target == target)).one()
    values = dict(row._mapping)
    for key in ("bucket_start_s", "level", "source", "target"):
        values.pop(key)
    sketch = values.pop("l7_latency_sketch")
    values["sketch"] = LatencySketch.from_bytes(sketch) if sketch else None
    return values


def _first() -> EdgeBucket:
    bucket = l7_bucket([1.0, 2.0, 300.0], errors=1, principals=("spiffe://td/ns/x/sa/a",))
    bucket.l4 = {"source": L4Stats(2, 1, 100, 200, 2)}
    bucket.l7_candidates = {"default/c": 0.5}
    bucket.exemplars = [Exemplar("slowest", "1" * 32, 300.0, 5)]
    return bucket


def _second() -> EdgeBucket:
    bucket = l7_bucket([5.0, 7.0], provenance="parent_span", via="default/waypoint")
    bucket.l4 = {"destination": L4Stats(3, 3, 10, 20, 1)}
    bucket.l4_principals = {"spiffe://td/ns/x/sa/b"}
    bucket.l7_candidates = {"default/c": 0.25, "default/d": 0.75}
    return bucket


def test_two_batches_merge_exactly_like_one_in_either_order(engine: Engine) -> None:
    write_batch(engine, batch({(60, A, "default/ab"): _first()}))
    write_batch(engine, batch({(60, A, "default/ab"): _second()}))
    write_batch(engine, batch({(60, A, "default/ba"): _second()}))
    write_batch(engine, batch({(60, A, "default/ba"): _first()}))
    assert _stored(engine, "default/ab") == _stored(engine, "default/ba")
    merged = _stored(engine, "default/ab")
    assert merged["l7_requests"] == 5 and merged["l7_errors"] == 1
    assert merged["l7_status_codes"] == {"200": 4, "503": 1}
    assert merged["l7_provenance"] == {"paired_spans": 3, "parent_span": 2}
    assert merged["l7_candidates"] == {"default/c": 0.75, "default/d": 0.75}
    assert merged["l7_unpaired"] == 2
    assert merged["via"] == "default/waypoint" and merged["protocol"] == "http"
    assert merged["l4_src_connections_opened"] == 2 and merged["l4_dst_connections_opened"] == 3
    assert merged["l4_principals"] == ["spiffe://td/ns/x/sa/a", "spiffe://td/ns/x/sa/b"]
    expected = LatencySketch()
    expected.add_all([1.0, 2.0, 300.0, 5.0, 7.0])
    assert merged["sketch"] == expected


def test_one_batch_with_many_keys_spans_several_chunks(engine: Engine) -> None:
    edges = {(60 * i, A, f"default/t{i % 7}"): l4_bucket(1) for i in range(30)}
    repo = EdgeRepository(chunk_size=4)
    for _ in range(2):
        with engine.begin() as conn:
            repo.add(conn, batch(edges).edges)
    with engine.connect() as conn:
        rows = repo.window_rows(conn, "service", 0, 60 * 30)
    assert len(rows) == 30
    assert {r.l4_dst_connections_opened for r in rows} == {2}


def test_concurrent_writers_add_up(engine: Engine) -> None:
    keys = [(60 * (i % 3), A, f"default/t{i % 5}") for i in range(15)]
    errors: list[BaseException] = []

    def writer(reverse: bool) -> None:
        try:
            for _ in range(6):
                order = list(reversed(keys)) if reverse else keys
                write_batch(engine, batch({k: l7_bucket([1.0, 10.0]) for k in order}))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i % 2 == 1,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.connect() as conn:
        rows = list(conn.execute(select(edge_buckets)))
    assert len(rows) == 15
    assert {r.l7_requests for r in rows} == {4 * 6 * 2}
    assert {LatencySketch.from_bytes(r.l7_latency_sketch).count for r in rows} == {48}
    assert {r.l7_status_codes["200"] for r in rows} == {48}


def test_window_merge_sums_counts_and_merges_sketches(engine: Engine) -> None:
    values = {0: [1.0, 2.0], 60: [3.0, 400.0, 5.0], 120: [6.0], 180: [1000.0]}
    write_batch(engine, batch({(t, A, B): l7_bucket(v) for t, v in values.items()}))
    with engine.connect() as conn:
        rows = EdgeRepository().window_rows(conn, "service", 0, 180, sources=[A])
    merged = merge_rows(rows)[(A, B)]
    assert merged.l7_requests == 6
    expected = LatencySketch()
    expected.add_all([1.0, 2.0, 3.0, 400.0, 5.0, 6.0])
    assert merged.l7_latency == expected
    assert merged.l7_latency.quantile(0.99) == expected.quantile(0.99)


def test_window_rows_filter_by_source_and_target(engine: Engine) -> None:
    write_batch(engine, batch({(0, A, B): l4_bucket(1), (0, B, "default/c"): l4_bucket(1)}))
    repo = EdgeRepository()
    with engine.connect() as conn:
        out = {(r.source, r.target) for r in repo.window_rows(conn, "service", 0, 60, sources=[B])}
        into = {(r.source, r.target) for r in repo.window_rows(conn, "service", 0, 60, targets=[B])}
        assert repo.node_exists(conn, "service", 0, 60, "default/c")
        assert not repo.node_exists(conn, "service", 60, 120, "default/c")
    assert out == {(B, "default/c")}
    assert into == {(A, B)}


def test_exemplars_keep_the_slowest_per_kind(engine: Engine) -> None:
    def with_exemplars(*durations: float) -> EdgeBucket:
        bucket = l7_bucket([1.0])
        bucket.exemplars = [
            Exemplar(kind, f"{int(d):032x}", d, 1, "")
            for d in durations
            for kind in ("slowest", "failed")
        ]
        return bucket

    write_batch(engine, batch({(0, A, B): with_exemplars(5, 1, 9)}))
    write_batch(engine, batch({(0, A, B): with_exemplars(7, 2)}))
    with engine.connect() as conn:
        rows = conn.execute(select(exemplars).order_by(exemplars.c.kind, exemplars.c.rank)).all()
        found = ExemplarRepository().for_edges(conn, "service", 0, 60, [(A, B)])
    assert [(r.kind, r.rank, r.duration_ms) for r in rows] == [
        ("failed", 1, 9.0),
        ("failed", 2, 7.0),
        ("failed", 3, 5.0),
        ("slowest", 1, 9.0),
        ("slowest", 2, 7.0),
        ("slowest", 3, 5.0),
    ]
    assert len(found[(A, B)]) == 6


def test_nodes_keep_the_widest_seen_range_and_known_kind(engine: Engine) -> None:
    first = batch({(600, A, B): l4_bucket(1)}, kinds={B: NodeKind.UNKNOWN})
    second = batch({(60, A, B): l4_bucket(1)}, kinds={B: NodeKind.EXTERNAL})
    third = batch({(1200, A, B): l4_bucket(1)}, kinds={B: NodeKind.UNKNOWN})
    for b in (first, second, third):
        write_batch(engine, b)
    with engine.connect() as conn:
        row = conn.execute(select(nodes).where(nodes.c.id == B)).one()
        seen = NodeRepository().seen_in(conn, "service", 0, 100)
        kinds = NodeRepository().kinds(conn, "service", [A, B, "default/none"])
    assert (row.first_seen_s, row.last_seen_s, row.kind) == (60, 1259, "external")
    assert {r.id for r in seen} == {A, B}
    assert kinds == {A: "service", B: "external"}


def _hop(span: str, end_s: int) -> TraceHop:
    return TraceHop("f" * 32, span, "", A, B, "", (end_s - 1) * 10**9, end_s * 10**9, 1000.0)


def test_trace_hops_ignore_duplicates_and_come_back_in_order(engine: Engine) -> None:
    b = batch({})
    b.hops = [_hop("2" * 16, 20), _hop("1" * 16, 10)]
    write_batch(engine, b)
    write_batch(engine, b)
    with engine.connect() as conn:
        hops = TraceHopRepository().hops(conn, "f" * 32)
    assert [h.span_id for h in hops] == ["1" * 16, "2" * 16]


def test_retention_deletes_what_is_older_than_the_cutoff(engine: Engine) -> None:
    b = batch({(0, A, B): l7_bucket([1.0]), (7200, A, B): l7_bucket([1.0])})
    b.edges[EdgeKey(0, Level.SERVICE, A, B)].exemplars = [Exemplar("slowest", "1" * 32, 1.0, 0)]
    b.hops = [_hop("1" * 16, 10), _hop("2" * 16, 7300)]
    write_batch(engine, b)
    deleted = delete_expired(engine, now_s=7200 + 1800, retention_h=1.0)
    assert (deleted.edge_buckets, deleted.exemplars, deleted.trace_hops) == (1, 1, 1)
    with engine.connect() as conn:
        assert conn.execute(select(edge_buckets.c.bucket_start_s)).scalars().all() == [7200]
        assert len(conn.execute(select(trace_hops)).all()) == 1
    assert delete_expired(engine, now_s=7200 + 1800, retention_h=1.0).edge_buckets == 0


def test_an_empty_batch_touches_nothing(engine: Engine) -> None:
    write_batch(engine, batch({}))
    with engine.connect() as conn:
        assert conn.execute(select(edge_buckets)).all() == []


def test_sketch_bytes_merge_like_decoded_sketches() -> None:
    for values in ([1.0, 2.0, 300.0], [5.0] * 300 + [0.0, 1e6], [], [0.0]):
        sketch = LatencySketch()
        sketch.add_all(values)
        expected, merged = LatencySketch(), LatencySketch()
        expected.add_all([3.0, *values])
        merged.add(3.0)
        merged.merge_encoded(sketch.to_bytes())
        assert merged == expected and merged.count == expected.count


def test_exemplars_read_reduced_are_the_top_of_those_read_plainly(engine: Engine) -> None:
    """`for_edges(top=True)` (speed/memory only) against the plain read reduced afterwards."""
    rng = random.Random(5)
    for flush in range(6):  # a bucket per flush: each keeps its own top-N rows
        edges = {}
        for source, target in ((A, B), (B, A), (A, "default/c")):
            bucket = l7_bucket([1.0])
            bucket.exemplars = [
                Exemplar(kind, f"{rng.getrandbits(20):032x}", rng.uniform(1, 50), flush, "")
                for kind in ("slowest", "failed")
                for _ in range(3)
            ]
            edges[(60 * flush, source, target)] = bucket
        write_batch(engine, batch(edges))
    repo = ExemplarRepository()
    with engine.connect() as conn:
        plain = repo.for_edges(conn, "service", 0, 360)
        reduced = repo.for_edges(conn, "service", 0, 360, top=True)
        some = repo.for_edges(conn, "service", 0, 360, [(A, B)], top=True)
    assert all(len(rows) == 36 for rows in plain.values())
    assert {p: top_exemplars(rows) for p, rows in plain.items()} == reduced
    assert some == {(A, B): reduced[(A, B)]}
    # Readers reduce over several pairs (moved and rejoined edges): the same either way.
    both = [*plain[(A, B)], *plain[(B, A)]]
    assert top_exemplars(both) == top_exemplars([*reduced[(A, B)], *reduced[(B, A)]])
