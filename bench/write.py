"""Store write cost: `write_batch` of aggregate batches, per part, in µs per observation.

Two shapes, each written onto a fresh database and then again onto the rows it left (the update
path), on SQLite (a file in a temp dir) and optionally PostgreSQL:

- key-heavy: --keyheavy-obs (20,000) L7 observations between random pairs of 200 services over
  50 s (~31k edge keys at both levels, 400 nodes, one trace hop per observation); the second
  batch has the same keys (same pairs and end times, new trace ids).
- realistic: 50 services / 150 edges, --flushes flushes of 5 s of traffic at 10k spans/s
  (50,000 observations, ~600 keys, 50,000 hops each) onto the same rows; the first flush
  inserts, the median of the later ones is the steady state.

Each part (fine edge buckets, roll-ups, exemplars, nodes, trace hops, commit) is timed in one
transaction, in the order `write_batch` runs them; "total" is their sum. Wall time, medians over
--repeat rounds (each on a fresh database).

    .venv/bin/python bench/write.py [--repeat 3] [--database-url postgresql+psycopg://…]
        [--postgres]   # a throwaway PostgreSQL from tests/postgres_cluster.py
        [--profile keyheavy|realistic]   # cProfile of one write_batch, top functions
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import random
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/write.py` from the repository root

from sqlalchemy import Engine, text  # noqa: E402

from app.correlate.aggregate import EdgeAggregator  # noqa: E402
from app.domain import Endpoint, L7Observation, Provenance  # noqa: E402
from app.edge.batch import AggregateBatch  # noqa: E402
from app.store.edges import EdgeRepository, RowValues, bound_key  # noqa: E402
from app.store.engine import create_store_engine  # noqa: E402
from app.store.exemplars import ExemplarRepository  # noqa: E402
from app.store.nodes import NodeRepository  # noqa: E402
from app.store.schema import upgrade  # noqa: E402
from app.store.traces import TraceHopRepository  # noqa: E402
from app.store.writer import write_batch  # noqa: E402

NOW_S = 1_800_000_030.0
PARTS = ("edges", "rollups", "exemplars", "nodes", "hops", "commit")
HOPS_PER_TRACE = 1  # --hops-per-trace: consecutive observations sharing a trace id


def _observations(
    n: int,
    pairs: list[tuple[Endpoint, Endpoint]] | None,
    services: list[Endpoint],
    start_s: float,
    span_s: float,
    structure: random.Random,
    ids: random.Random,
) -> Iterator[L7Observation]:
    trace_id = b""
    for i in range(n):
        a, b = structure.choice(pairs) if pairs else structure.sample(services, 2)
        if i % HOPS_PER_TRACE == 0:
            trace_id = ids.randbytes(16)
        yield L7Observation(
            source=a,
            target=b,
            end_ns=int((start_s + structure.random() * span_s) * 1e9),
            duration_ms=structure.random() * 50,
            trace_id=trace_id,
            span_id=ids.randbytes(8),
            via="ns/waypoint",
            provenance=Provenance.PARENT_SPAN,
            status_code="200" if structure.random() > 0.01 else "503",
        )


def _batch(observations: Iterator[L7Observation]) -> AggregateBatch:
    agg = EdgeAggregator(60, clock_s=lambda: NOW_S)
    for obs in observations:
        agg.add_l7(obs)
    return agg.drain()


def keyheavy_batches(n_obs: int, seed: int) -> list[AggregateBatch]:
    """Two batches with the same keys (same pairs and end times), distinct trace ids."""
    svcs = [Endpoint("ns", f"s{i}", workload=f"s{i}-v1") for i in range(200)]
    return [
        _batch(
            _observations(
                n_obs,
                None,
                svcs,
                NOW_S - 50,
                50,
                random.Random(seed),
                random.Random(seed * 1000 + round_),
            )
        )
        for round_ in range(2)
    ]


def realistic_batches(flushes: int, seed: int) -> list[AggregateBatch]:
    """`flushes` consecutive 5 s flushes of 10k spans/s over 150 edges among 50 services."""
    structure = random.Random(seed)
    svcs = [Endpoint("ns", f"svc{i}", workload=f"svc{i}-v1") for i in range(50)]
    all_pairs = [(a, b) for a in svcs for b in svcs if a is not b]
    pairs = structure.sample(all_pairs, 150)
    ids = random.Random(seed + 1)
    return [
        _batch(_observations(50_000, pairs, svcs, NOW_S - 40 + 5 * f, 5, structure, ids))
        for f in range(flushes)
    ]


def timed_write(engine: Engine, batch: AggregateBatch) -> dict[str, float]:
    """`write_batch`'s steps in its order and one transaction, each timed (seconds)."""
    edges, exemplars = EdgeRepository(), ExemplarRepository()
    nodes, hops = NodeRepository(), TraceHopRepository()
    out: dict[str, float] = {}
    conn_cm = engine.begin()
    conn = conn_cm.__enter__()
    try:
        t0 = time.perf_counter()
        by_key = {bound_key(k): b for k, b in batch.edges.items()}
        values = RowValues()
        edges.add_fine(conn, by_key, values)
        t1 = time.perf_counter()
        edges.add_rollups(conn, by_key, values)
        t2 = time.perf_counter()
        exemplars.add(conn, {k: b.exemplars for k, b in batch.edges.items()})
        t3 = time.perf_counter()
        nodes.upsert(conn, batch.nodes.values())
        t4 = time.perf_counter()
        hops.add(conn, batch.hops)
        t5 = time.perf_counter()
    except BaseException:
        conn_cm.__exit__(*sys.exc_info())
        raise
    conn_cm.__exit__(None, None, None)
    t6 = time.perf_counter()
    for name, a, b in zip(PARTS, (t0, t1, t2, t3, t4, t5), (t1, t2, t3, t4, t5, t6), strict=True):
        out[name] = b - a
    return out


