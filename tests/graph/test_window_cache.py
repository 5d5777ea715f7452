"""The merged-window cache gives the uncached answer, and a write (this process's, another
replica's, retention's) that touches a cached window changes the next answer."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from app.domain import Alias, AliasSource, Level, NodeKind
from app.edge.bucket import EdgeBucket
from app.graph.model import Graph
from app.graph.neighbourhood import Direction
from app.graph.page import Page
from app.graph.queries import GraphQueries, UnknownNode
from app.graph.window import Window
from app.graph.window_cache import WindowCache, WindowKey
from app.store.engine import create_store_engine
from app.store.writer import delete_expired, write_batch
from tests.graph.scenario import NOW, T0, build
from tests.store.batches import batch, l4_bucket, l7_bucket

SERVICES = [f"ns{i % 3}/s{i}" for i in range(12)]
# Two stored names that read as another service: their edges are rejoined at query time.
ALIASES = [
    Alias("ns0", "s0", "s3", AliasSource.ZTUNNEL),
    Alias("ns1", "s1", "s4", AliasSource.SPAN),
]
UNKNOWN = ["unknown/10.0.0.1", "unknown/10.0.0.2"]
START = 7_200  # buckets 7200 … 10740: an hour of one-minute buckets


def _random_store(engine: Engine, seed: int) -> None:
    """Random traffic over an hour: L7, L4 and unattributed edges (query-time attribution),
    in several flushes so roll-ups and fine rows both hold data."""
    rng = random.Random(seed)
    kinds = dict.fromkeys(UNKNOWN, NodeKind.UNKNOWN)
    for _ in range(4):
        edges: dict[tuple[int, str, str], EdgeBucket] = {}
        for _ in range(120):
            t = START + 60 * rng.randrange(60)
            a, b = rng.sample(SERVICES, 2)
            kind = rng.random()
            if kind < 0.4:
                edges[(t, a, b)] = l7_bucket([rng.uniform(1, 90) for _ in range(3)], errors=1)
            elif kind < 0.8:
                edges[(t, a, b)] = l4_bucket(rng.randint(1, 5), nbytes=rng.randint(10, 9000))
            else:
                edges[(t, rng.choice(UNKNOWN), b)] = l7_bucket([5.0], provenance="unattributed")
        flush = batch(edges, kinds)
        flush.aliases = ALIASES
        write_batch(engine, flush)


def _json(graph: Graph) -> Any:
    from app.graph.export import to_json

    return to_json(graph)


def _by_name(q: GraphQueries, window: Window, name: str) -> Any:
    """The graph of a service named without its namespace (or how the name failed)."""
    try:
        return _json(q.graph(window, Level.SERVICE, service=name, depth=1))
    except UnknownNode as exc:
        return ("unknown", exc.args, getattr(exc, "suggestions", None))


def _answers(q: GraphQueries, window: Window, service: str) -> list[Any]:
    return [
        _by_name(q, window, service.partition("/")[2]),
        _by_name(q, window, "no-such-service"),
        _json(q.graph(window, Level.SERVICE, service=service, depth=2)),
        _json(q.graph(window, Level.SERVICE, service=service, direction=Direction.UPSTREAM)),
        *(
            _json(q.graph(window, Level.SERVICE, service=s, direction=Direction.DOWNSTREAM))
            for s in SERVICES
        ),
        _json(q.graph(window, Level.SERVICE)),
        q.graph_page(window, Level.SERVICE, Page(5, 2))[1],
        q.services(window, Level.SERVICE, None),
        q.edges(window, Level.SERVICE, None, None, 0.0, 1000),
        q.coverage(window, None, 100),
    ]


def test_cached_and_uncached_answers_are_equal_for_random_windows(engine: Engine) -> None:
    _random_store(engine, seed=3)
    cached, uncached = GraphQueries(engine, 60), GraphQueries(engine, 60, cache_windows=0)
    rng = random.Random(5)
    for _ in range(8):
        # windows on and off the bucket grid, reaching past either end of the data
        start = START - 600 + rng.randrange(0, 4200, 7)
        window = Window(float(start), float(start + rng.choice([300, 1500, 3600, 3601])))
        service = rng.choice(SERVICES)
        assert _answers(cached, window, service) == _answers(uncached, window, service)
    assert cached.cache.stats.hits > 0 and cached.cache.stats.builds > 0
    for window in (Window(START + 7200, START + 7500), Window(START - 3600, START - 3000)):
        # no node was seen in these windows: a bare name resolves in neither answer
        assert _by_name(cached, window, "s2") == _by_name(uncached, window, "s2")
        assert _by_name(cached, window, "s2")[0] == "unknown"
    whole = cached.graph(Window(START, START + 3600), Level.SERVICE)
    assert "ns0/s3" in whole.nodes and "ns0/s0" not in whole.nodes  # rejoined under aliases


def test_a_flush_changes_the_next_answer(engine: Engine) -> None:
    build(engine)
    q = GraphQueries(engine, 60)
    window = Window(NOW - 900, NOW)
    before = q.edges(window, Level.SERVICE, None, None, 0.0, 1000)
    assert q.edges(window, Level.SERVICE, None, None, 0.0, 1000) == before
    assert q.cache.stats.hits == 1  # the second answer came from the cache
    write_batch(engine, batch({(T0 + 120, "default/new", "default/reviews"): l4_bucket(3)}))
    after = q.edges(window, Level.SERVICE, None, None, 0.0, 1000)
    assert "default/new->default/reviews" in {e["id"] for e in after["edges"]}
    assert after == GraphQueries(engine, 60, cache_windows=0).edges(
        window, Level.SERVICE, None, None, 0.0, 1000
    )


def test_a_write_outside_the_window_keeps_the_cached_window(engine: Engine) -> None:
    build(engine)
    q = GraphQueries(engine, 60)
    window = Window(NOW - 900, NOW)
    q.graph(window, Level.SERVICE)
    write_batch(engine, batch({(int(NOW) + 600, "default/new", "default/reviews"): l4_bucket(3)}))
    q.graph(window, Level.SERVICE)
    assert (q.cache.stats.builds, q.cache.stats.hits) == (1, 1)


def test_node_kinds_follow_a_write_of_nodes_only(engine: Engine) -> None:
    build(engine)
    q = GraphQueries(engine, 60)
    window = Window(NOW - 900, NOW)
    graph = q.graph(window, Level.SERVICE, service="default/x", direction=Direction.UPSTREAM)
    assert graph.nodes["default/a"].kind is NodeKind.SERVICE
    relabel = batch({})
    from tests.store.batches import node

    relabel.nodes[("default/a", Level.SERVICE)] = node("default/a", NodeKind.EXTERNAL, T0, T0)
    write_batch(engine, relabel)
    graph = q.graph(window, Level.SERVICE, service="default/x", direction=Direction.UPSTREAM)
    assert graph.nodes["default/a"].kind is NodeKind.EXTERNAL


def test_retention_drops_the_windows_it_deleted_from(engine: Engine) -> None:
    build(engine)
    q = GraphQueries(engine, 60)
    window = Window(NOW - 900, NOW)
    assert q.edges(window, Level.SERVICE, None, None, 0.0, 1000)["edges"]
    delete_expired(engine, now_s=NOW + 7200, retention_h=1.0)
    assert q.edges(window, Level.SERVICE, None, None, 0.0, 1000)["edges"] == []


def test_another_replicas_write_changes_the_next_answer(pg_url: str) -> None:
    """Two engines on one PostgreSQL: the second replica's flush is seen by the first's cache."""
    from app.store.schema import upgrade

    mine, theirs = create_store_engine(pg_url), create_store_engine(pg_url)
    try:
        upgrade(mine)
        build(mine)
        q = GraphQueries(mine, 60)
        window = Window(NOW - 900, NOW)
        graph = q.graph(window, Level.SERVICE, service="default/reviews", depth=1)
        requests = {(e.source, e.target): e.l7.requests for e in graph.edges if e.l7}
        assert requests[("default/productpage", "default/reviews")] == 125
        extra = batch({(T0 + 60, "default/productpage", "default/reviews"): l7_bucket([1.0] * 7)})
        write_batch(theirs, extra, writer_id=uuid.uuid4().hex)
        graph = q.graph(window, Level.SERVICE, service="default/reviews", depth=1)
        requests = {(e.source, e.target): e.l7.requests for e in graph.edges if e.l7}
        assert requests[("default/productpage", "default/reviews")] == 132
    finally:
        mine.dispose()
        theirs.dispose()


def test_a_build_overtaken_by_a_change_is_not_kept(engine: Engine) -> None:
    build(engine)
    q = GraphQueries(engine, 60)
    read = q._read_window

    def read_then_write(conn: Connection, key: WindowKey) -> dict[tuple[str, str], EdgeBucket]:
        merged = read(conn, key)
        # Another writer commits while the build is under way, and a request sees it.
        extra = batch({(T0, "default/late", "default/reviews"): l4_bucket(1)})
        write_batch(engine, extra, writer_id=uuid.uuid4().hex)
        with engine.connect() as other:
            q.cache.check(other)
        return merged

    q.cache._read_window = read_then_write
    window = Window(NOW - 900, NOW)
    q.graph(window, Level.SERVICE)
    assert q.cache.stats.discarded == 1
    q.cache._read_window = read
    edges = q.edges(window, Level.SERVICE, None, None, 0.0, 1000)["edges"]
    assert "default/late->default/reviews" in {e["id"] for e in edges}


def test_background_builds_are_joined_on_close(engine: Engine) -> None:
    build(engine)
    q = GraphQueries(engine, 60, cache_in_background=True)
    q.cache._wall = lambda: time.time() + 60  # the scenario was written a minute ago: not live
    window = Window(NOW - 900, NOW)
    # No entry yet: the neighbourhood is read from the store, and an entry built meanwhile.
    graph = q.graph(window, Level.SERVICE, service="default/reviews")
    q.cache.close()
    assert q.cache.stats.builds == 1
    assert q.graph(window, Level.SERVICE, service="default/reviews") == graph
    assert q.cache.stats.hits == 1


@pytest.mark.parametrize("windows", [0, 1])
def test_the_setting_bounds_the_entries(engine: Engine, windows: int) -> None:
    build(engine)
    q = GraphQueries(engine, 60, cache_windows=windows)
    for minutes in (5, 10, 15):
        q.graph(Window(NOW - 60 * minutes, NOW), Level.SERVICE)
    assert len(q.cache._entries) == windows


def test_a_live_window_is_not_rebuilt_in_the_background(engine: Engine) -> None:
    """A window every flush touches would be changed again before a build finished: no
    background build while any writer changed it within HOT_FACTOR build durations."""
    build(engine)
    later = [0.0]  # seconds added to the wall clock the cache reads
    q = GraphQueries(engine, 60, cache_in_background=True)
    q.cache._wall = lambda: time.time() + later[0]
    first, end = Window(NOW - 900, NOW).bucket_range(60)
    live: WindowKey = ("service", first, -(-end // 60) * 60)
    quiet: WindowKey = ("service", first + 36_000, first + 37_800)  # nothing written there
    with q.engine.connect() as conn:  # a reader's connection, as requests use
        later[0] = 60.0  # the scenario's own writes: a minute ago
        thread = q.cache.build_soon(live, conn)
        assert thread is not None
        thread.join()
        assert q.cache.get(live) is not None
        q.cache.stats.last_build_s = 10.0  # as if the build had taken 10 s: live for 20 s
        q.cache._monotonic = lambda: time.monotonic() + 3600  # past REBUILD_FACTOR's pause
    write_batch(engine, batch({(T0 + 120, "default/new", "default/reviews"): l4_bucket(3)}))
    with q.engine.connect() as conn:  # a reader's connection, as requests use
        q.cache.check(conn)  # the flush is seen: the entry is dropped
        assert q.cache.get(live) is None
        later[0] = 0.0
        assert q.cache.build_soon(live, conn) is None, "changed just now, a build takes 10 s"
        assert q.cache.stats.live_skips == 1
        untouched = q.cache.build_soon(quiet, conn)
        assert untouched is not None, "a window the flush did not touch is built"
        untouched.join()
        later[0] = 25.0
        rebuilt = q.cache.build_soon(live, conn)
        assert rebuilt is not None, "quiet for two build durations: built again"
        rebuilt.join()
    assert q.cache.get(live) is not None
    q.cache.close()


def _sizes(engine: Engine, windows: list[Window]) -> list[int]:
    """Edges of each window's entry, built by an unbounded cache."""
    q = GraphQueries(engine, 60, cache_windows=len(windows))
    for window in windows:
        q.graph(window, Level.SERVICE)
    return [len(entry.buckets) for entry in q.cache._entries.values()]


