"""Read-side queries behind the REST and Grafana routes: the only place that combines
repositories (store) with graph rules (neighbourhood, attribution, triage).

Route handlers call these methods (in a thread pool) and only pick an output format. Each call
reads on one connection; edge windows are merged exactly from the stored buckets whose start
lies in the window (`Window.bucket_range`), or taken from the window cache
(app/graph/window_cache.py: the same merge, kept until a write touches it).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine

from app.domain import Alias, Coverage, Level, NodeKind, Reporter, ZtunnelCount
from app.edge.bucket import EdgeBucket
from app.edge.fields import SOLE
from app.edge.merge import merge_rows_by_bucket, merge_values
from app.edge.recent_hops import RecentHops, merge_hops
from app.edge.stats import l7_stats
from app.graph import advisor
from app.graph.aliases import cached_aliases, name_forms
from app.graph.cost import CostModel, cost_report
from app.graph.edge_reader import EdgeReader, to_graph_edge
from app.graph.export import edge_json, node_rates, rfc3339, window_json
from app.graph.model import Graph, GraphEdge, GraphNode, L4Stats, rate_seconds
from app.graph.neighbourhood import Direction, blast_radius, neighbourhood
from app.graph.page import Page
from app.graph.read_every import ReadEvery
from app.graph.triage import triage
from app.graph.window import Window
from app.graph.window_cache import MergedWindow, NodeFacts, WindowCache, WindowKey
from app.store.aliases import AliasRepository
from app.store.edges import EdgeRepository
from app.store.engine import read_only
from app.store.exemplars import ExemplarRepository
from app.store.nodes import NodeRepository
from app.store.traces import TraceHopRepository


class UnknownNode(LookupError):
    """A node named in a query does not exist in the window; carries the closest known names."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        super().__init__(name)
        self.name, self.suggestions = name, suggestions

    def describe(self, where: str) -> str:
        """What REST and Grafana say: the name, `where` it was looked for, the closest names."""
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        return f"no node named {self.name!r} in {where}{hint}"


def _volume(edge: GraphEdge) -> int:
    return edge.l4.bytes_total if edge.l4 else 0


def busiest_first(edge: GraphEdge) -> tuple[int, int, str]:
    return (-(edge.l7.requests if edge.l7 else 0), -_volume(edge), edge.id)


def _in_namespace(edge: GraphEdge, namespace: str | None) -> bool:
    if namespace is None:
        return True
    return namespace in (edge.source.partition("/")[0], edge.target.partition("/")[0])


def _page_of(
    whole: Graph,
    page: Page,
    keep: Iterable[str],
    attach: Callable[[list[GraphEdge]], list[GraphEdge]],
) -> tuple[Graph, dict[str, Any]]:
    """`page` of `whole`'s edges (busiest first), `attach`ed (exemplars: the page's only), with
    the nodes they touch and `keep`'s; the whole graph, in its order, when it fits the page."""
    edges, page_json = page.take(sorted(whole.edges, key=busiest_first))
    page_json["total_nodes"] = len(whole.nodes)
    if not page_json["truncated"] and not page.offset:
        return replace(whole, edges=attach(whole.edges)), page_json
    kept = {n for e in edges for n in (e.source, e.target)}
    kept.update(keep)
    nodes = {i: n for i, n in whole.nodes.items() if i in kept}
    # replace(), not Graph(...): every other field (window, rate start) stays the whole's.
    return replace(whole, nodes=nodes, edges=attach(edges)), page_json