class Databases:
    """Fresh migrated databases: SQLite files in a temp dir, or new PostgreSQL databases."""

    def __init__(self, tmp: Path, pg_url: str | None) -> None:
        self.tmp, self.pg_url, self.counter = tmp, pg_url, itertools.count()

    @contextmanager
    def fresh(self, kind: str) -> Iterator[Engine]:
        n = next(self.counter)
        if kind == "sqlite":
            engine = create_store_engine(f"sqlite:///{self.tmp / f'w{n}.db'}")
            upgrade(engine)
            try:
                yield engine
            finally:
                engine.dispose()
            return
        assert self.pg_url is not None
        admin = create_store_engine(self.pg_url)
        name = f"meshstitch_bench_write_{n}"
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name)
        engine = create_store_engine(url.render_as_string(hide_password=False))
        upgrade(engine)
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def _per_obs(times: dict[str, float], n_obs: int) -> dict[str, float]:
    per = {k: v / n_obs * 1e6 for k, v in times.items()}
    per["total"] = sum(per.values())
    return per


def _median(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def run_keyheavy(dbs: Databases, kind: str, n_obs: int, repeat: int) -> list[tuple[str, Any]]:
    batches = keyheavy_batches(n_obs, 7)
    first, second = [], []
    for _ in range(repeat):
        with dbs.fresh(kind) as engine:
            first.append(_per_obs(timed_write(engine, batches[0]), n_obs))
            second.append(_per_obs(timed_write(engine, batches[1]), n_obs))
    shape = batches[0]
    desc = f"{n_obs} obs, {len(shape.edges)} keys, {len(shape.nodes)} nodes, {len(shape.hops)} hops"
    return [
        (f"key-heavy insert ({desc})", _median(first)),
        ("key-heavy update (same keys)", _median(second)),
    ]


def run_realistic(dbs: Databases, kind: str, flushes: int, repeat: int) -> list[tuple[str, Any]]:
    batches = realistic_batches(flushes, 11)
    first, later = [], []
    for _ in range(repeat):
        with dbs.fresh(kind) as engine:
            per = [_per_obs(timed_write(engine, b), len(b.hops)) for b in batches]
            first.append(per[0])
            later.extend(per[1:])
    shape = batches[0]
    desc = f"50k obs, {len(shape.edges)} keys, {len(shape.hops)} hops"
    return [
        (f"realistic first flush ({desc})", _median(first)),
        (f"realistic later flushes (median of {len(later)})", _median(later)),
    ]


def profile(dbs: Databases, kind: str, which: str, n_obs: int) -> None:
    batches = keyheavy_batches(n_obs, 7) if which == "keyheavy" else realistic_batches(3, 11)
    with dbs.fresh(kind) as engine:
        write_batch(engine, batches[0])
        prof = cProfile.Profile()
        prof.enable()
        write_batch(engine, batches[1])
        prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(35)


def _table(rows: list[tuple[str, str, dict[str, float]]]) -> None:
    cols = (*PARTS, "total")
    name_w = max(len(r[0]) + len(r[1]) + 3 for r in rows)
    print(f"{'µs per observation':<{name_w}} " + " ".join(f"{c:>9}" for c in cols))
    for db, name, per in rows:
        label = f"[{db}] {name}"
        print(f"{label:<{name_w}} " + " ".join(f"{per[c]:>9.2f}" for c in cols))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--hops-per-trace",
        type=int,
        default=1,
        help="observations per trace id (waypoint traces have one hop per waypoint crossed; "
        "trace hops are stored one row per trace per flush)",
    )
    parser.add_argument("--keyheavy-obs", type=int, default=20_000)
    parser.add_argument("--flushes", type=int, default=4)
    parser.add_argument("--database-url", help="a PostgreSQL server URL (databases are created)")
    parser.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--only", choices=("keyheavy", "realistic"))
    parser.add_argument("--profile", choices=("keyheavy", "realistic"))
    args = parser.parse_args()
    global HOPS_PER_TRACE
    HOPS_PER_TRACE = max(1, args.hops_per_trace)

    cluster_cm: Any = nullcontext(None)
    if args.postgres:
        from tests.postgres_cluster import postgres_cluster

        cluster_cm = postgres_cluster()
    with tempfile.TemporaryDirectory() as tmp, cluster_cm as cluster:
        pg_url = args.database_url or (cluster.url() if cluster is not None else None)
        dbs = Databases(Path(tmp), pg_url)
        kinds = ([] if args.no_sqlite else ["sqlite"]) + (["postgresql"] if pg_url else [])
        if args.profile:
            profile(dbs, kinds[0], args.profile, args.keyheavy_obs)
            return
        rows: list[tuple[str, str, dict[str, float]]] = []
        runs: list[Callable[[str], list[tuple[str, Any]]]] = []
        if args.only != "realistic":
            runs.append(lambda k: run_keyheavy(dbs, k, args.keyheavy_obs, args.repeat))
        if args.only != "keyheavy":
            runs.append(lambda k: run_realistic(dbs, k, args.flushes, args.repeat))
        for kind in kinds:
            for run in runs:
                rows.extend((kind, name, per) for name, per in run(kind))
        _table(rows)
    print(f"\n(medians of {args.repeat} rounds, wall time)")
    print("rerun: .venv/bin/python bench/write.py " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