def test_a_window_with_more_edges_than_the_bound_is_answered_but_not_kept(
    engine: Engine,
) -> None:
    build(engine)
    window = Window(NOW - 900, NOW)
    (size,) = _sizes(engine, [window])
    uncached = GraphQueries(engine, 60, cache_windows=0)
    q = GraphQueries(engine, 60, cache_max_edges=size - 1, cache_in_background=True)
    for _ in range(2):  # listings build and wait: answered from the build each time
        assert q.services(window, Level.SERVICE, None) == uncached.services(
            window, Level.SERVICE, None
        )
    assert q.cache.stats.builds == 2 and q.cache.stats.too_large == 2
    assert not q.cache._entries and q.cache.held_edges() == 0
    # A neighbourhood does not start a background build that would not be kept either.
    assert _json(q.graph(window, Level.SERVICE, service="default/reviews")) == _json(
        uncached.graph(window, Level.SERVICE, service="default/reviews")
    )
    q.cache.close()
    assert q.cache.stats.builds == 2


def test_the_entries_hold_at_most_max_edges_together(engine: Engine) -> None:
    _random_store(engine, seed=7)
    windows = [Window(START, START + 1800), Window(START + 1800, START + 3600)]
    first, second = _sizes(engine, windows)
    assert first > 0 and second > 0
    q = GraphQueries(engine, 60, cache_windows=2, cache_max_edges=max(first, second))
    for window in windows:
        q.graph(window, Level.SERVICE)
    # Both fit the window count, not the edge bound: the least recently used one left.
    assert [len(e.buckets) for e in q.cache._entries.values()] == [second]
    assert q.cache.held_edges() == second
    both_fit = GraphQueries(engine, 60, cache_windows=2, cache_max_edges=first + second)
    for window in windows:
        both_fit.graph(window, Level.SERVICE)
    assert both_fit.cache.held_edges() == first + second


