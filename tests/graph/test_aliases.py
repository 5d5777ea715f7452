"""Aliases stored, loaded and applied at read time (SQLite and PostgreSQL): an alias learned after
the edges were written re-joins them under the canonical service."""

from __future__ import annotations

from sqlalchemy import Engine

from app.domain import Alias, AliasSource, Coverage, Level
from app.edge.batch import AggregateBatch
from app.graph.aliases import AliasMap, cached_aliases, name_forms
from app.graph.queries import GraphQueries
from app.graph.window import Window
from app.store.aliases import AliasRepository
from app.store.schema import upgrade
from app.store.writer import write_batch
from tests.store.batches import batch, l4_bucket, l7_bucket

T0 = 36_000
WINDOW = Window(T0 - 60, T0 + 120)


def _write_split_graph(engine: Engine) -> None:
    """What a real cluster writes before any alias is known: the waypoint span names the
    Kubernetes Service, the app span its OTel name, ztunnel the canonical service."""
    upgrade(engine)
    write_batch(
        engine,
        batch(
            {
                (T0, "bookinfo/productpage", "bookinfo/bookinfo-reviews"): l7_bucket([5.0, 7.0]),
                (T0, "bookinfo/productpage", "bookinfo/reviews"): l4_bucket(2, nbytes=900),
                (T0, "bookinfo/reviews-svc", "bookinfo/ratings"): l7_bucket([1.0]),
                (T0, "bookinfo/reviews", "bookinfo/ratings"): l4_bucket(1, nbytes=100),
            }
        ),
    )


def test_a_late_alias_rejoins_stored_edges_into_one_node_with_full_edges(engine: Engine) -> None:
    _write_split_graph(engine)
    queries = GraphQueries(engine, 60)
    before = queries.graph(WINDOW, Level.SERVICE)
    assert len(before.edges) == 4
    write_batch(
        engine,
        AggregateBatch(
            aliases=[
                Alias("bookinfo", "bookinfo-reviews", "reviews", AliasSource.ZTUNNEL),
                Alias("bookinfo", "reviews-svc", "reviews", AliasSource.SPAN),
            ]
        ),
    )
    queries.aliases.invalidate()
    graph = queries.graph(WINDOW, Level.SERVICE)
    by_pair = {(e.source, e.target): e for e in graph.edges}
    assert set(by_pair) == {
        ("bookinfo/productpage", "bookinfo/reviews"),
        ("bookinfo/reviews", "bookinfo/ratings"),
    }
    assert all(e.coverage is Coverage.FULL for e in graph.edges)
    into = by_pair[("bookinfo/productpage", "bookinfo/reviews")]
    assert into.l7 is not None and into.l7.requests == 2
    assert into.l4 is not None and into.l4.bytes_sent == 900
    assert into.protocol == "http"
    node = graph.nodes["bookinfo/reviews"]
    assert node.aliases == ("bookinfo/bookinfo-reviews", "bookinfo/reviews-svc")
    # any alias or FQDN form names the node
    for name in ("bookinfo-reviews", "bookinfo/reviews-svc", "bookinfo-reviews.bookinfo.svc"):
        around = queries.graph(WINDOW, Level.SERVICE, service=name)
        assert ("bookinfo/reviews", "bookinfo/ratings") in {
            (e.source, e.target) for e in around.edges
        }, name
    services = {s["id"]: s for s in queries.services(WINDOW, Level.SERVICE, None)["services"]}
    assert "bookinfo/bookinfo-reviews" not in services
    assert services["bookinfo/reviews"]["aliases"] == list(node.aliases)


def test_the_alias_table_keeps_the_stronger_source(engine: Engine) -> None:
    upgrade(engine)
    repo = AliasRepository()
    with engine.begin() as conn:
        repo.upsert(conn, [Alias("db", "redis-master", "redis", AliasSource.KUBERNETES)])
        repo.upsert(conn, [Alias("db", "redis-master", "cache", AliasSource.SPAN)])
        repo.upsert(conn, [Alias("db", "x", "y", AliasSource.SPAN)])
        repo.upsert(conn, [Alias("db", "x", "z", AliasSource.SETTING)])
    with engine.connect() as conn:
        got = {(a.name, a.service, a.source) for a in repo.all(conn)}
    assert got == {
        ("redis-master", "redis", AliasSource.KUBERNETES),
        ("x", "z", AliasSource.SETTING),
    }


def test_alias_chains_resolve_and_name_forms() -> None:
    aliases = AliasMap.from_aliases(
        [
            Alias("ns", "a", "b", AliasSource.SPAN),
            Alias("ns", "b", "c", AliasSource.ZTUNNEL),
        ]
    )
    assert aliases.canonical("ns/a") == "ns/c" and aliases.names("ns/c") == ("ns/a", "ns/b")
    assert aliases.for_level(Level.WORKLOAD).canonical("ns/a") == "ns/a"
    assert name_forms("reviews.bookinfo.svc.cluster.local")[-1] == "bookinfo/reviews"
    assert name_forms("reviews:9080") == ["reviews:9080", "reviews"]


def test_rereading_the_same_aliases_keeps_the_map() -> None:
    """What the read side keeps per alias map (graph nodes, the attributed whole window) lives
    until the aliases change, not until the next read."""
    table = [Alias("ns", "old", "new", AliasSource.ZTUNNEL)]
    aliases = cached_aliases(lambda: list(table), ttl_s=0.0)
    first = aliases.get()
    assert aliases.get() is first
    table.append(Alias("ns", "other", "new", AliasSource.SPAN))
    changed = aliases.get()
    assert changed is not first and changed.canonical("ns/other") == "ns/new"
