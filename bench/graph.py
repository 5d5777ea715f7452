"""Benchmark: GET /graph?service=x&depth=2&window=1h on a store of 5,000 services / 50,000 edges.

Builds the store through the repositories (SQLite file in a temp dir, or --database-url), serves
the graph router from a server process of its own (uvicorn configured as `meshstitch serve`:
uvloop, httptools) on 127.0.0.1, and times requests for random services from this process.
`--same-process` serves from a thread of the bench process instead, as the bench did before: its
client then competes with the server for one GIL, which no deployment does.

Activity pattern: every edge is active in --active-buckets of the hour's 60 one-minute buckets
(spread evenly, phase-shifted per edge), so the default 12 means 600k bucket rows; pass
--active-buckets 60 for every edge in every minute (3M rows; slow to build).

The store keeps roll-ups (10 min and 1 h, store/edges.py) beside the one-minute buckets; a window
read takes whole coarse buckets from them. `--offset-s` shifts the data hour and the clock off the
hour (e.g. 1500: five fine minutes, five 10-minute roll-ups, five fine minutes); `--fine-only`
reads fine rows only (as before roll-ups existed), for comparison on the same store.
`--db-dir` keeps the built SQLite file there and reuses it on the next run with the same shape.
The read side's window cache (app/graph/window_cache.py) is on, as in `meshstitch serve`: the
first request builds the window's merge (its time is printed as "first ms"), later ones look it
up; `--no-cache` reads every request from the store, as before the cache.

    .venv/bin/python bench/graph.py [--database-url postgresql+psycopg://…] [--requests 300]
        [--offset-s 1500] [--fine-only] [--no-cache] [--no-listings] [--live-flush-s 5]
        [--db-dir /tmp/meshstitch-bench] [--same-process]
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import app.store.edges as edges_module
from app.api.graph import build_graph_router
from app.api.problems import install_problem_handlers
from app.cli import uvicorn_config
from app.domain import Level, NodeKind
from app.edge.batch import AggregateBatch, NodeSeen
from app.edge.bucket import EdgeBucket, EdgeKey
from app.edge.sketch import LatencySketch
from app.edge.stats import L4Stats
from app.graph.queries import GraphQueries
from app.graph.window import Window
from app.settings import Settings
from app.store.edges import EdgeRepository, window_parts
from app.store.engine import create_store_engine
from app.store.nodes import NodeRepository
from app.store.schema import head_revision, upgrade
from app.store.writer import write_batch

BUCKET_S = 60
HOUR_END = 1_800_000_000 // 3600 * 3600


def _templates(rng: random.Random) -> tuple[list[EdgeBucket], list[EdgeBucket]]:
    full, l4_only = [], []
    for _ in range(8):
        sketch = LatencySketch()
        sketch.add_all(rng.lognormvariate(2.5, 0.8) for _ in range(200))
        bucket = EdgeBucket(
            protocol="http",
            l7_requests=200,
            l7_errors=rng.choice([0, 0, 1, 4]),
            l7_status_codes={"200": 196, "503": 4},
            l7_latency_sum_ms=2400.0,
            l7_latency=sketch,
            l7_provenance={"paired_spans": 200},
            l4={"destination": L4Stats(10, 10, 20_000, 80_000, 10)},
            l4_principals={"spiffe://cluster.local/ns/default/sa/x"},
        )
        full.append(bucket)
        l4_only.append(EdgeBucket(protocol="tcp", l4={"source": L4Stats(5, 5, 9_000, 30_000, 5)}))
    return full, l4_only


class LiveWriter:
    """With `--live-flush-s`: a thread writing, every N seconds, what a flush of live traffic
    writes: 500 of the store's edges again in the window's last bucket (and the roll-ups),
    through `write_batch` as the pipeline does, so each one changes the cached window."""

    def __init__(self, engine: Any, ids: list[str], bucket: int, args: argparse.Namespace) -> None:
        self.engine, self.ids, self.bucket, self.every_s = engine, ids, bucket, args.live_flush_s
        self.rng = random.Random(args.seed + 2)
        self.full, _ = _templates(random.Random(args.seed))
        self.flushes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-writer", daemon=True)

    def start(self) -> None:
        if self.every_s:
            self._flush()
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._flush()

    def _flush(self) -> None:
        edges = {
            EdgeKey(self.bucket, Level.SERVICE, *self.rng.sample(self.ids, 2)): self.full[0]
            for _ in range(500)
        }
        write_batch(self.engine, AggregateBatch(edges=edges, batch_id=uuid.uuid4().hex))
        self.flushes += 1


def build_store(
    url: str, services: int, edges: int, active: int, seed: int, offset_s: int, reuse: bool
) -> list[str]:
    rng = random.Random(seed)
    ids = [f"ns{i % 50}/svc{i}" for i in range(services)]
    if reuse:
        print("reusing the store built before", flush=True)
        return ids
    engine = create_store_engine(url)
    upgrade(engine)
    pairs: set[tuple[str, str]] = set()
    while len(pairs) < edges:
        a, b = rng.sample(ids, 2)
        pairs.add((a, b))
    full, l4_only = _templates(rng)
    start = HOUR_END - 3600 + offset_s
    nodes = [
        NodeSeen(
            i,
            Level.SERVICE,
            i.split("/")[0],
            i.split("/")[1],
            NodeKind.SERVICE,
            "",
            "",
            start,
            start + 3600,
        )
        for i in ids
    ]
    with engine.begin() as conn:
        NodeRepository().upsert(conn, nodes)
    repo = EdgeRepository(chunk_size=2000)
    step = 60 // active
    batch: dict[EdgeKey, EdgeBucket] = {}
    built = time.perf_counter()
    for n, (a, b) in enumerate(sorted(pairs)):
        template = (full if n % 10 < 7 else l4_only)[n % 8]
        for k in range(active):
            bucket_start = start + ((n + k * step) % 60) * BUCKET_S
            batch[EdgeKey(bucket_start, Level.SERVICE, a, b)] = template
        if len(batch) >= 50_000:
            with engine.begin() as conn:
                repo.add(conn, batch)
            batch = {}
    if batch:
        with engine.begin() as conn:
            repo.add(conn, batch)
    print(
        f"built {edges * active:,} bucket rows in {time.perf_counter() - built:.1f} s", flush=True
    )
    engine.dispose()
    return ids


def graph_app(url: str, now: float, cache_windows: int, background: bool) -> tuple[Any, Any]:
    """The graph router over `url` with the clock at `now`, and its queries; plus
    `/bench/cache-stats` so a client in another process can read the window cache's counts."""
    engine = create_store_engine(url)
    app = FastAPI()
    install_problem_handlers(app)
    queries = GraphQueries(
        engine, BUCKET_S, cache_windows=cache_windows, cache_in_background=background
    )
    app.include_router(build_graph_router(queries, clock=lambda: now))

    @app.get("/bench/cache-stats")
    def cache_stats() -> dict[str, int]:
        stats = queries.cache.stats
        return {
            "hits": stats.hits,
            "misses": stats.misses,
            "builds": stats.builds,
            "live_skips": stats.live_skips,
        }

    return app, queries