def test_a_moved_window_is_not_held_beside_the_window_it_replaces() -> None:
    """A "last hour" a minute later is a new key over nearly the same edges: the entry it
    overlaps leaves before the build when both would not fit `max_edges`; a window it does not
    overlap stays."""
    held_at_read: list[int] = []

    def read_window(conn: Connection, key: WindowKey) -> dict[tuple[str, str], EdgeBucket]:
        held_at_read.append(cache.held_edges())
        return {(f"ns/a{i}", f"ns/b{i + key[1]}"): EdgeBucket() for i in range(10)}

    cache = WindowCache(
        read_window,
        lambda conn, key: set(),
        lambda: pytest.fail("the builds read on the connection given"),
        lambda source, target, bucket: None,  # type: ignore[arg-type,return-value]
        max_windows=4,
        max_edges=35,
    )
    conn: Any = object()
    cache.build(("service", 0, 3600), conn)
    cache.build(("service", 7200, 10800), conn)  # no overlap: both fit
    cache.build(("workload", 60, 3660), conn)  # another level: not the same edges
    assert held_at_read == [0, 10, 20] and cache.held_edges() == 30
    cache.build(("service", 60, 3660), conn)  # the first hour, a minute later
    assert held_at_read[-1] == 20  # the first hour left before the read: 30 + 10 > 35
    assert sorted(cache._entries) == [
        ("service", 60, 3660),
        ("service", 7200, 10800),
        ("workload", 60, 3660),
    ]
