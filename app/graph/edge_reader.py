"""One window of merged, attributed edges read on one connection (used by queries.py only).

Rows are merged per (source, target) exactly (app/edge/merge.py), turned into `GraphEdge`
with one L4 reporter per edge chosen over the whole window (destination if it reported any
traffic in the window, else source: `choose_l4`), then attributed (graph/attribution.py).
Attribution needs every edge into a target, so an outgoing fetch also reads the in-edges of
those of its targets that have an edge from an `unknown` node (an indexed probe finds them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Row

from app.domain import Level, NodeKind, Provenance
from app.edge.bucket import EdgeBucket
from app.edge.exemplars import top_exemplars
from app.edge.merge import merge_rows, merge_values, merged
from app.edge.stats import choose_l4, chosen_sides, l7_stats
from app.edge.zones import zone_stats
from app.graph.aliases import AliasMap
from app.graph.attribution import Pair, attribute
from app.graph.model import GraphEdge, GraphNode, L7Stats, node_from_id
from app.graph.window import Window
from app.graph.window_cache import MergedWindow, NodeFacts, WholeWindow
from app.hot_path import fast_replace
from app.store.edges import EdgeRepository
from app.store.exemplars import ExemplarRepository
from app.store.nodes import NodeRepository

_NO_ALIASES = AliasMap()

# `replace(edge, exemplars=...)` for every edge of every answer, at a fifth of the cost.
_with_exemplars = fast_replace(GraphEdge, "exemplars")


def to_graph_edge(source: str, target: str, bucket: EdgeBucket) -> GraphEdge:
    """A window's merged bucket of `source → target` as the graph shows it."""
    chosen = choose_l4(bucket.l4, bucket.l4_failures)
    l4 = None if chosen is None else replace(chosen, principals=tuple(sorted(bucket.l4_principals)))
    # Stored candidates are share sums over requests; normalised they are the window's shares.
    total = sum(bucket.l7_candidates.values())
    candidates = {k: v / total for k, v in bucket.l7_candidates.items()} if total else {}
    provenance = dict(bucket.l7_provenance)
    if bucket.l7m_requests:
        provenance[Provenance.WAYPOINT_METRICS.value] = bucket.l7m_requests
    return GraphEdge(
        source,
        target,
        protocol=bucket.protocol,
        via=bucket.via,
        l7=l7_stats(bucket),
        l4=l4,
        provenance=provenance,
        candidates=candidates,
        zones=zone_stats(bucket.l4_zone_bytes, chosen_sides(bucket.l4))
        if bucket.l4_zone_bytes
        else None,
    )


