"""Runaway cardinality against `python -m app serve` on the default SQLite store (issue 18): a
sender whose waypoint spans name a new destination almost every time.

    .venv/bin/python bench/cardinality.py                 # 2,000 batches x 512 spans (~1M names)
    .venv/bin/python bench/cardinality.py --quick         # 100 batches: a minute on a laptop
    .venv/bin/python bench/cardinality.py --app-root ../other-checkout   # the same run, other code

Each batch is one waypoint export request shaped like bench/ingest.py's (Envoy string tags, Istio
1.29 resource `service.name` = the destination service), but every span's `upstream_cluster` names
a random host: in-mesh services `svc-<random>.<ns>.svc.cluster.local` in 20 namespaces, and
external hosts `<random bucket>.s3.amazonaws.com` / `<random>.example.com`. Batches are posted
back to back by `--senders` clients; a 429/503 is retried after its Retry-After, so every span is
eventually accepted. Prints RSS while sending, then (after a flush: the queue empty and one more
flush interval) the store's size on disk (database + WAL), and the size and time of
`/services`, `/edges`, `/coverage`, `/graph` (window 1h) and `/metrics`.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/cardinality.py` from the repository root

from bench.ingest import free_port  # noqa: E402
from bench.soak import rss_kib, wait_healthy  # noqa: E402

PROTOBUF = {"content-type": "application/x-protobuf"}
NAMESPACES = [f"team-{i}" for i in range(20)]


def random_host(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.6:
        return f"svc-{rng.getrandbits(40):010x}.{rng.choice(NAMESPACES)}.svc.cluster.local"
    if roll < 0.85:
        return f"bucket-{rng.getrandbits(40):010x}.s3.amazonaws.com"
    return f"h{rng.getrandbits(40):010x}.example.com"


def cardinality_batch(spans: int, rng: random.Random) -> bytes:
    """One waypoint export request whose spans name random destinations (module docstring)."""
    request = ExportTraceServiceRequest()
    now = time.time_ns()
    for i in range(spans):
        host = random_host(rng)
        resource_spans = request.resource_spans.add()
        service = host.split(".", 1)[0]
        for key, value in (
            ("service.name", service),
            ("telemetry.sdk.language", "cpp"),
            ("telemetry.sdk.name", "envoy"),
        ):
            resource_spans.resource.attributes.add(key=key, value=AnyValue(string_value=value))
        status = rng.choice(["200"] * 18 + ["503", "404"])
        pb_span = resource_spans.scope_spans.add().spans.add(
            trace_id=rng.randbytes(16),
            span_id=rng.randbytes(8),
            name=f"{host}:443/*",
            kind=2,
            start_time_unix_nano=now - 50_000_000 + i,
            end_time_unix_nano=now - 50_000_000 + i + rng.randrange(500_000, 40_000_000),
        )
        if status == "503":
            pb_span.status.code = 2
        ns = rng.choice(NAMESPACES)
        tags = {
            "node_id": f"waypoint~10.42.0.9~waypoint-6b9f7c7d9-abcde.{ns}~{ns}.svc.cluster.local",
            "http.url": f"https://{host}/objects/{rng.randrange(10_000)}",
            "http.method": "GET",
            "http.protocol": "HTTP/1.1",
            "peer.address": f"10.42.{rng.randrange(4)}.{rng.randrange(2, 250)}:443",
            "response_flags": "UF" if status == "503" else "-",
            "upstream_cluster": f"outbound|443||{host}",
            "http.status_code": status,
            "response_size": str(rng.randrange(100, 5000)),
            "component": "proxy",
            "istio.canonical_service": "waypoint",
            "istio.namespace": ns,
        }
        pb_span.attributes.extend(
            KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in tags.items()
        )
    return request.SerializeToString()


class Sent:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.spans = 0


def send(base: str, batches: int, batch: int, seed: int, sent: Sent) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(batches):
            body = cardinality_batch(batch, rng)
            for _attempt in range(1000):  # bounded: a dead server ends the run
                response = client.post("/v1/traces", content=body, headers=PROTOBUF)
                with sent.lock:
                    sent.outcomes[str(response.status_code)] += 1
                if response.status_code == 200:
                    with sent.lock:
                        sent.spans += batch
                    break
                time.sleep(float(response.headers.get("retry-after", "1")))


def store_bytes(db: Path) -> tuple[int, int]:
    wal = db.with_name(db.name + "-wal")
    return (db.stat().st_size if db.exists() else 0, wal.stat().st_size if wal.exists() else 0)


def drained(base: str, flush_interval_s: float, timeout_s: float = 600) -> None:
    """Until the ingest queue is empty, then one more flush interval for the last write."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        parts = httpx.get(f"{base}/readyz", timeout=30).json()["parts"]
        pipeline = parts["pipeline"]
        if pipeline["queued_spans"] == 0 and pipeline["pending_writes"] == 0:
            time.sleep(2 * flush_interval_s + 1)
            return
        time.sleep(1)
    raise SystemExit("ingest queue did not drain")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=512, help="spans per batch")
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="100 batches")
    parser.add_argument("--sample-every", type=int, default=200, help="RSS row every N batches")
    parser.add_argument("--flush-interval-s", type=float, default=5.0)
    parser.add_argument("--app-root", type=Path, default=ROOT, help="checkout whose app to serve")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a MESHSTITCH_ setting for the server, e.g. ingest_queue_spans=50000 (repeatable)",
    )
    args = parser.parse_args(argv)
    batches = 100 if args.quick else args.batches

    workdir = Path(tempfile.mkdtemp(prefix="meshstitch-cardinality-"))
    db = workdir / "meshstitch.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHSTITCH_")}
    env.update(
        MESHSTITCH_DATABASE_URL=f"sqlite:///{db}",
        MESHSTITCH_HOST="127.0.0.1",
        MESHSTITCH_HTTP_PORT=str(port),
        MESHSTITCH_GRPC_PORT=str(free_port()),
        MESHSTITCH_FLUSH_INTERVAL_S=str(args.flush_interval_s),
        MESHSTITCH_LOG_LEVEL="warning",
        PYTHONPATH=str(args.app_root.resolve()),
    )
    for item in args.setting:
        name, _, value = item.partition("=")
        env[f"MESHSTITCH_{name.upper()}"] = value
    log_path = workdir / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"],
            cwd=args.app_root,
            env=env,
            stdout=log,
            stderr=log,
        )
    sent = Sent()
    try:
        wait_healthy(proc, base)
        print(
            f"meshstitch serve ({args.app_root.resolve()}) pid {proc.pid}, SQLite {db}; "
            f"{batches} batches x {args.batch} spans, {args.senders} senders"
        )
        header = f"{'spans_acked':>12} {'rss_mib':>8} {'db_mib':>8} {'wal_mib':>8} {'429':>6}"
        print(header)
        print("-" * len(header))
        per_sender = [batches // args.senders] * args.senders
        per_sender[0] += batches - sum(per_sender)
        threads = [
            threading.Thread(target=send, args=(base, n, args.batch, i, sent), daemon=True)
            for i, n in enumerate(per_sender)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        next_row = 0
        peak = 0
        while any(t.is_alive() for t in threads):
            with sent.lock:
                spans, refused = sent.spans, sent.outcomes["429"] + sent.outcomes["503"]
            peak = max(peak, rss_kib(proc.pid))
            if spans >= next_row:
                size, wal = store_bytes(db)
                print(
                    f"{spans:12,} {rss_kib(proc.pid) / 1024:8.1f} {size / 2**20:8.1f} "
                    f"{wal / 2**20:8.1f} {refused:6}",
                    flush=True,
                )
                next_row = spans + args.sample_every * args.batch
            time.sleep(1)
        for thread in threads:
            thread.join()
        send_s = time.monotonic() - started
        drained(base, args.flush_interval_s)
        size, wal = store_bytes(db)
        rss = rss_kib(proc.pid)
        peak = max(peak, rss)
        print(
            f"{sent.spans:12,} {rss / 1024:8.1f} {size / 2**20:8.1f} {wal / 2**20:8.1f} "
            f"(drained; sent in {send_s:.0f} s, {sent.spans / send_s:,.0f} spans/s acked)"
        )
        print(f"\n{'request':<34} {'status':>6} {'bytes':>12} {'seconds':>8}")
        # The first listing merges the window (the window cache's build); the rest and the second
        # round read the cached window (app/graph/window_cache.py).
        paths = ("/services?window=1h", "/edges?window=1h", "/coverage?window=1h")
        for path in (*paths, "/graph?window=1h", "/metrics", *(f"{p} (again)" for p in paths)):
            t0 = time.perf_counter()
            response = httpx.get(f"{base}{path.removesuffix(' (again)')}", timeout=600)
            elapsed = time.perf_counter() - t0
            print(
                f"{path:<34} {response.status_code:>6} {len(response.content):>12,} {elapsed:8.2f}"
            )
            peak = max(peak, rss_kib(proc.pid))
        metrics = httpx.get(f"{base}/metrics", timeout=600).text
        samples = sum(1 for line in metrics.splitlines() if line and not line.startswith("#"))
        ready = httpx.get(f"{base}/readyz", timeout=60).json()["parts"]
        size, wal = store_bytes(db)
        print(
            f"\n/metrics samples: {samples:,}; RSS after queries {rss_kib(proc.pid) / 1024:.1f} MiB"
            f" (peak {peak / 1024:.1f}); store {size / 2**20:.1f} MiB + WAL {wal / 2**20:.1f} MiB"
            f" = {(size + wal) / 2**20 / max(sent.spans / 1e6, 1e-9):.0f} MiB per million spans"
        )
        if "cardinality" in ready:
            c = ready["cardinality"]
            print(
                f"cardinality: overflowing={c['overflowing']} in_use={c['in_use']} "
                f"overflow_requests={c['overflow_requests']:,} top_senders={c['top_senders'][:2]}"
            )
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    print(f"server exit status {proc.returncode}; log {log_path}")
    rerun = [".venv/bin/python", "bench/cardinality.py", f"--batches={batches}"]
    rerun += [f"--batch={args.batch}", f"--senders={args.senders}"]
    rerun += [f"--app-root={args.app_root}", *(f"--setting={s}" for s in args.setting)]
    print(f"rerun: {shlex.join(rerun)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
