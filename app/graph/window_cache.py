"""Merged windows kept between requests: a window's stored rows merged per (source, target) once,
with an adjacency index, so a neighbourhood is dict look-ups instead of a query per hop.

Speed-only (STYLE.md): `EdgeReader` gives the same answer with or without it; tests compare both.

Keyed by level and the bucket range the window merges (`Window.bucket_range`, its end rounded up
to a bucket: windows reading the same buckets share an entry), so a window off the bucket grid is
exact: its straddling first bucket is not read, with or without the cache.

Validity: every write transaction logs the buckets it changed (app/store/changes.py). Each request
first reads the writers' counters (`check`, one small query; also catches other replicas' writes
on PostgreSQL); an entry whose bucket range a change touched is dropped, and node facts (kinds,
unknown callers) are read again after any change. A build started before a change it may have
missed is not kept.

Listings merge the whole window anyway, so they build an entry and wait for it; a neighbourhood
query that finds none answers from the store as before and has one built in the background, at
most every `REBUILD_FACTOR` times its last build's duration (builds must not crowd out ingest
while every flush touches the window), and not while the window is live: a window any writer
changed within `HOT_FACTOR` build durations (`HOT_MIN_S` at least; `store_changes.changed_s`, so
other replicas' flushes count, and so does what was written before this process first looked)
would most likely be changed again before a build finished (a dashboard's "last hour" under
ingest, touched by every flush), and a build that is thrown away still holds the GIL for its
whole duration, slowing every request meanwhile (bench/graph.py --live-flush-s 5: p99 660 ms
while one ran). Such a window is answered from the store.

Memory: an entry holds ~3 KiB per edge, and the cardinality caps allow 100k edges per window
(app/correlate/cardinality.py), so the entries are bounded in edges too (`max_edges`, setting
`graph_cache_max_edges`): the least recently used entries leave until the kept ones hold at most
`max_edges` edges together, and a window with more edges than that on its own is served from its
build and not kept (`stats.too_large`); no background build is started for it again until a
window of that key was seen small enough (its answers stay exact: they are merged per request).
What a build freed (rows read, partial merges) goes back to the system (`trim_heap`,
app/malloc_tuning.py): glibc would keep it for the process.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from app.edge.bucket import EdgeBucket
from app.edge.exemplars import Exemplar
from app.graph.model import GraphEdge, GraphNode
from app.malloc_tuning import trim_heap
from app.store.changes import Changed, StoreChangeRepository
from app.store.exemplars import ExemplarRepository

log = logging.getLogger(__name__)
Pair = tuple[str, str]
WindowKey = tuple[str, int, int]  # level, first bucket start, end (a bucket boundary)
REBUILD_FACTOR = 5.0
HOT_FACTOR = 2.0
HOT_MIN_S = 15.0  # three default flush intervals: before any build was timed
_CHANGES_KEPT = 256
_TOO_LARGE_KEPT = 64  # window keys remembered as too large to keep (bounded: keys slide with time)


class MergedWindow:
    """One window's stored pairs and their merged buckets. Never mutated after the build except
    by the lazily filled caches of derived values (graph edges, exemplars)."""

    def __init__(
        self,
        key: WindowKey,
        buckets: dict[Pair, EdgeBucket],
        edge_of: Callable[[str, str, EdgeBucket], GraphEdge],
        with_exemplars: set[Pair] | None = None,
    ) -> None:
        self.key, self.buckets = key, buckets
        # The pairs with any stored exemplar in the window (None: not known, ask the store).
        self.with_exemplars = with_exemplars
        self.out: dict[str, list[Pair]] = {}
        self.into: dict[str, list[Pair]] = {}
        for pair in buckets:
            self.out.setdefault(pair[0], []).append(pair)
            self.into.setdefault(pair[1], []).append(pair)
        # Built with the entry: a neighbourhood then only looks its edges up.
        self.edges: dict[Pair, GraphEdge] = {p: edge_of(*p, b) for p, b in buckets.items()}
        self._exemplars: dict[Pair, list[Exemplar]] = {}
        self._all_exemplars = False
        self.whole: WholeWindow | None = None

    def keep_whole(self, whole: WholeWindow) -> WholeWindow:
        """Keep the attributed whole window, out of the collector's view as the entry is."""
        self.whole = whole
        _out_of_collector_view()
        trim_heap()
        return whole

    def leaving(self, ids: Iterable[str]) -> dict[Pair, EdgeBucket]:
        b = self.buckets
        return {p: b[p] for i in ids for p in self.out.get(i, ())}

    def entering(self, ids: Iterable[str]) -> dict[Pair, EdgeBucket]:
        b = self.buckets
        return {p: b[p] for i in ids for p in self.into.get(i, ())}

    def targets_entered_from(self, targets: Iterable[str], sources: set[str]) -> set[str]:
        """Which of `targets` have an edge from one of `sources` in the window."""
        return {t for t in targets if any(s in sources for s, _ in self.into.get(t, ()))}

    def exemplars(
        self, conn: Connection, pairs: Iterable[Pair] | None
    ) -> dict[Pair, list[Exemplar]]:
        """The window's exemplars of `pairs` (all when None), read once per pair."""
        level, first, end = self.key
        repo = ExemplarRepository()
        if pairs is None:
            if not self._all_exemplars:
                found = repo.for_edges(conn, level, first, end, top=True)
                self._exemplars = {p: found.get(p, []) for p in self.buckets} | found
                self._all_exemplars = True
            return {p: e for p, e in self._exemplars.items() if e}
        # Exemplars are kept from spans only: an edge without span requests has none.
        wanted = {p for p in pairs if p not in self.buckets or self.buckets[p].l7_requests}
        if self.with_exemplars is not None:
            wanted &= self.with_exemplars
        missing = [p for p in wanted if p not in self._exemplars]
        if missing and not self._all_exemplars:
            found = repo.for_edges(conn, level, first, end, missing, top=True)
            for p in missing:
                self._exemplars[p] = found.get(p, [])
        return {p: e for p in wanted if (e := self._exemplars.get(p))}


