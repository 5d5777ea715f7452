"""Sustained OTLP/HTTP load against `python -m app serve` (SQLite in a temporary directory) with the
server's resident memory (VmRSS from /proc/<pid>/status) sampled over time: after warm-up it
should stay flat (bounded queue, pairing store, edge state; aggregates written every flush).

    .venv/bin/python bench/soak.py                                  # 60 s, 20 batches/s x 200 spans
    .venv/bin/python bench/soak.py --duration-s 600 --rate 50 --batch 500 --sample-s 30

Batches are waypoint-shaped (bench/ingest.py): 80% of spans have a parent that never arrives, so
they wait in the pairing store and expire as unpaired: the store's bound is exercised too.
Prints one row per sample, then the growth after warm-up and the command to rerun.
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
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/soak.py` from the repository root

from bench.ingest import free_port, waypoint_batch  # noqa: E402

PROTOBUF = {"content-type": "application/x-protobuf"}


@dataclass
class Load:
    outcomes: Counter[str] = field(default_factory=Counter)
    spans_acknowledged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def send(base: str, rate: float, batch: int, seed: int, load: Load) -> None:
    """Post `rate` batches per second (paced on a schedule, not by sleeping a fixed gap)."""
    rng = random.Random(seed)
    interval = 1.0 / rate
    next_at = time.monotonic()
    with httpx.Client(base_url=base, timeout=30) as client:
        while not load.stop.is_set():
            body = waypoint_batch(batch, rng)
            try:
                status = str(client.post("/v1/traces", content=body, headers=PROTOBUF).status_code)
            except httpx.TransportError as exc:
                status = type(exc).__name__
            with load.lock:
                load.outcomes[status] += 1
                if status == "200":
                    load.spans_acknowledged += batch
            next_at += interval
            load.stop.wait(max(0.0, next_at - time.monotonic()))


def wait_healthy(proc: subprocess.Popen[bytes], base: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"server did not answer /healthz within {timeout_s} s")
        time.sleep(0.1)


def pipeline_state(base: str) -> dict[str, object]:
    try:
        return dict(httpx.get(f"{base}/readyz", timeout=5).json()["parts"]["pipeline"])
    except (httpx.HTTPError, KeyError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=20.0, help="batches per second, in total")
    parser.add_argument("--batch", type=int, default=200, help="spans per batch")
    parser.add_argument("--senders", type=int, default=2, help="concurrent HTTP clients")
    parser.add_argument("--sample-s", type=float, default=5.0, help="RSS sampling period")
    parser.add_argument("--warmup-s", type=float, default=20.0, help="excluded from the growth")
    parser.add_argument("--flush-interval-s", type=float, default=5.0)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="meshstitch-soak-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHSTITCH_")}
    env.update(
        MESHSTITCH_DATABASE_URL=f"sqlite:///{workdir / 'meshstitch.db'}",
        MESHSTITCH_HOST="127.0.0.1",
        MESHSTITCH_HTTP_PORT=str(port),
        MESHSTITCH_GRPC_PORT=str(free_port()),
        MESHSTITCH_FLUSH_INTERVAL_S=str(args.flush_interval_s),
        MESHSTITCH_LOG_LEVEL="warning",
    )
    log_path = workdir / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    load = Load()
    rows: list[tuple[float, int]] = []
    try:
        wait_healthy(proc, base)
        print(
            f"meshstitch serve pid {proc.pid}, SQLite in {workdir}; "
            f"{args.rate:g} batches/s x {args.batch} spans = {args.rate * args.batch:,.0f} spans/s "
            f"for {args.duration_s:g} s"
        )
        header = (
            f"{'t_s':>6} {'rss_mib':>8} {'spans_acked':>12} {'200':>6} {'429':>5} {'503':>5} "
            f"{'other':>5} {'queued':>7} {'pend_wr':>7}"
        )
        print(header)
        print("-" * len(header))
        senders = [
            threading.Thread(
                target=send, args=(base, args.rate / args.senders, args.batch, i, load), daemon=True
            )
            for i in range(args.senders)
        ]
        started = time.monotonic()
        for thread in senders:
            thread.start()
        next_sample = started
        while True:
            now = time.monotonic() - started
            rss = rss_kib(proc.pid)
            rows.append((now, rss))
            state = pipeline_state(base)
            with load.lock:
                outcomes, acked = Counter(load.outcomes), load.spans_acknowledged
            other = sum(v for k, v in outcomes.items() if k not in {"200", "429", "503"})
            print(
                f"{now:6.0f} {rss / 1024:8.1f} {acked:12,} {outcomes['200']:6} "
                f"{outcomes['429']:5} {outcomes['503']:5} {other:5} "
                f"{state.get('queued_spans', '?')!s:>7} {state.get('pending_writes', '?')!s:>7}",
                flush=True,
            )
            if now >= args.duration_s:
                break
            next_sample += args.sample_s
            load.stop.wait(max(0.0, next_sample - time.monotonic()))
        load.stop.set()
        for thread in senders:
            thread.join(30)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        load.stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)

    steady = [rss for t, rss in rows if t >= args.warmup_s]
    if len(steady) >= 2:
        growth = (steady[-1] - steady[0]) / 1024
        print(
            f"\nafter {args.warmup_s:g} s warm-up: RSS {steady[0] / 1024:.1f} -> "
            f"{steady[-1] / 1024:.1f} MiB (growth {growth:+.1f} MiB; "
            f"min {min(steady) / 1024:.1f}, max {max(steady) / 1024:.1f})"
        )
    print(f"server exit status {proc.returncode}; log {log_path}")
    rerun = [".venv/bin/python", "bench/soak.py"]
    rerun += [f"--{k.replace('_', '-')}={v:g}" for k, v in vars(args).items()]  # every setting
    print(f"rerun: {shlex.join(rerun)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
