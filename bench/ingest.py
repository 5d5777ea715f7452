"""OTLP/HTTP ingest throughput: 512-span waypoint batches posted as protobuf to a running server,
beside raw `ParseFromString` and the decoder alone on the same payload.

    .venv/bin/python bench/ingest.py                 # starts `python -m app serve` itself
    .venv/bin/python bench/ingest.py --target http://127.0.0.1:8080   # an already running server

If the served app has no /v1/traces yet (404), the bench falls back to a server process with only
the OTLP router and a counting sink, and says so: that measures transport + decode, not the full
decode → normalize → pair → aggregate pipeline the target in DESIGN.md is about.

Against `meshstitch serve` two rates are printed: "accepted" (POSTs answered; spans may still be
queued) and "processed" (until /metrics shows the ingest queue empty, i.e. correlated and
aggregated too). `--stages` adds an in-process breakdown on the same payload: decode, correlate
(`SpanCorrelator.add`, and the drain of the spans still waiting for a parent at the end),
aggregate (`EdgeAggregator.add_l7`), the service-graph metrics observer, the aggregate's drain and
its write to a fresh SQLite store (one flush of all `--batches` batches), and the HTTP overhead of
the OTLP router over a real uvicorn with a counting sink (its per-span time minus decode's). In-process times are CPU time of the measuring thread (robust to other load
on a shared machine), medians over `--repeat` rounds.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/ingest.py` from the repository root

from app.ingest.decoder_choice import ProtobufDecoder, select_protobuf_decoder  # noqa: E402
from app.ingest.otlp_decode import decode_protobuf  # noqa: E402
from app.settings import Settings  # noqa: E402

SERVICES = ["reviews", "ratings", "details", "productpage", "checkout", "cart", "payments", "users"]


def waypoint_batch(spans: int, rng: random.Random) -> bytes:
    """One export request shaped like a waypoint's (tests/data/otlp/README.md): Envoy string tags."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    for key, value in (
        ("service.name", "waypoint.default"),
        ("telemetry.sdk.language", "cpp"),
        ("telemetry.sdk.name", "envoy"),
        ("telemetry.sdk.version", "1.34.1/Clean/RELEASE/BoringSSL"),
    ):
        resource_spans.resource.attributes.add(key=key, value=AnyValue(string_value=value))
    scope = resource_spans.scope_spans.add()
    now = time.time_ns()
    for i in range(spans):
        service = rng.choice(SERVICES)
        host = f"{service}.default.svc.cluster.local"
        status = rng.choice(["200"] * 18 + ["503", "404"])
        pod_ip = f"10.42.{rng.randrange(4)}.{rng.randrange(2, 250)}"
        pb_span = scope.spans.add(
            trace_id=rng.randbytes(16),
            span_id=rng.randbytes(8),
            parent_span_id=rng.randbytes(8) if rng.random() < 0.8 else b"",
            name=f"{host}:9080/*",
            kind=2,
            start_time_unix_nano=now - 50_000_000 + i,
            end_time_unix_nano=now - 50_000_000 + i + rng.randrange(500_000, 40_000_000),
        )
        if status == "503":
            pb_span.status.code = 2
        tags = {
            "node_id": "waypoint~10.42.0.9~waypoint-6b9f7c7d9-abcde.default~default.svc.cluster.local",
            "zone": "",
            "guid:x-request-id": f"{rng.getrandbits(128):032x}",
            "http.url": f"http://{host}:9080/api/v1/items/{rng.randrange(10_000)}",
            "http.method": rng.choice(["GET", "GET", "GET", "POST"]),
            "downstream_cluster": "-",
            "user_agent": "python-requests/2.32.3",
            "http.protocol": "HTTP/1.1",
            "peer.address": f"10.42.0.{rng.randrange(2, 250)}:{rng.randrange(30_000, 60_000)}",
            "request_size": "0",
            "response_flags": "UF" if status == "503" else "-",
            "upstream_address": f"envoy://connect_originate/{pod_ip}:9080",
            "upstream_cluster": f"inbound-vip|9080|http|{host}",
            "upstream_cluster.name": f"inbound-vip|9080|http|{host}",
            "http.status_code": status,
            "response_size": str(rng.randrange(100, 5000)),
            "component": "proxy",
            "istio.canonical_revision": "latest",
            "istio.canonical_service": "waypoint",
            "istio.cluster_id": "Kubernetes",
            "istio.mesh_id": "cluster.local",
            "istio.namespace": "default",
        }
        pb_span.attributes.extend(
            KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in tags.items()
        )
    return request.SerializeToString()


