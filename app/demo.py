"""`meshstitch demo`: serve on the embedded SQLite default with a simulated bookinfo mesh feeding it.

The simulator sends real OTLP over gRPC to the served port and serves ztunnel /metrics endpoints on
loopback that the service's own poller scrapes, in real time, so what the demo shows is what a
cluster would produce. Like `deploy/istio`'s Telemetry it records 10 % of traces; the waypoints'
request metrics (also scraped) keep the counts on edges through a waypoint exact. Works with no cluster, no Prometheus and no network.
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType

import httpx

from app.gc_tuning import tune_gc
from app.settings import Settings

TICK_S = 5.0
TRACE_SAMPLING = 0.1  # deploy/istio/telemetry.yaml's randomSamplingPercentage
CLEAR = "\x1b[2J\x1b[H"


def demo_urls(base: str) -> list[tuple[str, str]]:
    return [
        ("web view (graph)", f"{base}/ui?service=productpage"),
        ("service graph (JSON)", f"{base}/graph?service=productpage&depth=2"),
        ("as a table", f"{base}/graph?service=productpage&depth=2&format=table"),
        ("triage", f"{base}/triage?service=reviews"),
        ("blind spots", f"{base}/coverage"),
        ("what ambient costs", f"{base}/cost"),
        ("Grafana JSON datasource", f"{base}/grafana"),
        ("API docs", f"{base}/docs"),
        ("readiness", f"{base}/readyz"),
        ("Prometheus metrics", f"{base}/metrics"),
    ]


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_demo(settings: Settings, ticks: int = 0) -> int:
    """Serve and feed until Ctrl-C (or for `ticks` ticks when > 0, for tests)."""
    from app.sim.harness import serve_meshstitch
    from app.sim.runner import MeshSimulator
    from app.sim.zoned import zoned_bookinfo

    otlp_host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host
    # The exporter connects lazily, so it can be made before the gRPC server listens.
    sim = MeshSimulator(
        zoned_bookinfo(),
        seed=int(time.time()),
        otlp_endpoint=f"{otlp_host}:{settings.grpc_port}",
        protocol="grpc",
        trace_sampling=TRACE_SAMPLING,
    )
    urls = sim.start_ztunnels()
    waypoints = [f"{w}={url}" for w, url in sim.start_waypoints().items()]
    settings = settings.model_copy(
        update={
            "ztunnel_targets": ",".join(urls),
            "waypoint_targets": ",".join(waypoints),
            "trace_sampling_percent": TRACE_SAMPLING * 100,
            "poll_interval_s": TICK_S,
            "flush_interval_s": min(settings.flush_interval_s, TICK_S),
        }
    )
    tune_gc()
    signal.signal(signal.SIGTERM, _terminate)
    interactive = sys.stdout.isatty()
    try:
        with serve_meshstitch(settings) as running:
            base = running.base_url.replace("0.0.0.0", "127.0.0.1")
            header = _header(settings, base, running.grpc_port, urls, waypoints)
            print(header, flush=True)
            done, sent, started = 0, 0, time.time()
            last = time.time()
            while ticks <= 0 or done < ticks:
                time.sleep(max(0.0, last + TICK_S - time.time()))
                now = time.time()
                report = sim.tick(last, now)
                last, done, sent = now, done + 1, sent + report.spans
                running.pipeline.flush()
                view = _graph_view(base, settings)
                status = (
                    f"tick {done}: {report.requests} requests, {report.spans} spans sent "
                    f"({sent} in {now - started:.0f} s); ztunnels and waypoints scraped every "
                    f"{TICK_S:.0f} s"
                )
                if interactive:
                    print(CLEAR + header + "\n" + status + "\n\n" + view, flush=True)
                else:
                    print(status + "\n" + view, flush=True)
    except KeyboardInterrupt:
        print("\nmeshstitch demo: stopping (everything accepted is flushed)")
    finally:
        sim.stop()
    return 0


def _header(
    settings: Settings, base: str, grpc_port: int, ztunnels: list[str], waypoints: list[str]
) -> str:
    lines = [
        "meshstitch demo: a simulated Istio ambient mesh (bookinfo, 3 nodes in 3 zones) feeding a "
        "real meshstitch",
        f"  database: {settings.database_url}",
        f"  OTLP/gRPC: {settings.host}:{grpc_port}   OTLP/HTTP: {base}/v1/traces",
        f"  simulated ztunnels: {len(ztunnels)} nodes, e.g. {ztunnels[0]}",
        f"  simulated waypoints: {len(waypoints)}, e.g. {waypoints[0].split('=', 1)[1]}; "
        f"{TRACE_SAMPLING:.0%} of traces sampled",
        "",
    ]
    lines += [f"  {label:<24} {url}" for label, url in demo_urls(base)]
    lines += ["", "  Ctrl-C to stop."]
    return "\n".join(lines)


def _graph_view(base: str, settings: Settings) -> str:
    token = settings.api_token.get_secret_value()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(
            f"{base}/graph",
            params={"service": "productpage", "depth": "2", "format": "table", "window": "5m"},
            headers=headers,
            timeout=10,
        )
    except httpx.HTTPError as exc:
        return f"(graph unavailable: {exc})"
    if response.status_code == 404:
        return "(waiting for the first flush: productpage not seen yet)"
    return "productpage, depth 2, last 5 minutes:\n" + response.text