def read_only_fine() -> None:
    """`--fine-only`: the read path before roll-ups (fine rows only), on the same store."""
    edges_module.window_parts = lambda first, end, bucket_s: (  # type: ignore[assignment]
        [(None, first, end)] if end > first else []
    )


def serve_graph(argv: list[str]) -> None:
    """`--serve-graph URL NOW CACHE_WINDOWS BACKGROUND FINE_ONLY PORT`: the server process,
    configured as `meshstitch serve` runs uvicorn (uvloop, httptools, no access log)."""
    url, now, cache_windows, background, fine_only, port = argv
    if fine_only == "1":
        read_only_fine()
    app, _ = graph_app(url, float(now), int(cache_windows), background == "1")
    settings = Settings(host="127.0.0.1", http_port=int(port), log_level="warning")
    uvicorn.Server(uvicorn_config(app, settings)).run()


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    """Until the server process answers on `port` (bounded; fails if it exits)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise SystemExit(f"graph server exited with {process.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/bench/cache-stats", timeout=5).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise SystemExit("graph server did not answer within 120 s") from None
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    if sys.argv[1:2] == ["--serve-graph"]:
        serve_graph(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--edges", type=int, default=50_000)
    parser.add_argument(
        "--active-buckets", type=int, default=12, choices=[1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60]
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--offset-s", type=int, default=0, help="multiple of 60")
    parser.add_argument("--fine-only", action="store_true", help="read no roll-ups")
    parser.add_argument("--db-dir", default=None, help="keep and reuse the SQLite store here")
    parser.add_argument("--no-cache", action="store_true", help="no window cache")
    parser.add_argument(
        "--no-listings", action="store_true", help="time /graph?service=x only (no listings)"
    )
    parser.add_argument(
        "--live-flush-s",
        type=float,
        default=0.0,
        help="write a flush into the window's last bucket every N s while timing, with the "
        "cache built in the background as `meshstitch serve` does (a live dashboard)",
    )
    parser.add_argument(
        "--same-process",
        action="store_true",
        help="serve from a thread of the bench process (its client then shares the server's "
        "GIL, as before); default: a server process of its own",
    )
    args = parser.parse_args()
    if args.offset_s % BUCKET_S:
        parser.error("--offset-s must be a multiple of 60")
    tmp = tempfile.TemporaryDirectory()
    db = Path(tmp.name) / "bench.db"
    if args.db_dir:
        shape = (args.services, args.edges, args.active_buckets, args.offset_s, args.seed)
        db = Path(args.db_dir) / f"graph-{'-'.join(map(str, shape))}-{head_revision()}.db"
    reuse = args.database_url is None and args.db_dir is not None and db.exists()
    url = args.database_url or f"sqlite:///{db}"
    ids = build_store(
        url,
        args.services,
        args.edges,
        args.active_buckets,
        args.seed,
        args.offset_s,
        reuse,
    )
    if args.fine_only:  # the read path before roll-ups, on the same store
        read_only_fine()
    now = float(HOUR_END + args.offset_s)
    first, end = Window(now - 3600, now).bucket_range(BUCKET_S)
    parts = window_parts(first, end, BUCKET_S)
    rollups = (
        "no"
        if args.fine_only
        else "+".join(
            f"{span // 60}mx{(hi - lo) // span}" if span else f"1mx{(hi - lo) // BUCKET_S}"
            for span, lo, hi in parts
        )
    )

    if args.live_flush_s and not args.database_url:  # live writes must not change the kept store
        shutil.copy(db, Path(tmp.name) / "live.db")
        url = f"sqlite:///{Path(tmp.name) / 'live.db'}"
    engine = create_store_engine(url)  # the live writer's, and the dialect's name
    live = LiveWriter(engine, ids, int(now) // BUCKET_S * BUCKET_S - BUCKET_S, args)
    port = free_port()
    cache_windows = 0 if args.no_cache else 2
    if args.same_process:  # as before: the client's Python shares the server's GIL
        app, queries = graph_app(url, now, cache_windows, bool(args.live_flush_s))
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
    else:  # a server process of its own, as a dashboard's requests meet meshstitch
        flags = [str(int(bool(args.live_flush_s))), str(int(args.fine_only)), str(port)]
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve-graph", url, str(now), str(cache_windows), *flags]
        )
        wait_listening(port, process)

    rng = random.Random(args.seed + 1)
    timings, edge_counts = [], []
    first_ms = 0.0
    hits_before = misses_before = 0
    live.start()  # a live store has been flushing all along: the first flush precedes requests
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        for i in range(args.requests + 20):
            service = rng.choice(ids)
            began = time.perf_counter()
            response = client.get(
                "/graph", params={"service": service, "depth": args.depth, "window": "1h"}
            )
            elapsed = (time.perf_counter() - began) * 1000
            response.raise_for_status()
            if i == 0:
                first_ms = elapsed
            if i == 19:
                before = client.get("/bench/cache-stats").json()
                hits_before, misses_before = before["hits"], before["misses"]
            if i >= 20:  # warm-up excluded
                timings.append(elapsed)
                edge_counts.append(len(response.json()["edges"]))
        live.stop()
        stats = client.get("/bench/cache-stats").json()
        hits, misses = stats["hits"] - hits_before, stats["misses"] - misses_before
        listings = {}  # the whole window's merge behind them is the cached one
        for path in () if args.no_listings else ("/services", "/edges", "/coverage", "/graph"):
            took = []
            for _ in range(5):
                began = time.perf_counter()
                client.get(path, params={"window": "1h"}).raise_for_status()
                took.append((time.perf_counter() - began) * 1000)
            listings[path] = statistics.median(took)
    if args.same_process:
        server.should_exit = True
        thread.join()
        queries.cache.close()  # its background builds read on the engine
    else:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    engine.dispose()
    timings.sort()
    p = lambda q: timings[min(len(timings) - 1, int(q * len(timings)))]  # noqa: E731
    print(
        f"{'database':<12}{'services':>9}{'edges':>8}{'rows':>10}{'requests':>9}{'edges/resp':>11}"
        f"{'first ms':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'cache':>7}"
        "  roll-ups used (window read as)"
    )
    print(
        f"{engine.dialect.name:<12}{args.services:>9}{args.edges:>8}{args.edges * args.active_buckets:>10}"
        f"{len(timings):>9}{statistics.mean(edge_counts):>11.0f}{first_ms:>9.0f}{p(0.5):>9.1f}"
        f"{p(0.95):>9.1f}{p(0.99):>9.1f}{'off' if args.no_cache else 'on':>7}  {rollups}"
    )
    if args.live_flush_s:
        print(
            f"live: a flush every {args.live_flush_s:g} s ({live.flushes} written); "
            f"requests answered from the cached window: {hits} of {hits + misses}, the rest "
            f"from the store (background builds {stats['builds']}, not started on "
            f"a live window {stats['live_skips']})"
        )
    if listings:
        print(
            "listings, window=1h, default page, median of 5 ms: "
            + ", ".join(f"{path} {ms:.0f}" for path, ms in listings.items())
        )
    print("rerun: .venv/bin/python bench/graph.py " + " ".join(sys.argv[1:]))
    tmp.cleanup()


if __name__ == "__main__":
    main()