def with_new_trace_ids(templates: list[bytes], count: int, rng: random.Random) -> list[bytes]:
    """`count` batches cut from `templates`, each span under a trace id of its own: real traces
    are not sent twice, and a repeated one would meet its own earlier copy in the pairing store
    (a collision) and keep its trace an exemplar, so that every copy's hops were stored."""
    out = []
    for i in range(count):
        request = ExportTraceServiceRequest.FromString(templates[i % len(templates)])
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    span.trace_id = rng.randbytes(16)
        out.append(request.SerializeToString())
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server_process(
    args: list[str], env: dict[str, str], base_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(args, env={**os.environ, **env}, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"server exited with {process.returncode}: {shlex.join(args)}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not answer /healthz within 60 s")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def serve_fallback(port: int) -> None:
    """Child mode: the OTLP router alone with a sink that counts and drops, on one uvicorn worker."""
    import uvicorn
    from fastapi import FastAPI

    from app.domain import Span
    from app.ingest.otlp_http import build_otlp_http_router
    from app.ingest.sink import Admission, Verdict
    from app.settings import Settings

    class CountingSink:
        def __init__(self) -> None:
            self.count = 0

        def offer(self, spans: list[Span]) -> Verdict:
            self.count += len(spans)
            return Verdict(Admission.ACCEPTED)

    app = FastAPI()
    app.include_router(build_otlp_http_router(CountingSink(), Settings()))
    app.get("/healthz")(lambda: {"status": "ok"})
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",  # as `meshstitch serve` (app/cli.py uvicorn_config)
        http="httptools",
    )