class GraphQueries:
    def __init__(
        self,
        engine: Engine,
        bucket_s: int,
        sampling_rate: float | None = None,
        cache_windows: int = 2,
        cache_in_background: bool = False,
        cache_max_edges: int | None = None,
        recent_hops: RecentHops | None = None,
    ) -> None:
        # Reads never write: on SQLite they must not take (and queue for) the write lock.
        self.engine, self.bucket_s = read_only(engine), bucket_s
        self.sampling_rate = sampling_rate  # configured trace sampling (0..1), None = observe
        self._nodes, self._edges, self._hops = (
            NodeRepository(),
            EdgeRepository(),
            TraceHopRepository(),
        )
        # Hops of recent traces the store does not keep (app/correlate/kept_traces.py).
        self.recent_hops = recent_hops if recent_hops is not None else RecentHops(0)
        self.aliases = cached_aliases(self._read_aliases)
        self.first_data = ReadEvery(self._read_first_data)
        self.cache = WindowCache(
            self._read_window,
            lambda conn, key: ExemplarRepository().pairs_in(conn, *key),
            self.engine.connect,
            to_graph_edge,
            cache_windows,
            cache_in_background,
            cache_max_edges,
        )

    def _read_window(self, conn: Connection, key: WindowKey) -> dict[tuple[str, str], EdgeBucket]:
        level, first, end = key
        return merge_values(
            self._edges.window_values_rolled(conn, level, first, end, self.bucket_s)
        )

    def _cached(
        self, conn: Connection, window: Window, level: Level, *, wait: bool
    ) -> MergedWindow | None:
        """The window merged once (app/graph/window_cache.py): built now when `wait` (the
        caller merges the whole window anyway), else only if it is there (one is built in the
        background). None when the cache is off."""
        cache = self.cache
        if not cache.enabled:
            return None
        cache.check(conn)
        first, end = window.bucket_range(self.bucket_s)
        b = self.bucket_s
        key = (level.value, first, -(-end // b) * b)
        found = cache.get(key)
        if found is not None or key[2] <= first:
            return found
        if wait or not cache.background:
            return cache.build(key, conn)
        cache.build_soon(key, conn)
        return None

    def _read_aliases(self) -> list[Alias]:
        with self.engine.connect() as conn:
            return AliasRepository().all(conn)

    def _read_first_data(self) -> int | None:
        with self.engine.connect() as conn:
            return self._nodes.first_seen(conn)

    def observed_from(self, window: Window) -> float:
        """Where every rate over `window` starts: its observed part (Window.observed_start)."""
        return window.observed_start(self.bucket_s, self.first_data.get())

    def _window_json(self, window: Window) -> dict[str, Any]:
        return window_json(window.start_s, window.end_s, self.observed_from(window))

    def _cached_reader(
        self, conn: Connection, window: Window, level: Level, *, wait: bool
    ) -> EdgeReader:
        """A reader of `window` from the window cache when it has it (`_cached`)."""
        cached = self._cached(conn, window, level, wait=wait)
        return self._reader(conn, window, level, cached, checked=True)

    def _reader(
        self,
        conn: Connection,
        window: Window,
        level: Level,
        cached: MergedWindow | None = None,
        checked: bool = False,
    ) -> EdgeReader:
        """A reader of `window`; `checked`: the cache was checked on `conn` (`_cached`), so its
        node facts are current."""
        return EdgeReader(
            conn,
            window,
            level,
            self.bucket_s,
            self.aliases.get(),
            self.sampling_rate,
            cached,
            self.cache.facts if checked and self.cache.enabled else None,
        )

    # ---- names ----------------------------------------------------------------------------
    def _resolve(
        self,
        conn: Connection,
        name: str,
        level: Level,
        window: Window,
        namespace: str | None = None,
        facts: NodeFacts | None = None,
    ) -> str:
        """A "name" or "namespace/name" (or any alias or FQDN form of one) -> node id, or
        UnknownNode with the closest known ids. `facts`: the cache's node facts, current on
        `conn` (the look-ups are then dict reads)."""
        start, end_s = window.start_s, window.end_s
        aliases = self.aliases.get().for_level(level)
        wanted = name.strip()

        def seen_ids(node_id: str | None = None, name: str | None = None) -> list[str]:
            if facts is not None:
                read = partial(self._nodes.seen_at, conn, level.value)
                return facts.seen_ids(level.value, read, start, end_s, node_id=node_id, name=name)
            if node_id is not None:
                return self._nodes.seen_ids(conn, level.value, start, end_s, node_id=node_id)
            return [
                i
                for i in self._nodes.seen_ids(conn, level.value, start, end_s, id_suffix=f"/{name}")
                if i.partition("/")[2] == name
            ]

        for form in name_forms(wanted):
            if "/" not in form and namespace:
                form = f"{namespace}/{form}"
            if "/" in form:
                canonical = aliases.canonical(form)
                if canonical != form:
                    return canonical
                if seen_ids(node_id=form):
                    return form
                first, end = window.bucket_range(self.bucket_s)
                if self._edges.node_exists(conn, level.value, first, end, form):
                    return form
                continue
            matches = {aliases.canonical(i) for i in seen_ids(name=form)}
            matches.update(aliases.named(form))
            if len(matches) == 1:
                return matches.pop()
            if matches:  # the same name in several namespaces: ask which one
                raise UnknownNode(name, sorted(matches)[:5])
        if "/" not in wanted and namespace:
            wanted = f"{namespace}/{wanted}"
        # Not found: read every node seen for the closest names.
        ids: list[str] = [row.id for row in self._nodes.seen_in(conn, level.value, start, end_s)]
        by_name: dict[str, list[str]] = {}
        for node_id in ids:
            by_name.setdefault(node_id, []).append(node_id)
            by_name.setdefault(node_id.partition("/")[2], []).append(node_id)
        suggestions: list[str] = []
        for close in difflib.get_close_matches(wanted, list(by_name), n=5, cutoff=0.6):
            suggestions.extend(i for i in by_name[close] if i not in suggestions)
        raise UnknownNode(name, suggestions[:5])

    # ---- graphs ---------------------------------------------------------------------------
    def _graph(
        self,
        reader: EdgeReader,
        edges: list[GraphEdge],
        window: Window,
        coverage: Coverage | None = None,
        keep: Iterable[str] = (),
    ) -> Graph:
        if coverage is not None:
            edges = [e for e in edges if e.coverage is coverage]
        ids = {n for e in edges for n in (e.source, e.target)} | set(keep)
        edges = reader.with_sampling(edges)
        return Graph(
            reader.graph_nodes(ids), edges, window.start_s, window.end_s, self.observed_from(window)
        )

    def graph(
        self,
        window: Window,
        level: Level,
        *,
        service: str | None = None,
        namespace: str | None = None,
        depth: int = 1,
        direction: Direction = Direction.BOTH,
        coverage: Coverage | None = None,
    ) -> Graph:
        """The neighbourhood of `service` (or a namespace's edges, or the whole mesh)."""
        return self._graph_around(window, level, service, namespace, depth, direction, coverage)[0]

    def _graph_around(
        self,
        window: Window,
        level: Level,
        service: str | None,
        namespace: str | None,
        depth: int,
        direction: Direction,
        coverage: Coverage | None,
    ) -> tuple[Graph, str | None]:
        """`graph` and the centre's node id (None without `service`)."""
        if service is None:
            with self._whole(window, level, namespace, coverage) as (whole, reader):
                edges = reader.with_exemplars(whole.edges, everything=True)
            return replace(whole, edges=edges), None
        with self.engine.connect() as conn:
            reader = self._cached_reader(conn, window, level, wait=False)
            center = self._resolve(conn, service, level, window, namespace, reader.facts)
            edges = neighbourhood([center], depth, direction, reader.fetch)
            graph = self._graph(reader, reader.with_exemplars(edges), window, coverage, [center])
            return graph, center

    def graph_page(
        self,
        window: Window,
        level: Level,
        page: Page,
        *,
        service: str | None = None,
        namespace: str | None = None,
        depth: int = 1,
        direction: Direction = Direction.BOTH,
        coverage: Coverage | None = None,
    ) -> tuple[Graph, dict[str, Any]]:
        """`graph` with only the page's edges (busiest first) and the nodes they touch (the
        centre always), and the page's JSON; totals count the whole graph."""
        if service is not None:
            whole, center = self._graph_around(
                window, level, service, namespace, depth, direction, coverage
            )
            return _page_of(whole, page, [center] if center else [], list)
        with self._whole(window, level, namespace, coverage) as (whole, reader):
            return _page_of(whole, page, [], reader.with_exemplars)

    @contextmanager
    def _whole(
        self,
        window: Window,
        level: Level,
        namespace: str | None = None,
        coverage: Coverage | None = None,
    ) -> Iterator[tuple[Graph, EdgeReader]]:
        """The whole window's graph (the window cache's, built if missing) with no exemplars,
        and its reader, open for `with_exemplars` of the edges a listing shows: reading every
        edge's exemplars first held them all (40,830 edges on bench/cardinality.py's hour)."""
        with self.engine.connect() as conn:
            reader = self._cached_reader(conn, window, level, wait=True)
            edges = [e for e in reader.all_edges() if _in_namespace(e, namespace)]
            yield self._graph(reader, edges, window, coverage), reader

    def whole_graph(self, window: Window, level: Level) -> Graph:
        """The whole window's graph without exemplars (for answers that show none)."""
        with self._whole(window, level) as (graph, _):
            return graph

    def node_list(self, window: Window, kind: str | None) -> list[GraphNode]:
        """Nodes seen in the window; workloads at level workload, everything else at service."""
        level = Level.WORKLOAD if kind == NodeKind.WORKLOAD.value else Level.SERVICE
        with self.engine.connect() as conn:
            rows = self._nodes.seen_in(conn, level.value, window.start_s, window.end_s, kind)
        out = self._seen_nodes(rows, level)
        return [out[k] for k in sorted(out)]

    def _seen_nodes(self, rows: Iterable[Any], level: Level) -> dict[str, GraphNode]:
        """Stored node rows folded under their canonical ids, each with its aliases."""
        aliases = self.aliases.get().for_level(level)
        out: dict[str, GraphNode] = {}
        for row in rows:
            node_id = aliases.canonical(row.id)
            if node_id not in out:
                node_ns, _, node_name = node_id.partition("/")
                out[node_id] = GraphNode(
                    node_id, node_ns, node_name, NodeKind(row.kind), aliases.names(node_id)
                )
        return out

    # ---- REST listings --------------------------------------------------------------------
    def services(
        self, window: Window, level: Level, namespace: str | None, page: Page | None = None
    ) -> dict[str, Any]:
        graph = self.whole_graph(window, level)
        with self.engine.connect() as conn:
            seen = self._nodes.seen_in(conn, level.value, window.start_s, window.end_s)
        nodes = dict(graph.nodes)
        for node_id, node in self._seen_nodes(seen, level).items():
            nodes.setdefault(node_id, node)
        rates = node_rates(
            Graph(nodes, graph.edges, window.start_s, window.end_s, graph.observed_from_s)
        )
        requests_in: dict[str, int] = {}
        classes: dict[str, dict[str, int]] = {n: {} for n in nodes}
        for edge in graph.edges:
            if edge.l7 is not None:
                requests_in[edge.target] = requests_in.get(edge.target, 0) + edge.l7.requests
            for node_id in {edge.source, edge.target}:
                counts = classes[node_id]
                counts[edge.coverage.value] = counts.get(edge.coverage.value, 0) + 1
        listed = sorted(
            (n for n in nodes.values() if namespace is None or n.namespace == namespace),
            key=lambda n: n.id,
        )
        shown, page_json = (page or Page(len(listed) or 1)).take(listed)
        services = []
        for node in shown:
            rate, received = rates[node.id], requests_in.get(node.id, 0)
            services.append(
                {
                    "id": node.id,
                    "namespace": node.namespace,
                    "name": node.name,
                    "kind": node.kind.value,
                    "aliases": list(node.aliases),
                    "rps_in": rate["rps_in"],
                    "rps_out": rate["rps_out"],
                    "error_rate_in": round(int(rate["errors_in"] or 0) / received, 6)
                    if received
                    else None,
                    "bytes_in": rate["bytes_in"],
                    "bytes_out": rate["bytes_out"],
                    "coverage": classes[node.id],
                }
            )
        return {
            "window": self._window_json(window),
            "services": services,
            "page": page_json,
        }

    def edges(
        self,
        window: Window,
        level: Level,
        namespace: str | None,
        coverage: Coverage | None,
        min_rps: float,
        limit: int,
        offset: int = 0,
    ) -> dict[str, Any]:
        with self._whole(window, level) as (graph, reader):
            kept = [
                e
                for e in graph.edges
                if _in_namespace(e, namespace)
                and (coverage is None or e.coverage is coverage)
                and (min_rps <= 0 or graph.rps(e.l7.requests if e.l7 else 0) >= min_rps)
            ]
            kept.sort(key=busiest_first)
            shown, page_json = Page(limit, offset).take(kept)
            shown = reader.with_exemplars(shown)
        return {
            "window": self._window_json(window),
            "edges": [edge_json(e, graph) for e in shown],
            "page": page_json,
        }

    def coverage(
        self, window: Window, namespace: str | None, limit: int, offset: int = 0
    ) -> dict[str, Any]:
        """L4-only traffic ranked by volume: where a waypoint would buy the most visibility."""
        graph = self.whole_graph(window, Level.SERVICE)
        edges = [e for e in graph.edges if _in_namespace(e, namespace) and _volume(e)]
        total = sum(_volume(e) for e in edges)
        blind = sorted(
            (e for e in edges if e.coverage is Coverage.L4_ONLY),
            key=lambda e: (-_volume(e), e.id),
        )
        blind_bytes = sum(_volume(e) for e in blind)
        seen_bytes = sum(_volume(e) for e in edges if e.coverage is Coverage.FULL)
        shown, page_json = Page(limit, offset).take(blind)
        return {
            "window": self._window_json(window),
            "blind_bytes": blind_bytes,
            "total_bytes": total,
            "l7_coverage_by_bytes": round(seen_bytes / total, 6) if total else None,
            "blind_spots": [
                {
                    "edge": e.id,
                    "source": e.source,
                    "target": e.target,
                    "bytes": _volume(e),
                    "connections": e.l4.connections_opened if e.l4 else 0,
                    "mtls_share": e.l4.mtls_share if e.l4 else None,
                    "share_of_blind_bytes": round(_volume(e) / blind_bytes, 6)
                    if blind_bytes
                    else None,
                }
                for e in shown
            ],
            "page": page_json,
        }

    # ---- cost and the waypoint advisor (app/graph/cost.py, advisor.py) --------------------
    def cost(
        self, window: Window, namespace: str | None, model: CostModel, ztunnels: ZtunnelCount
    ) -> dict[str, Any]:
        graph = self.whole_graph(window, Level.SERVICE)
        edges = [e for e in graph.edges if _in_namespace(e, namespace)]
        report = cost_report(model, graph, edges, ztunnels)
        return {"window": self._window_json(window), **report}

    def advisor(
        self, window: Window, namespace: str | None, model: CostModel, limit: int, offset: int = 0
    ) -> dict[str, Any]:
        graph = self.whole_graph(window, Level.SERVICE)
        edges = [e for e in graph.edges if _in_namespace(e, namespace)]
        shown, page_json = Page(limit, offset).take(advisor.candidates(model, graph, edges))
        return {
            "window": self._window_json(window),
            "rank_by": advisor.RANK_BY,
            "candidates": shown,
            "page": page_json,
            "waypoints": advisor.existing(model, edges),
        }

    # ---- triage ---------------------------------------------------------------------------
    def triage(self, service: str, window: Window, baseline_s: float, depth: int) -> dict[str, Any]:
        """Findings for `service`: the window against the baseline window just before it."""
        baseline = Window(window.start_s - baseline_s, window.start_s)
        with self.engine.connect() as conn:
            center = self._resolve(
                conn, service, Level.SERVICE, Window(baseline.start_s, window.end_s)
            )
            now = self._cached_reader(conn, window, Level.SERVICE, wait=False)
            before = self._cached_reader(conn, baseline, Level.SERVICE, wait=False)
            now_edges = now.with_exemplars(
                neighbourhood([center], depth, Direction.BOTH, now.fetch)
            )
            before_edges = neighbourhood([center], depth, Direction.BOTH, before.fetch)
        now_from, before_from = self.observed_from(window), self.observed_from(baseline)
        findings = triage(
            center,
            now_edges,
            before_edges,
            rate_seconds(now_from, window.end_s),
            rate_seconds(before_from, baseline.end_s),
            blast_radius(center, now_edges),
        )
        return {
            "service": center,
            "window": window_json(window.start_s, window.end_s, now_from),
            "baseline": window_json(baseline.start_s, baseline.end_s, before_from),
            "findings": [
                {
                    "kind": f.kind,
                    "severity": f.severity.value,
                    "score": round(f.score, 6),
                    "summary": f.summary,
                    "edge": f.edge or None,
                    "evidence": f.evidence,
                }
                for f in findings
            ],
        }

    # ---- traces ---------------------------------------------------------------------------
    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """The trace's hops in order, each named and attributed as the graph names it over the
        trace's time range (aliases re-joined, unknown callers moved to their L4 caller) with the
        L4 of its edge in that range, and the L4-only edges between the trace's services."""
        b = self.bucket_s
        with self.engine.connect() as conn:
            hops = merge_hops(
                self._hops.hops(conn, trace_id), self.recent_hops.hops(bytes.fromhex(trace_id))
            )
            if not hops:
                return None
            first = min(h.start_ns for h in hops) // 10**9 // b * b
            end = max(h.end_ns for h in hops) // 10**9 // b * b + b
            reader = self._reader(conn, Window(first, end), Level.SERVICE)
            canonical = reader.aliases.canonical
            services = {canonical(n) for h in hops for n in (h.source, h.target)}
            edges = {
                (e.source, e.target): e
                for outgoing in (False, True)
                for e in reader.fetch(services, outgoing)
            }
        graph = Graph({}, list(edges.values()), first, end)
        on_trace = set()
        out_hops = []
        for hop in hops:
            stored = (canonical(hop.source), canonical(hop.target))
            source, target = reader.moved.get(stored, stored)
            on_trace.add((source, target))
            edge = edges.get((source, target))
            out_hops.append(
                {
                    "span_id": hop.span_id,
                    "parent_span_id": hop.parent_span_id,
                    "source": source,
                    "target": target,
                    "via": hop.via or None,
                    "start": rfc3339(hop.start_ns / 1e9),
                    "duration_ms": hop.duration_ms,
                    "status_code": hop.status_code,
                    "error_cause": hop.error_cause or None,
                    "provenance": hop.provenance,
                    "l4": edge_json(edge, graph)["l4"] if edge is not None else None,
                }
            )
        dark = [
            e
            for e in edges.values()
            if e.coverage is Coverage.L4_ONLY
            and e.source in services
            and (e.source, e.target) not in on_trace
        ]
        return {
            "trace_id": trace_id,
            "hops": out_hops,
            "dark_hops": [
                edge_json(e, graph) for e in sorted(dark, key=lambda e: (-_volume(e), e.id))
            ],
        }

    # ---- Grafana series and events ----------------------------------------------------------
    def _bucketed(
        self, window: Window, level: Level, edge_ids: set[str]
    ) -> tuple[dict[str, dict[int, EdgeBucket]], list[int]]:
        """Per requested edge id, its merged buckets in the window (requests attributed to it at
        query time folded in), and the window's bucket starts."""
        pairs = {(s, t) for s, _, t in (i.partition("->") for i in edge_ids) if s and t}
        first, end = window.bucket_range(self.bucket_s)
        buckets = list(range(first, end, self.bucket_s))
        if not pairs:
            return {}, buckets
        with self.engine.connect() as conn:
            reader = self._reader(conn, window, level)
            rows = self._edges.window_rows(
                conn, level.value, first, end, targets=reader.aliases.expand(t for _, t in pairs)
            )
            reader.attribute_rows(rows)
        canonical = reader.aliases.canonical
        grouped: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            stored = (canonical(row.source), canonical(row.target))
            pair = reader.moved.get(stored, stored)
            grouped.setdefault(pair, []).append(
                row if pair == (row.source, row.target) else _Renamed(row, pair)
            )
        return {
            f"{s}->{t}": merge_rows_by_bucket(grouped.get((s, t), [])).get((s, t), {})
            for s, t in pairs
        }, buckets

    def edge_series(
        self, window: Window, level: Level, edge_ids: set[str], metric: str
    ) -> dict[str, list[tuple[int, float | None]]]:
        """One point per bucket (epoch ms) per edge: rates per second, error ratio, latency.
        L4 bytes come from one reporter over the whole window, as on the graph. A bucket's rates
        divide by its observed part: the bucket in progress up to the window's end, the one the
        store's first data fell in from that data on."""
        if metric not in _SERIES_METRICS:
            raise ValueError(f"unknown series metric {metric!r}")
        series, buckets = self._bucketed(window, level, edge_ids)
        first_data = self.first_data.get()
        b = self.bucket_s
        seconds = {
            start: rate_seconds(max(start, first_data or start), min(start + b, window.end_s))
            for start in buckets
        }
        out: dict[str, list[tuple[int, float | None]]] = {}
        for edge_id, per_bucket in series.items():
            reporter = (
                Reporter.DESTINATION
                if any(not _l4(m, Reporter.DESTINATION).empty for m in per_bucket.values())
                else Reporter.SOURCE
            )
            out[edge_id] = [
                (start * 1000, _metric(metric, per_bucket.get(start), seconds[start], reporter))
                for start in buckets
            ]
        return out

    def edge_events(self, window: Window, level: Level, edge_ids: set[str]) -> list[dict[str, Any]]:
        """Annotations: edges new against the previous window, edges turning L4-only, error spikes."""
        series, buckets = self._bucketed(window, level, edge_ids)
        before, _ = self._bucketed(window.shifted_back(window.seconds), level, edge_ids)
        events: list[dict[str, Any]] = []
        b = self.bucket_s
        for edge_id, per_bucket in sorted(series.items()):
            source, _, target = edge_id.partition("->")
            active = [s for s in buckets if s in per_bucket]
            if active and not before.get(edge_id):
                events.append(
                    _event(
                        active[0], b, f"new edge {edge_id}", "first seen in this range", "new_edge"
                    )
                )
            previous: GraphEdge | None = None
            for start in active:
                edge = to_graph_edge(source, target, per_bucket[start])
                if (
                    previous is not None
                    and previous.coverage is not Coverage.L4_ONLY
                    and edge.coverage is Coverage.L4_ONLY
                ):
                    events.append(
                        _event(
                            start,
                            b,
                            f"{edge_id} turned L4-only",
                            "L7 requests stopped while L4 traffic continues",
                            Coverage.L4_ONLY.value,
                        )
                    )
                l7 = edge.l7
                if (
                    l7 is not None
                    and l7.requests >= _SPIKE_MIN_REQUESTS
                    and l7.error_rate >= _SPIKE_ERROR_RATE
                ):
                    events.append(
                        _event(
                            start,
                            b,
                            f"{edge_id} errors {100 * l7.error_rate:.1f}%",
                            f"{l7.errors} of {l7.requests} requests failed",
                            "error_spike",
                        )
                    )
                previous = edge
        return events


_SPIKE_MIN_REQUESTS, _SPIKE_ERROR_RATE = 20, 0.05
_QUANTILES = {"edge_latency_p50": 0.5, "edge_latency_p95": 0.95, "edge_latency_p99": 0.99}
_SERIES_METRICS = {"edge_request_rate", "edge_error_rate", "edge_tcp_bytes", *_QUANTILES}


class _Renamed:
    """A stored row read under the pair its requests were attributed to."""

    __slots__ = ("_mapping", "_row", "source", "target")

    def __init__(self, row: Any, pair: tuple[str, str]) -> None:
        self._row, self._mapping = row, row._mapping
        self.source, self.target = pair

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def _event(start_s: int, bucket_s: int, title: str, text: str, tag: str) -> dict[str, Any]:
    return {
        "time": start_s * 1000,
        "time_end": (start_s + bucket_s) * 1000,
        "title": title,
        "text": text,
        "tags": [tag],
    }


_NO_L4 = L4Stats()


def _l4(m: EdgeBucket, reporter: Reporter) -> L4Stats:
    return m.l4.get(reporter) or _NO_L4


def _l4_view(m: EdgeBucket, reporter: Reporter) -> L4Stats:
    """The reporter's counters plus the traffic only one ztunnel reports (app/edge/stats.py)."""
    sole = m.l4.get(SOLE)
    if sole is None:
        return _l4(m, reporter)
    out = L4Stats()
    out.merge(_l4(m, reporter))
    out.merge(sole)
    return out


def _metric(metric: str, m: EdgeBucket | None, seconds: float, reporter: Reporter) -> float | None:
    """One bucket's value, its rates over its observed `seconds`; L7 as the graph shows it
    (waypoint metrics when the bucket has them)."""
    if metric == "edge_tcp_bytes":
        counters = _l4_view(m, reporter) if m is not None else None
        return counters.bytes_total / seconds if counters else 0.0
    l7 = l7_stats(m) if m is not None else None
    if metric == "edge_request_rate":
        return l7.requests / seconds if l7 is not None else 0.0
    if l7 is None or not l7.requests:
        return None
    if metric == "edge_error_rate":
        return l7.errors / l7.requests
    return {"edge_latency_p50": l7.p50_ms, "edge_latency_p95": l7.p95_ms}.get(metric, l7.p99_ms)