@dataclass(frozen=True)
class WholeWindow:
    """The whole window's edges attributed under `aliases` and `unknown`, and what the reader
    learned making them (app/graph/edge_reader.py `all_edges`)."""

    aliases: object
    unknown: frozenset[str]
    edges: tuple[GraphEdge, ...]
    moved: dict[Pair, Pair]
    rejoined: dict[Pair, list[Pair]]
    merged: dict[Pair, EdgeBucket]
    observed_spans: int
    observed_requests: int


@dataclass
class NodeFacts:
    """Every node's kind per level, read once until the store changes (a request would
    otherwise read the kinds of the nodes it shows: ~2 ms of a neighbourhood), and when each was
    seen (a service named without its namespace was a scan of the level's ids: ~3 ms)."""

    kinds: dict[str, dict[str, str]] = field(default_factory=dict)
    unknown: dict[str, set[str]] = field(default_factory=dict)
    # per level: every node's (first, last seen) and the ids by name, for name look-ups
    seen: dict[str, tuple[dict[str, tuple[int, int]], dict[str, list[str]]]] = field(
        default_factory=dict
    )
    # graph nodes per (level, alias map): their kinds and aliases as the reader made them
    nodes: dict[tuple[str, int], dict[str, GraphNode]] = field(default_factory=dict)
    _alias_maps: dict[tuple[str, int], object] = field(default_factory=dict)

    def nodes_of(self, level: str, aliases: object) -> dict[str, GraphNode]:
        """Graph nodes made under `aliases` (a new alias map starts afresh)."""
        key = (level, id(aliases))
        if self._alias_maps.get(key) is not aliases:
            self._alias_maps = {key: aliases}
            self.nodes = {key: {}}
        return self.nodes[key]

    def seen_ids(
        self,
        level: str,
        read: Callable[[], dict[str, tuple[int, int]]],
        start_s: float,
        end_s: float,
        *,
        node_id: str | None = None,
        name: str | None = None,
    ) -> list[str]:
        """`NodeRepository.seen_ids` from the level's nodes read once: `node_id`, or the ids
        whose name (after the namespace) is `name`, seen in [start, end], in id order."""
        index = self.seen.get(level)
        if index is None:
            spans = read()
            by_name: dict[str, list[str]] = {}
            for i in sorted(spans):
                by_name.setdefault(i.partition("/")[2], []).append(i)
            index = self.seen[level] = (spans, by_name)
        spans, by_name = index
        ids = (
            ([node_id] if node_id in spans else [])
            if node_id is not None
            else by_name.get(name or "", [])
        )
        start = int(start_s)
        return [i for i in ids if spans[i][1] >= start and spans[i][0] <= end_s]

    def kinds_of(self, level: str, read: Callable[[], dict[str, str]]) -> dict[str, str]:
        found = self.kinds.get(level)
        if found is None:
            found = self.kinds[level] = read()
            self.unknown[level] = {i for i, kind in found.items() if kind == "unknown"}
        return found


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    builds: int = 0
    discarded: int = 0  # builds a change overtook
    live_skips: int = 0  # background builds not started: the window is live (`build_soon`)
    too_large: int = 0  # builds served but not kept: more edges than `max_edges`
    last_build_s: float = 0.0