def post_batches(
    url: str, batches: list[bytes], rounds: int, concurrency: int
) -> tuple[float, int]:
    """Post every batch `rounds` times from `concurrency` keep-alive clients; (seconds, failures).

    A failure is a non-200 answer or a transport error (refused, reset, timed out): a POST that
    got no answer is not an accepted batch."""
    work = with_new_trace_ids(batches, rounds, random.Random(rounds))
    failures = [0]
    lock = threading.Lock()

    def worker(share: list[bytes]) -> None:
        with httpx.Client(timeout=60) as client:
            for body in share:
                try:
                    response = client.post(
                        url, content=body, headers={"content-type": "application/x-protobuf"}
                    )
                    failed = response.status_code != 200
                except httpx.TransportError:
                    failed = True
                if failed:
                    with lock:
                        failures[0] += 1

    threads = [
        threading.Thread(target=worker, args=(work[i::concurrency],)) for i in range(concurrency)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, failures[0]


def time_in_process(
    batches: list[bytes], spans: int, repeat: int, decoder: ProtobufDecoder
) -> tuple[float, float, float]:
    """Median spans/s (thread CPU time) of raw ParseFromString, of the reference decode_protobuf
    and of `decoder`, interleaved batch by batch so load on a shared machine hits all three."""
    parse_times, reference_times, decode_times = [], [], []
    for i in range(repeat):
        batch = batches[i % len(batches)]
        started = time.thread_time()
        ExportTraceServiceRequest().ParseFromString(batch)
        parse_times.append(time.thread_time() - started)
        started = time.thread_time()
        decode_protobuf(batch, 1024)
        reference_times.append(time.thread_time() - started)
        started = time.thread_time()
        decoder.decode(batch, 1024)
        decode_times.append(time.thread_time() - started)
    return tuple(spans / statistics.median(t) for t in (parse_times, reference_times, decode_times))  # type: ignore[return-value]


def stage_times(
    batches: list[bytes], spans: int, repeat: int, decoder: ProtobufDecoder
) -> dict[str, float]:
    """Median µs per span of each worker stage on the bench payload, fresh state per round.

    Every span is followed to the store: the waypoint spans that wait for a parent (80 % of the
    payload) leave the pairing store at the end of the round (`drain`, as expiry would) and are
    correlated, aggregated and observed there; then the aggregate is drained and written to a
    fresh SQLite store in one transaction, as the worker's flush does. A round is one flush of all
    `batches` (`--batches` of them: 51,200 spans at 100, 5 s of a server taking 10k spans/s)."""
    from app.correlate.aggregate import EdgeAggregator
    from app.correlate.correlator import SpanCorrelator
    from app.correlate.servicegraph_metrics import ServiceGraphMetrics
    from app.edge.recent_hops import RecentHops
    from app.gc_tuning import tune_gc
    from app.settings import Settings
    from app.store.engine import create_store_engine
    from app.store.schema import ensure_schema
    from app.store.writer import write_batch

    tune_gc()  # the collector as `meshstitch serve` sets it
    settings = Settings()
    stages = ("decode", "correlate", "aggregate", "observer", "drain + store write (SQLite)")
    times: dict[str, list[float]] = {stage: [] for stage in stages}
    for _ in range(repeat):
        correlator = SpanCorrelator(
            settings.pairing_wait_s, settings.pairing_max_items, settings.bucket_s
        )
        aggregator = EdgeAggregator(
            settings.bucket_s, recent_hops=RecentHops(settings.recent_trace_hops)
        )
        metrics = ServiceGraphMetrics()
        round_times = dict.fromkeys(times, 0.0)

        for batch in batches:
            started = time.thread_time()
            decoded = decoder.decode(batch, settings.max_attributes_per_span).spans
            decoded_at = time.thread_time()
            round_times["decode"] += decoded_at - started
            observed = correlator.add(decoded, time.time_ns())
            _aggregate_timed(observed, decoded_at, round_times, aggregator, metrics)
        started = time.thread_time()
        _aggregate_timed(correlator.drain(), started, round_times, aggregator, metrics)
        with tempfile.TemporaryDirectory() as tmp:
            engine = create_store_engine(f"sqlite:///{tmp}/stages.db")
            ensure_schema(engine, auto_upgrade=True)
            started = time.thread_time()
            write_batch(engine, aggregator.drain())
            round_times[stages[-1]] += time.thread_time() - started
            engine.dispose()
        for stage, seconds in round_times.items():
            times[stage].append(seconds / (spans * len(batches)) * 1e6)
    return {stage: statistics.median(values) for stage, values in times.items()}


def _aggregate_timed(
    observations: list[Any],
    started: float,
    round_times: dict[str, float],
    aggregator: Any,
    metrics: Any,
) -> None:
    """Count the thread time since `started` as correlation (it made `observations`), then
    aggregate and observe them, timed."""
    correlated_at = time.thread_time()
    round_times["correlate"] += correlated_at - started
    for obs in observations:
        aggregator.add_l7(obs)
    aggregated_at = time.thread_time()
    metrics.observe(observations)
    round_times["aggregate"] += aggregated_at - correlated_at
    round_times["observer"] += time.thread_time() - aggregated_at


def queued_spans(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("meshstitch_ingest_queue_spans"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_processed(base_url: str, started: float, timeout_s: float = 300) -> float:
    """Seconds from `started` until the server's ingest queue is empty (perf_counter clock)."""
    deadline = time.perf_counter() + timeout_s
    while queued_spans(base_url) > 0:
        if time.perf_counter() > deadline:
            raise SystemExit("ingest queue did not drain")
        time.sleep(0.02)
    return time.perf_counter() - started


def fallback_rate(args: argparse.Namespace, batches: list[bytes]) -> tuple[float, float]:
    """OTLP router + counting sink (transport + decode only) on a real uvicorn: (spans/s wall,
    server CPU µs per span)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    child = [sys.executable, str(Path(__file__).resolve()), "--serve-fallback", str(port)]
    with server_process(child, {}, base_url) as process:
        cpu_before = cpu_seconds(process.pid)
        elapsed, _ = post_batches(f"{base_url}/v1/traces", batches, args.batches, args.concurrency)
        cpu = cpu_seconds(process.pid) - cpu_before
    spans = args.batches * args.spans
    return spans / elapsed, cpu / spans * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", help="base URL of a running meshstitch (default: start one)")
    parser.add_argument("--spans", type=int, default=512, help="spans per batch")
    parser.add_argument("--batches", type=int, default=200, help="batches to post")
    parser.add_argument("--concurrency", type=int, default=2, help="keep-alive client threads")
    parser.add_argument("--repeat", type=int, default=40, help="rounds of in-process timings")
    parser.add_argument(
        "--stages", action="store_true", help="also: in-process per-stage breakdown"
    )
    parser.add_argument("--serve-fallback", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fallback:
        serve_fallback(args.serve_fallback)
        return 0

    rng = random.Random(7)
    batches = [waypoint_batch(args.spans, rng) for _ in range(8)]
    # The decoder MESHSTITCH_OTLP_DECODER selects here, as in the servers this bench starts.
    decoder = select_protobuf_decoder(Settings().otlp_decoder)
    parse_rate, reference_rate, decode_rate = time_in_process(
        batches, args.spans, args.repeat, decoder
    )
    served_decoder = "n/a"

    mode = "target"
    processed_rate = server_cpu = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        if args.target:
            base_url = args.target.rstrip("/")
            elapsed, failures = post_batches(
                f"{base_url}/v1/traces", batches, args.batches, args.concurrency
            )
        else:
            http_port, grpc_port = free_port(), free_port()
            base_url = f"http://127.0.0.1:{http_port}"
            env = {
                "MESHSTITCH_DATABASE_URL": f"sqlite:///{tmp}/b.db",
                "MESHSTITCH_HOST": "127.0.0.1",
                "MESHSTITCH_HTTP_PORT": str(http_port),
                "MESHSTITCH_GRPC_PORT": str(grpc_port),
                "MESHSTITCH_LOG_LEVEL": "warning",
            }
            with server_process([sys.executable, "-m", "app", "serve"], env, base_url) as process:
                probe = httpx.post(
                    f"{base_url}/v1/traces",
                    content=batches[0],
                    headers={"content-type": "application/x-protobuf"},
                )
                mode = "meshstitch serve (full pipeline)"
                parts = httpx.get(f"{base_url}/readyz", timeout=10).json().get("parts", {})
                served_decoder = parts.get("otlp_decoder", {}).get("protobuf", "unknown")
                if probe.status_code == 404:
                    mode = ""
                else:
                    wait_processed(base_url, time.perf_counter())
                    cpu_before = cpu_seconds(process.pid)
                    started = time.perf_counter()
                    elapsed, failures = post_batches(
                        f"{base_url}/v1/traces", batches, args.batches, args.concurrency
                    )
                    # Only accepted batches are processed: a 429 (queue full) carried no spans in.
                    accepted = (args.batches - failures) * args.spans
                    processed_rate = accepted / wait_processed(base_url, started)
                    server_cpu = cpu_seconds(process.pid) - cpu_before
            if not mode:
                mode = "FALLBACK: /v1/traces not wired in `meshstitch serve` yet; OTLP router + counting sink"
                elapsed, failures = 1.0, 0
                http_rate, _ = fallback_rate(args, batches)
                elapsed = args.batches * args.spans / http_rate

    if failures >= args.batches:
        print(f"every POST to {base_url}/v1/traces failed: is a server listening there?")
        return 1
    # Spans the server accepted, not spans posted: a failed POST carried none.
    http_rate = (args.batches - failures) * args.spans / elapsed
    print(f"server: {mode}; its OTLP protobuf decoder: {served_decoder}")
    print(
        f"decoder measured in process: {decoder.name} (MESHSTITCH_OTLP_DECODER), "
        f"{decode_rate / parse_rate:.2f} of raw ParseFromString, "
        f"{1e6 / decode_rate:.2f} µs/span; the python reference {1e6 / reference_rate:.2f} µs/span"
    )
    print(
        f"payload: {args.spans} spans/batch, {len(batches[0]) / 1024:.0f} KiB protobuf, "
        f"{args.batches} batches, {args.concurrency} clients, {failures} failed POSTs (non-200 or no answer)"
    )
    print()
    print(f"| {'what':<52} | {'spans/s':>10} | {'vs raw parse':>12} |")
    print(f"|{'-' * 54}|{'-' * 12}|{'-' * 14}|")
    rows = [
        ("raw ParseFromString (generated classes)", parse_rate),
        ("decode_protobuf, python reference (in process)", reference_rate),
        (f"decode, {decoder.name} decoder (in process)", decode_rate),
        ("POST /v1/traces protobuf, accepted (one worker)", http_rate),
    ]
    if processed_rate:
        rows.append(("POST /v1/traces protobuf, processed (queue drained)", processed_rate))
        rows.append(
            (
                "serve: spans per server CPU-second (all threads)",
                (args.batches - failures) * args.spans / server_cpu,
            )
        )
    for label, rate in rows:
        print(f"| {label:<52} | {rate:>10,.0f} | {rate / parse_rate:>12.2f} |")

    if args.stages:
        # A round is one flush of as many batches as were posted, each under trace ids of its
        # own: a flush of 8 batches (as before) held ~2 spans an edge, so nearly every span was
        # an exemplar and the write cost per span was that of a near-empty flush.
        flush = with_new_trace_ids(batches, args.batches, random.Random(args.batches + 1))
        stages = stage_times(flush, args.spans, max(3, args.repeat // 8), decoder)
        router_rate, router_cpu = fallback_rate(args, batches)
        stages["HTTP (router over uvicorn, minus decode)"] = max(0.0, router_cpu - stages["decode"])
        total = sum(stages.values())
        print()
        print("in-process stages, µs per span (thread CPU time; HTTP: server CPU time of a")
        print(f"router-only uvicorn with a counting sink, {router_cpu:.2f} µs/span and")
        print(
            f"{router_rate:,.0f} spans/s wall with the clients on the same machine, minus decode):"
        )
        print()
        print(f"| {'stage':<44} | {'µs/span':>8} | {'share':>6} |")
        print(f"|{'-' * 46}|{'-' * 10}|{'-' * 8}|")
        for stage, micros in stages.items():
            label = f"decode ({decoder.name} decoder)" if stage == "decode" else stage
            print(f"| {label:<44} | {micros:>8.2f} | {micros / total:>6.0%} |")
        print(f"| {'sum (→ spans/s on one core)':<44} | {total:>8.2f} | {1e6 / total:>6,.0f} |")
    print()
    print("rerun: " + shlex.join([".venv/bin/python", "bench/ingest.py", *(argv or sys.argv[1:])]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
