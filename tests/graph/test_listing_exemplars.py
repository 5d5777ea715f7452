"""Whole-window listings read the exemplars of the edges they show only, and answer as they did
when every edge's exemplars were attached before paging (issue 18: those were most of a
listing's memory on a window at the cardinality caps)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from app.domain import Alias, AliasSource, Coverage, Level, NodeKind
from app.edge.bucket import EdgeBucket
from app.edge.exemplars import Exemplar
from app.graph.edge_reader import EdgeReader
from app.graph.export import to_cytoscape, to_json
from app.graph.model import Graph
from app.graph.page import Page
from app.graph.queries import GraphQueries
from app.graph.window import Window
from app.store.exemplars import ExemplarRepository
from app.store.writer import write_batch
from tests.store.batches import batch, l4_bucket, l7_bucket

SERVICES = [f"ns{i % 3}/s{i}" for i in range(10)]
ALIASES = [Alias("ns0", "s0", "s3", AliasSource.ZTUNNEL)]  # ns0/s0's edges read as ns0/s3's
UNKNOWN = "unknown/10.0.0.1"  # an unattributed caller, moved to its L4 caller at query time
START = 7_200
WINDOW = Window(START, START + 3600)
Pair = tuple[str, str]


def _exemplars(rng: random.Random, errors: int) -> tuple[Exemplar, ...]:
    end_ns = (START + 3600) * 10**9
    slowest = [
        Exemplar("slowest", f"{rng.getrandbits(128):032x}", rng.uniform(1, 900), end_ns)
        for _ in range(rng.randint(1, 4))
    ]
    failed = [
        Exemplar("failed", f"{rng.getrandbits(128):032x}", rng.uniform(1, 900), end_ns, "503")
        for _ in range(errors)
    ]
    return (*slowest, *failed)


def _store(engine: Engine, seed: int = 11) -> None:
    """An hour of L7 edges with exemplars, L4-only edges and an unattributed caller whose only
    L4 caller into ns2/sink is ns1/s1, in several flushes (fine rows and roll-ups both hold exemplars)."""
    rng = random.Random(seed)
    for _ in range(3):
        edges: dict[tuple[int, str, str], EdgeBucket] = {}
        for _ in range(60):
            t = START + 60 * rng.randrange(60)
            a, b = rng.sample(SERVICES, 2)
            if rng.random() < 0.6:
                errors = rng.randint(0, 2)
                latencies = [rng.uniform(1, 90) for _ in range(3)]
                edges[(t, a, b)] = l7_bucket(
                    latencies, errors=errors, exemplars=_exemplars(rng, errors)
                )
            else:
                edges[(t, a, b)] = l4_bucket(rng.randint(1, 5), nbytes=rng.randint(10, 9000))
        t = START + 60 * rng.randrange(60)
        edges[(t, UNKNOWN, "ns2/sink")] = l7_bucket(
            [40.0], provenance="unattributed", exemplars=_exemplars(rng, 0)
        )
        edges[(t, "ns1/s1", "ns2/sink")] = l4_bucket(3)
        flush = batch(edges, {UNKNOWN: NodeKind.UNKNOWN})
        flush.aliases = ALIASES
        write_batch(engine, flush)


class EveryExemplarFirst(GraphQueries):
    """The listings as they were: every edge of the window given its exemplars before paging."""

    @contextmanager
    def _whole(
        self,
        window: Window,
        level: Level,
        namespace: str | None = None,
        coverage: Coverage | None = None,
    ) -> Iterator[tuple[Graph, EdgeReader]]:
        with super()._whole(window, level, namespace, coverage) as (graph, reader):
            yield replace(graph, edges=reader.with_exemplars(graph.edges, everything=True)), reader


def _graph_pages(q: GraphQueries, limit: int) -> list[Any]:
    """Every page of the whole graph, following `next_offset`, as JSON and Cytoscape."""
    out: list[Any] = []
    offset: int | None = 0
    while offset is not None:
        graph, page = q.graph_page(WINDOW, Level.SERVICE, Page(limit, offset))
        out += [to_json(graph), to_cytoscape(graph), page]
        offset = page["next_offset"]
    return out


def _edge_pages(q: GraphQueries, limit: int, **query: Any) -> list[Any]:
    out: list[Any] = []
    offset: int | None = 0
    while offset is not None:
        args = {"namespace": None, "coverage": None, "min_rps": 0.0, **query}
        answer = q.edges(WINDOW, Level.SERVICE, limit=limit, offset=offset, **args)
        out.append(answer)
        offset = answer["page"]["next_offset"]
    return out


def _answers(q: GraphQueries) -> list[Any]:
    return [
        *(_graph_pages(q, limit) for limit in (1, 4, 2000)),
        q.graph_page(WINDOW, Level.SERVICE, Page(3, 500))[1],  # past the end
        to_json(q.graph_page(WINDOW, Level.SERVICE, Page(5), namespace="ns1")[0]),
        to_json(q.graph_page(WINDOW, Level.SERVICE, Page(2), coverage=Coverage.FULL)[0]),
        *(_edge_pages(q, limit) for limit in (1, 6, 1000)),
        _edge_pages(q, 3, namespace="ns2"),
        _edge_pages(q, 2, coverage=Coverage.L7_ONLY),
        q.services(WINDOW, Level.SERVICE, None),
        q.services(WINDOW, Level.SERVICE, None, Page(3, 2)),
        q.coverage(WINDOW, None, 100),
        q.coverage(WINDOW, "ns0", 2, 1),
        to_json(q.graph(WINDOW, Level.SERVICE)),  # the whole graph, every edge's exemplars
    ]


@pytest.mark.parametrize("cache_windows", [2, 0])
def test_listings_answer_as_when_every_edge_had_its_exemplars(
    engine: Engine, cache_windows: int
) -> None:
    _store(engine)
    q = GraphQueries(engine, 60, cache_windows=cache_windows)
    before = EveryExemplarFirst(engine, 60, cache_windows=cache_windows)
    answers = _answers(q)
    assert answers == _answers(before)
    # Not vacuous: shown edges carry exemplars, the moved unknown caller's and an alias's too.
    shown = [e for page in answers[2] for e in page.get("edges", [])]
    with_exemplars = {e["id"] for e in shown if e["exemplars"]}
    assert len(with_exemplars) >= 5
    assert "ns1/s1->ns2/sink" in with_exemplars  # its exemplars are the moved caller's
    assert any(e["id"].startswith("ns0/s3->") for e in shown if e["exemplars"])


def _asked(monkeypatch: pytest.MonkeyPatch) -> list[set[Pair] | None]:
    """The pairs every exemplar read asks for (None: the whole window's)."""
    asked: list[set[Pair] | None] = []
    read = ExemplarRepository.for_edges

    def spy(
        self: ExemplarRepository,
        conn: Connection,
        level: str,
        first: int,
        end: int,
        pairs: Any = None,
        *,
        top: bool = False,
    ) -> dict[Pair, list[Exemplar]]:
        asked.append(None if pairs is None else set(pairs))
        return read(self, conn, level, first, end, pairs, top=top)

    monkeypatch.setattr(ExemplarRepository, "for_edges", spy)
    return asked


@pytest.mark.parametrize("cache_windows", [2, 0])
def test_exemplars_are_read_for_the_page_edges_only(
    engine: Engine, cache_windows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store(engine)
    q = GraphQueries(engine, 60, cache_windows=cache_windows)
    total = len(q.whole_graph(WINDOW, Level.SERVICE).edges)
    asked = _asked(monkeypatch)

    q.services(WINDOW, Level.SERVICE, None)
    q.coverage(WINDOW, None, 100)
    assert asked == []  # they show no exemplars

    answer = q.edges(WINDOW, Level.SERVICE, None, None, 0.0, limit=3, offset=2)
    page = {tuple(e["id"].split("->")) for e in answer["edges"]}
    assert len(page) == 3 and total > 6
    # the page's pairs, and the stored pairs merged into them (alias, moved caller) only
    stored = {("ns0/s0", t) for _, t in page} | {(s, "ns0/s0") for s, _ in page}
    stored |= {(UNKNOWN, t) for _, t in page}
    assert asked and all(p is not None and p <= page | stored for p in asked)
    assert all(p is not None and p & page for p in asked)

    asked.clear()
    graph, _ = q.graph_page(WINDOW, Level.SERVICE, Page(2, 1))
    page = {(e.source, e.target) for e in graph.edges}
    assert len(page) == 2
    stored = {("ns0/s0", t) for _, t in page} | {(s, "ns0/s0") for s, _ in page}
    stored |= {(UNKNOWN, t) for _, t in page}
    assert asked and all(p is not None and p <= page | stored for p in asked)