class EdgeReader:
    def __init__(
        self,
        conn: Connection,
        window: Window,
        level: Level,
        bucket_s: int,
        aliases: AliasMap | None = None,
        sampling_rate: float | None = None,
        cached: MergedWindow | None = None,
        facts: NodeFacts | None = None,
    ) -> None:
        self.conn, self.window, self.level = conn, window, str(level.value)
        # The configured trace sampling rate (0..1), shown on edges whose counts are spans only.
        self.sampling_rate = sampling_rate
        # Stored alias ids read as their canonical service (app/graph/aliases.py).
        # `aliases` itself when given, empty or not: what is kept per alias map (the graph nodes
        # made, app/graph/window_cache.py NodeFacts) is keyed by its identity.
        self.aliases = (aliases if aliases is not None else _NO_ALIASES).for_level(level)
        self.rejoined: dict[Pair, list[Pair]] = {}  # canonical pair -> stored pairs merged in
        self.bucket_s = bucket_s
        self.first_s, self.end_s = window.bucket_range(bucket_s)
        self.edge_repo, self.node_repo = EdgeRepository(), NodeRepository()
        self.merged: dict[Pair, EdgeBucket] = {}  # stored sketches decoded only if attributed
        self.moved: dict[Pair, Pair] = {}
        # The window merged once for many requests (app/graph/window_cache.py), and node facts
        # shared until the store changes; the answer is the same without them.
        self.cached, self.facts = cached, facts
        self._kinds: dict[str, str] = (
            {}
            if facts is None
            else facts.kinds_of(self.level, lambda: self.node_repo.kinds_at(conn, self.level))
        )
        self._unknown: set[str] | None = None if facts is None else facts.unknown[self.level]
        # spans and metric requests over the buckets with waypoint metrics read so far
        self._observed_spans = self._observed_requests = 0

    # ---- nodes ----------------------------------------------------------------------------
    def kinds(self, ids: Iterable[str]) -> dict[str, str]:
        missing = {i for i in ids if i not in self._kinds}
        if missing:
            found = self.node_repo.kinds(self.conn, self.level, missing)
            for node_id in missing:
                self._kinds[node_id] = found.get(node_id, "")
        return self._kinds

    def unknown_ids(self) -> set[str]:
        """The level's unknown-kind nodes (callers the correlator could not name): one query
        per reader, usually few or none."""
        if self._unknown is None:
            self._unknown = self.node_repo.ids_of_kind(
                self.conn, self.level, NodeKind.UNKNOWN.value
            )
        return self._unknown

    def unknown_among(self, ids: Iterable[str]) -> set[str]:
        return self.unknown_ids().intersection(ids)

    def graph_nodes(self, ids: Iterable[str]) -> dict[str, GraphNode]:
        ids = set(ids)
        made = {} if self.facts is None else self.facts.nodes_of(self.level, self.aliases)
        out = {i: made[i] for i in ids if i in made}
        ids -= out.keys()
        names = self.aliases.names
        kinds = self.kinds(self.aliases.expand(ids))
        for i in ids:
            kind = kinds[i] or next((kinds[a] for a in names(i) if kinds[a]), "")
            out[i] = made[i] = replace(
                node_from_id(i, NodeKind(kind or NodeKind.SERVICE.value)), aliases=names(i)
            )
        return out

    # ---- edges ----------------------------------------------------------------------------
    def _edges(self, rows: Iterable[Row[Any]]) -> dict[Pair, GraphEdge]:
        return self._edges_of(merge_rows(rows))

    def _edges_of(self, buckets: dict[Pair, EdgeBucket]) -> dict[Pair, GraphEdge]:
        """Merged buckets per stored pair as graph edges, aliases rejoined; a cached window's
        edges built once (a pair whose bucket is the cached one: not rejoined with another)."""
        if self.aliases:
            buckets = self._rejoin(buckets)
        cached = self.cached
        out = {}
        for pair, bucket in buckets.items():
            self.merged[pair] = bucket
            if cached is not None and cached.buckets.get(pair) is bucket:
                out[pair] = cached.edges[pair]
            else:
                out[pair] = to_graph_edge(*pair, bucket)
        self._observe_sampling(buckets.values())
        return out

    def _observe_sampling(self, buckets: Iterable[EdgeBucket]) -> None:
        for b in buckets:
            if b.l7m_requests:
                self._observed_spans += b.l7_requests
                self._observed_requests += b.l7m_requests

    def with_sampling(self, edges: list[GraphEdge]) -> list[GraphEdge]:
        """Span-only edges say the rate their counts were sampled at: the configured one, else
        the share observed (spans ÷ requests) on the edges with waypoint metrics this reader read
        for the same answer. No query of its own: a window-wide aggregate was a full scan per
        request (0.44 s of each /graph on bench/graph.py's store)."""
        rate = self.sampling_rate
        if rate is None and self._observed_requests:
            rate = self._observed_spans / self._observed_requests
        if rate is None:
            return edges
        return [
            replace(e, l7=replace(e.l7, sampling_share=rate))
            if e.l7 is not None and not e.l7.exact and e.l7.requests
            else e
            for e in edges
        ]

    def _rejoin(self, buckets: dict[Pair, EdgeBucket]) -> dict[Pair, EdgeBucket]:
        canonical = self.aliases.canonical
        out: dict[Pair, EdgeBucket] = {}
        for (source, target), bucket in buckets.items():
            pair = (canonical(source), canonical(target))
            if pair != (source, target):
                self.rejoined.setdefault(pair, [pair]).append((source, target))
            if pair[0] == pair[1] and (source, target) != pair:
                continue  # an alias of a service calling the service itself: not an edge
            same = out.get(pair)
            if same is None:
                out[pair] = bucket
                continue
            both = merged(same, bucket)
            l7 = next((b.protocol for b in (same, bucket) if b.protocol not in ("", "tcp")), "")
            if l7:
                both.protocol = l7  # the L7 layer names the protocol
            out[pair] = both
        return out

    def _read(self, **names: set[str]) -> dict[Pair, GraphEdge]:
        """The window's edges from the store (rows leaving `sources` or entering `targets`,
        or all), whole coarse buckets read from the roll-ups (same merge); the ids' aliases are
        read too. Values rows straight from the driver (`window_values_rolled`)."""
        expanded = {k: self.aliases.expand(v) for k, v in names.items()}
        values = self.edge_repo.window_values_rolled(
            self.conn, self.level, self.first_s, self.end_s, self.bucket_s, **expanded
        )
        return self._edges_of(merge_values(values))

    def _attribute(self, edges: Iterable[GraphEdge]) -> list[GraphEdge]:
        edges = list(edges)
        unknown = self.unknown_among({n for e in edges for n in (e.source, e.target)})
        if not unknown:
            return edges
        local: dict[Pair, EdgeBucket] = {}  # this call's merged buckets; the base stays

        def merge_l7(into: GraphEdge, other: GraphEdge) -> L7Stats | None:
            a, b = (into.source, into.target), (other.source, other.target)
            both = merged(local.get(a) or self.merged[a], self.merged[b])
            local[a] = both
            return l7_stats(both)

        result = attribute(edges, unknown, merge_l7)
        self.moved.update(result.moved)
        return result.edges

    def fetch(self, node_ids: set[str], outgoing: bool) -> list[GraphEdge]:
        """`neighbourhood`'s fetcher: edges leaving (or entering) `node_ids`, attributed."""
        if self.cached is not None:
            return self._fetch_cached(self.cached, node_ids, outgoing)
        args = (self.conn, self.level, self.first_s, self.end_s)
        if not outgoing:
            return self._attribute(self._read(targets=node_ids).values())
        edges = self._read(sources=node_ids)
        targets = {target for _, target in edges}
        contested = (
            self.edge_repo.targets_with_unknown_sources(
                *args, self.aliases.expand(targets), self.unknown_ids()
            )
            if targets
            else set()
        )
        contested = {self.aliases.canonical(t) for t in contested}
        if contested:
            edges.update(self._read(targets=contested))
        return [e for e in self._attribute(edges.values()) if e.source in node_ids]

    def _fetch_cached(
        self, cached: MergedWindow, node_ids: set[str], outgoing: bool
    ) -> list[GraphEdge]:
        """`fetch` from the cached window: the same pairs as the queries read, merged once."""
        expand = self.aliases.expand
        if not outgoing:
            return self._attribute(self._edges_of(cached.entering(expand(node_ids))).values())
        edges = self._edges_of(cached.leaving(expand(node_ids)))
        targets = {target for _, target in edges}
        unknown = self.unknown_ids() if targets else set()
        contested = cached.targets_entered_from(expand(targets), unknown) if unknown else set()
        contested = {self.aliases.canonical(t) for t in contested}
        if contested:
            edges.update(self._edges_of(cached.entering(expand(contested))))
        return [e for e in self._attribute(edges.values()) if e.source in node_ids]

    def attribute_rows(self, rows: Iterable[Row[Any]]) -> list[GraphEdge]:
        return self._attribute(self._edges(rows).values())

    def all_edges(self) -> list[GraphEdge]:
        cached = self.cached
        if cached is None:
            return self._attribute(self._read().values())
        # The whole window attributed once per alias map and unknown nodes (listings read it
        # on every request): the edges and what the reader learned making them.
        unknown = frozenset(self.unknown_ids())
        whole = cached.whole
        if whole is None or whole.aliases != self.aliases or whole.unknown != unknown:
            before = (self._observed_spans, self._observed_requests)
            edges = self._attribute(self._edges_of(cached.buckets).values())
            whole = cached.keep_whole(
                WholeWindow(
                    self.aliases,
                    unknown,
                    tuple(edges),
                    dict(self.moved),
                    {pair: list(stored) for pair, stored in self.rejoined.items()},
                    dict(self.merged),
                    self._observed_spans - before[0],
                    self._observed_requests - before[1],
                )
            )
            self._observed_spans, self._observed_requests = before
        self.moved.update(whole.moved)
        for pair, stored in whole.rejoined.items():
            self.rejoined.setdefault(pair, []).extend(stored)
        self.merged.update(whole.merged)
        self._observed_spans += whole.observed_spans
        self._observed_requests += whole.observed_requests
        return list(whole.edges)

    def with_exemplars(self, edges: list[GraphEdge], everything: bool = False) -> list[GraphEdge]:
        """The edges with their window's exemplars (of moved unattributed edges too)."""
        sources: dict[Pair, list[Pair]] = {
            (e.source, e.target): [(e.source, e.target)] for e in edges
        }
        for moved_from, into in self.moved.items():
            if into in sources:
                sources[into].append(moved_from)
        for pairs in list(sources.values()):
            for pair in list(pairs):
                pairs.extend(p for p in self.rejoined.get(pair, ()) if p != pair)
        wanted = None if everything else [p for ps in sources.values() for p in ps]
        if self.cached is not None:
            found = self.cached.exemplars(self.conn, wanted)
        else:
            found = ExemplarRepository().for_edges(
                self.conn, self.level, self.first_s, self.end_s, wanted, top=True
            )
        if not found:
            return edges
        out = []
        for edge in edges:
            rows = [r for p in sources[(edge.source, edge.target)] for r in found.get(p, ())]
            if rows:
                edge = _with_exemplars(edge, tuple(top_exemplars(rows)))
            out.append(edge)
        return out
