"""A real meshstitch (uvicorn + gRPC + pipeline + store) fed by a simulated mesh: what `meshstitch
demo` runs and what the end-to-end accuracy test measures.

The L4 poller here is one the harness owns, so a test can scrape exactly once per tick (which is
what keeps L4 counts exact across simulated ztunnel restarts); the demo polls on its interval.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from app.main import create_app
from app.pipeline import IngestPipeline
from app.poll.poller import L4Poller, build_poller
from app.settings import Settings
from app.sim.runner import MeshSimulator
from app.sim.topology import Topology


@dataclass
class RunningMeshstitch:
    app: FastAPI
    settings: Settings
    base_url: str
    grpc_port: int

    @property
    def pipeline(self) -> IngestPipeline:
        pipeline: IngestPipeline = self.app.state.pipeline
        return pipeline


def _bound_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(256)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_meshstitch(settings: Settings, log_level: str = "warning") -> Iterator[RunningMeshstitch]:
    """Serve the whole app with its lifespan in a thread. The HTTP socket listens before uvicorn
    starts, so the first request simply waits in the backlog until startup has completed."""
    app = create_app(settings)
    sock = _bound_socket(settings.host, settings.http_port)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on", ws="none")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="meshstitch-http", daemon=True
    )
    thread.start()
    base_url = f"http://{settings.host}:{port}"
    try:
        httpx.get(f"{base_url}/healthz", timeout=60).raise_for_status()  # startup finished
        yield RunningMeshstitch(app, settings, base_url, app.state.grpc_port)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


class SimulatedRun:
    """Drive a running meshstitch with a simulated mesh, one tick at a time. Its poller scrapes
    the simulated ztunnels and the waypoints' request metrics (which the truth's `metrics`
    edges rely on), once before the first tick and once after each."""

    def __init__(
        self,
        running: RunningMeshstitch,
        topology: Topology,
        seed: int = 0,
        protocol: str = "grpc",
        tick_s: float = 60.0,
        **sim_options: Any,
    ) -> None:
        endpoint = (
            f"{running.settings.host}:{running.grpc_port}"
            if protocol == "grpc"
            else running.base_url
        )
        token = running.settings.otlp_token.get_secret_value()
        headers = {"authorization": f"Bearer {token}"} if token else None
        self.running = running
        self.sim = MeshSimulator(
            topology,
            seed=seed,
            otlp_endpoint=endpoint,
            protocol=protocol,  # type: ignore[arg-type]
            headers=headers,
            **sim_options,
        )
        self.tick_s = tick_s
        urls = self.sim.start_ztunnels()
        # Each waypoint target named as a deployment names its static targets (as discovery
        # names a pod from its Gateway label): `<ns>/<waypoint>=<url>`.
        waypoints = [f"{w}={url}" for w, url in self.sim.start_waypoints().items()]
        poll_settings = running.settings.model_copy(
            update={"ztunnel_targets": ",".join(urls), "waypoint_targets": ",".join(waypoints)}
        )
        # Each scrape is stamped one second before the end of the tick it follows, so its L4
        # lands in the same bucket as the tick's spans (as a live poller's would); the baseline
        # scrape uses the wall clock.
        self._scrape_time_s: float | None = None
        poller = build_poller(
            poll_settings,
            running.pipeline.add_l4,
            running.app.state.identity,
            clock=self._scrape_clock,
        )
        assert poller is not None
        self.poller: L4Poller = poller
        self.poller.poll_once_sync()  # the baseline scrape: counters start from here
        self.ticks = 0

    def _scrape_clock(self) -> float:
        return time.time() if self._scrape_time_s is None else self._scrape_time_s

    def run_ticks(self, count: int, start_s: float) -> None:
        for i in range(count):
            begin = start_s + i * self.tick_s
            self.sim.tick(begin, begin + self.tick_s)
            # The tick's spans are processed before the scrape that follows, as a live mesh's
            # steady stream is: what they teach node identity (waypoints, a waypoint's zone from
            # its spans, app/correlate/span_zones.py) is known when the poll reads it.
            assert self.running.pipeline.flush(), self.running.pipeline.stats.last_flush_error
            self._scrape_time_s = begin + self.tick_s - 1.0
            self.poller.poll_once_sync()
            self.ticks += 1

    def settle(self) -> bool:
        """Everything sent so far processed and written (waiting spans emitted as unpaired)."""
        return self.running.pipeline.flush(drain_pairing=True)

    def stop(self) -> None:
        self.sim.stop()


def aligned_start(ticks: int, tick_s: float, bucket_s: int, now_s: float | None = None) -> float:
    """A start time `ticks` ticks before now, on a bucket boundary, so every tick ends in the past."""
    now = time.time() if now_s is None else now_s
    start = now - (ticks + 1) * tick_s
    return float(int(start // bucket_s) * bucket_s)