def _out_of_collector_view() -> None:
    """An entry is ~15 objects per edge: every full collection of the cyclic garbage collector
    walked them all (a 400 ms pause every ~100 requests on bench/graph.py's store). Collect once,
    so no cyclic garbage is kept, then freeze what lives (the new entry among it) out of the
    collector's view. The entry holds no reference cycles: dropped, it is freed by reference
    counting as before. What an earlier freeze (this or `tune_gc`'s) held is unfrozen first, so
    a frozen object that has since died in a reference cycle is collected here rather than kept
    for the life of the process."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class WindowCache:
    def __init__(
        self,
        read_window: Callable[[Connection, WindowKey], dict[Pair, EdgeBucket]],
        read_exemplar_pairs: Callable[[Connection, WindowKey], set[Pair]],
        connect: Callable[[], Connection],
        edge_of: Callable[[str, str, EdgeBucket], GraphEdge],
        max_windows: int = 4,
        background: bool = True,
        max_edges: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._read_window, self._connect, self._edge_of = read_window, connect, edge_of
        self._read_exemplar_pairs = read_exemplar_pairs
        self.max_windows, self.background = max_windows, background
        self.max_edges = max_edges  # None: bounded in windows only
        self._too_large: OrderedDict[WindowKey, int] = OrderedDict()  # key -> edges at its build
        self._monotonic, self._wall = monotonic, wall
        self._lock = threading.Lock()
        self._entries: OrderedDict[WindowKey, MergedWindow] = OrderedDict()
        self._seen: dict[tuple[str, int], int] = {}
        self._changes: deque[tuple[int, Changed]] = deque(maxlen=_CHANGES_KEPT)
        self._change_count = 0
        self._building: dict[WindowKey, threading.Event] = {}
        self._next_build: dict[WindowKey, float] = {}
        self._threads: set[threading.Thread] = set()
        self._closed = False
        self.facts = NodeFacts()
        self.stats = CacheStats()
        self._changes_repo = StoreChangeRepository()

    @property
    def enabled(self) -> bool:
        return self.max_windows > 0

    # ---- validity -------------------------------------------------------------------------
    def check(self, conn: Connection) -> None:
        """Read the writers' counters; forget what their changes since the last check touched."""
        writers = self._changes_repo.writers(conn)
        if writers == self._seen:
            return
        changed: list[Changed] = []
        for writer, seq in writers.items():
            seen = self._seen.get(writer)
            if seen == seq:
                continue
            if seen is None or seq < seen:
                # A writer new to this process: what it wrote before we first looked is in every
                # entry built since, but not knowing when we looked, drop what its log reaches.
                seen = 0
            changed.append(self._changes_repo.changed_since(conn, writer[0], seen))
        with self._lock:
            self._seen = writers
            self.facts = NodeFacts()
            for change in changed:
                self._change_count += 1
                self._changes.append((self._change_count, change))
                for key in [k for k in self._entries if change.overlaps(k[1], k[2])]:
                    del self._entries[key]

    def _overtaken(self, key: WindowKey, since: int) -> bool:
        """Whether a change observed after `since` touched `key` (or is no longer known)."""
        if self._change_count == since:
            return False
        if not self._changes or self._changes[0][0] > since + 1:
            return True
        return any(n > since and c.overlaps(key[1], key[2]) for n, c in self._changes)

    # ---- entries --------------------------------------------------------------------------
    def get(self, key: WindowKey) -> MergedWindow | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.stats.hits += 1
            else:
                self.stats.misses += 1
            return entry

    def build(self, key: WindowKey, conn: Connection | None = None) -> MergedWindow:
        """The entry for `key`, built now on `conn` (or a new connection) unless another thread
        is building it: then that build's result."""
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    return entry
                running = self._building.get(key)
                if running is None:
                    done = self._building[key] = threading.Event()
                    since = self._change_count
                    self._make_room(key)
                    break
            running.wait()
            with self._lock:
                entry = self._entries.get(key)
            if entry is not None:
                return entry
            # that build was overtaken by a change: build again
        try:
            began = self._monotonic()
            if conn is None:
                with self._connect() as own:
                    self.check(own)
                    with self._lock:
                        since = self._change_count
                    entry = self._make(own, key)
            else:
                entry = self._make(conn, key)
            _out_of_collector_view()
            took = self._monotonic() - began
            with self._lock:
                self.stats.builds += 1
                self.stats.last_build_s = took
                self._next_build[key] = self._monotonic() + REBUILD_FACTOR * took
                if self._overtaken(key, since):
                    self.stats.discarded += 1
                elif self.max_edges is not None and len(entry.buckets) > self.max_edges:
                    self.stats.too_large += 1
                    self._too_large[key] = len(entry.buckets)
                    self._too_large.move_to_end(key)
                    while len(self._too_large) > _TOO_LARGE_KEPT:
                        self._too_large.popitem(last=False)
                else:
                    self._too_large.pop(key, None)
                    self._entries[key] = entry
                    self._evict()
            # The build's garbage (rows read, partial merges) and what it evicted, back to the
            # system (glibc would keep it).
            trim_heap()
            return entry
        finally:
            with self._lock:
                del self._building[key]
            done.set()

    def _make_room(self, key: WindowKey) -> None:
        """Before `key` is built, drop the entries of its level that overlap it when one of their
        size would not fit beside them (under `_lock`): a "last hour" asked a minute later is a
        new key over nearly the same edges, and kept until its successor was built, the two
        were held at once (bench/cardinality.py: 2 x 40,830 edges at the peak)."""
        if self.max_edges is None:
            return
        level, first, end = key
        entries = self._entries
        for other in [k for k in entries if k[0] == level and k[1] < end and first < k[2]]:
            if self._held_edges() + len(entries[other].buckets) > self.max_edges:
                del entries[other]

    def _evict(self) -> None:
        """Least recently used entries out until both bounds hold (under `_lock`)."""
        entries = self._entries
        while len(entries) > self.max_windows:
            entries.popitem(last=False)
        if self.max_edges is not None:
            while len(entries) > 1 and self._held_edges() > self.max_edges:
                entries.popitem(last=False)

    def _held_edges(self) -> int:
        return sum(len(entry.buckets) for entry in self._entries.values())

    def held_edges(self) -> int:
        """Edges held by the kept entries (bounded by `max_edges`)."""
        with self._lock:
            return self._held_edges()

    def _make(self, conn: Connection, key: WindowKey) -> MergedWindow:
        buckets = self._read_window(conn, key)
        return MergedWindow(key, buckets, self._edge_of, self._read_exemplar_pairs(conn, key))

    def build_soon(self, key: WindowKey, conn: Connection) -> threading.Thread | None:
        """Start a build of `key` in the background unless one runs, one ran too recently, or
        the window is live (`_live`, asked on `conn`)."""
        with self._lock:
            if self._closed or key in self._building or key in self._entries:
                return None
            if key in self._too_large:  # it would not be kept: requests merge it themselves
                return None
            if self._monotonic() < self._next_build.get(key, -float("inf")):
                return None
            hot_s = max(HOT_FACTOR * self.stats.last_build_s, HOT_MIN_S)
        if self._changes_repo.touched_since(conn, self._wall() - hot_s, key[1], key[2]):
            self.stats.live_skips += 1
            return None
        with self._lock:
            if self._closed or key in self._building:
                return None
            thread = threading.Thread(
                target=self._build_quietly, args=(key,), name="window-cache", daemon=True
            )
            self._threads.add(thread)
        thread.start()
        return thread

    def _build_quietly(self, key: WindowKey) -> None:
        try:
            self.build(key)
        except Exception as exc:  # the database away: requests keep answering from the store
            log.warning("window cache build failed: %s: %s", type(exc).__name__, exc)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def close(self) -> None:
        """No more background builds; wait for those running (before the engine is disposed)."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for thread in threads:
            thread.join()
