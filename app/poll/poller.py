"""The poller: runs one mode (PromQL or direct scrape) on its own thread and event loop, so a
slow target or a slow parse never blocks the service; readiness and self-metrics for the app.
It polls ztunnel (L4) and, beside it on the same interval, the waypoints' request metrics
(unsampled L7): static `waypoint_targets`, waypoint pods discovered by their Gateway label with
`ztunnel_discovery=kubernetes`, or the same Prometheus in PromQL mode. In both modes it refreshes
the pod directory when there is one (app/poll/pod_directory.py `directory_choice`).

Tests call `await poller.poll_once()` (or `poll_once_sync()`) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import httpx

from app.domain import IdentityEvidence, L4Sample, L7MetricSample, ZtunnelCount
from app.poll.discovery import WAYPOINT_SELECTOR, KubernetesDiscovery
from app.poll.kube_access import access_from_settings
from app.poll.pod_directory import PodDirectory
from app.poll.promql import PromQLSource
from app.poll.scrape import DirectScrape, Target, WaypointScrape, static_targets, waypoint_target
from app.poll.target_state import TargetState
from app.self_report import MetricFamily, PartState
from app.settings import Settings

log = logging.getLogger(__name__)

Polled = L4Sample | L7MetricSample
Emit = Callable[[list[Polled]], None]


class L4Source(Protocol):
    async def poll(self, client: httpx.AsyncClient, now_s: float) -> Sequence[Polled]: ...
    def states(self) -> list[TargetState]: ...
    def series(self) -> int: ...


class Sources:
    """Several sources polled as one (ztunnel, then the waypoints): one failing never stops
    the other; their states and series are reported together."""

    def __init__(self, *sources: L4Source) -> None:
        self.parts = sources

    async def poll(self, client: httpx.AsyncClient, now_s: float) -> list[Polled]:
        out: list[Polled] = []
        for source in self.parts:
            out.extend(await source.poll(client, now_s))
        return out

    def states(self) -> list[TargetState]:
        return [s for source in self.parts for s in source.states()]

    def series(self) -> int:
        return sum(source.series() for source in self.parts)


class L4Poller:
    def __init__(
        self,
        source: L4Source,
        emit: Emit,
        *,
        interval_s: float,
        mode: str,
        discovery: KubernetesDiscovery | None = None,
        discoveries: Sequence[KubernetesDiscovery] = (),
        directory: PodDirectory | None = None,
        clock: Callable[[], float] = time.time,
        may_poll: Callable[[], bool] | None = None,
        fresh_source: Callable[[], L4Source] | None = None,
    ) -> None:
        self.source, self._emit, self._interval_s = source, emit, interval_s
        self.mode, self.discovery, self._clock = mode, discovery, clock
        self.discoveries = [d for d in (discovery, *discoveries) if d is not None]
        self.directory = directory
        # Several replicas on one store: only the poll leader polls (store/leader.py). A replica
        # that becomes leader starts from a new baseline, never from counters it saw before
        # another replica counted the traffic in between.
        self._may_poll, self._fresh_source = may_poll, fresh_source
        self.standby = False
        self._client: httpx.AsyncClient | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.polls = 0
        self.last_poll_error = ""
        self.samples_emitted = 0

    # -- one cycle ---------------------------------------------------------------------------

    async def poll_once(self) -> list[Polled]:
        """One poll of every due target; emits and returns the samples."""
        if self._client is None:
            # Redirects are followed for /metrics behind a proxy; keep-alive across polls.
            self._client = httpx.AsyncClient(follow_redirects=True)
        if self.directory is not None:
            await self.directory.refresh(self._clock())
        if self._may_poll is not None:
            leader = await asyncio.to_thread(self._may_poll)
            if not leader:
                self.standby = True
                return []
            if self.standby and self._fresh_source is not None:
                self.source = self._fresh_source()
            self.standby = False
        samples = list(await self.source.poll(self._client, self._clock()))
        self.polls += 1
        if samples:
            self._emit(samples)
            self.samples_emitted += len(samples)
        return samples

    def ztunnel_count(self) -> ZtunnelCount:
        """The ztunnels (one per node) behind the L4 input: the endpoints scraped directly, or
        what the Prometheus answered in PromQL mode (app/poll/promql.py `ztunnel_count`)."""
        parts = self.source.parts if isinstance(self.source, Sources) else (self.source,)
        for part in parts:
            if isinstance(part, PromQLSource):
                return part.ztunnels
        scrapes = [p for p in parts if isinstance(p, DirectScrape)]
        if not scrapes:
            return ZtunnelCount(None, "no ztunnel input: only waypoint metrics are polled")
        return ZtunnelCount(
            sum(len(p.scraped) for p in scrapes), "ztunnel endpoints scraped (up or not)"
        )

    def poll_once_sync(self) -> list[Polled]:
        return asyncio.run(self._poll_and_close())

    async def _poll_and_close(self) -> list[Polled]:
        try:
            return await self.poll_once()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        for discovery in self.discoveries:
            await discovery.aclose()
        if self.directory is not None:
            await self.directory.aclose()

    # -- background thread -------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="meshstitch-l4-poller", daemon=True
        )
        self._thread.start()
        ready.wait(5)

    def stop(self, timeout_s: float = 10.0) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout_s)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, ready: threading.Event) -> None:
        asyncio.run(self._main(ready))

    async def _main(self, ready: threading.Event) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    await self.poll_once()
                    self.last_poll_error = ""
                except Exception as exc:  # never let one bad cycle end the poller
                    self.last_poll_error = f"{type(exc).__name__}: {exc}"
                    log.exception("L4 poll failed")
                wait = max(0.0, self._interval_s - (time.monotonic() - started))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait)
        finally:
            await self.aclose()

    async def __aenter__(self) -> L4Poller:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # -- readiness and self-metrics ----------------------------------------------------------

    def _all_states(self) -> list[TargetState]:
        states = list(self.source.states())
        states.extend(d.state for d in self.discoveries)
        if self.directory is not None:
            states.extend(self.directory.states)
        return states

    def readiness(self) -> PartState:
        """Ready while the poller runs (or has polled); unhealthy targets are reported, not fatal:
        L4 evidence from the other targets keeps flowing."""
        states = self._all_states()
        detail = {
            "mode": self.mode,
            "running": self.running,
            "standby": self.standby,  # another replica holds the poll lock
            "polls": self.polls,
            "all_targets_healthy": all(s.healthy for s in states) and bool(states),
            "last_poll_error": self.last_poll_error,
            "targets": {s.name: s.detail() for s in states},
        }
        return PartState(self.running or self.polls > 0, detail)

    def collect(self) -> list[MetricFamily]:
        scrapes = MetricFamily(
            "meshstitch_poll_scrapes", "counter", "Scrapes and queries of L4 targets by result."
        )
        last_ok = MetricFamily(
            "meshstitch_poll_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful scrape or query of a target.",
        )
        for state in self._all_states():
            for result, count in sorted(state.results.items()):
                scrapes.add(count, target=state.name, result=result)
            last_ok.add(state.last_success_s, target=state.name)
        series = MetricFamily(
            "meshstitch_poll_series", "gauge", "ztunnel series tracked by the poller."
        ).add(self.source.series())
        untracked = MetricFamily(
            "meshstitch_poll_series_untracked",
            "gauge",
            "Series of a target's latest scrape not tracked: past the per-target series cap.",
        )
        for state in self._all_states():
            if state.untracked_series:
                untracked.add(state.untracked_series, target=state.name)
        emitted = MetricFamily(
            "meshstitch_poll_samples", "counter", "L4 samples emitted to the pipeline."
        ).add(self.samples_emitted)
        return [scrapes, last_ok, series, untracked, emitted]


def build_poller(
    settings: Settings,
    emit: Emit,
    identity: IdentityEvidence,
    *,
    clock: Callable[[], float] = time.time,
    directory: PodDirectory | None = None,
    may_poll: Callable[[], bool] | None = None,
) -> L4Poller | None:
    """The poller the settings ask for, or None when no L4 input is configured.
    PromQL wins when both are set (it already has every ztunnel's history)."""
    interval, timeout = settings.poll_interval_s, settings.poll_timeout_s
    if settings.prometheus_url:

        def promql() -> L4Source:
            source = PromQLSource(
                settings.prometheus_url,
                bucket_s=settings.bucket_s,
                interval_s=interval,
                timeout_s=timeout,
                identity=identity,
                token=settings.prometheus_token.get_secret_value(),
                username=settings.prometheus_username,
                password=settings.prometheus_password.get_secret_value(),
                job=settings.prometheus_job,
                dedupe_labels=tuple(settings.prometheus_dedupe_label_list()),
            )
            if directory is not None:  # MESHSTITCH_KUBERNETES_PODS: zones from node topology
                source.zones = directory.zone_of
            return source

        return L4Poller(
            promql(),
            emit,
            interval_s=interval,
            mode="promql",
            directory=directory,
            clock=clock,
            may_poll=may_poll,
            fresh_source=promql,
        )
    discovery = waypoint_discovery = None
    ztunnel_targets: Callable[[], Awaitable[list[Target]]] | None = None
    if settings.ztunnel_discovery == "kubernetes":
        access = access_from_settings(settings)
        discovery = KubernetesDiscovery(
            access,
            namespace=settings.ztunnel_namespace,
            port=settings.ztunnel_port,
            interval_s=interval,
            timeout_s=timeout,
            started_s=clock(),
        )
        waypoint_discovery = KubernetesDiscovery(
            access,
            namespace="",
            port=settings.waypoint_port,
            path=settings.waypoint_metrics_path,
            label_selector=WAYPOINT_SELECTOR,
            waypoints=True,
            interval_s=interval,
            timeout_s=timeout,
            started_s=clock(),
        )
        found = discovery

        async def provide() -> list[Target]:
            return await found.discover(clock())

        ztunnel_targets = provide
    elif settings.ztunnel_target_list():
        ztunnel_targets = static_targets(settings.ztunnel_target_list())
    named = [waypoint_target(entry) for entry in settings.waypoint_target_list()]
    for target in named:
        if target.via:
            identity.learn_waypoint(*target.via.split("/", 1))
    static_waypoints = static_targets(named)
    waypoint_targets: Callable[[], Awaitable[list[Target]]] | None = None
    if waypoint_discovery is not None:
        found_waypoints = waypoint_discovery

        async def provide_waypoints() -> list[Target]:
            listed = await found_waypoints.discover(clock())
            fixed = await static_waypoints()
            return [*fixed, *(t for t in listed if t.url not in {f.url for f in fixed})]

        waypoint_targets = provide_waypoints
    elif settings.waypoint_target_list():
        waypoint_targets = static_waypoints
    if ztunnel_targets is None and waypoint_targets is None:
        return None

    def scrape() -> L4Source:
        for d in (discovery, waypoint_discovery):
            if d is not None:
                d.restart_baseline(clock())
        parts: list[L4Source] = []
        if ztunnel_targets is not None:
            ztunnels = DirectScrape(
                ztunnel_targets, interval_s=interval, timeout_s=timeout, identity=identity
            )
            if directory is not None:
                ztunnels.zones = directory.zone_of
            parts.append(ztunnels)
        if waypoint_targets is not None:
            parts.append(
                WaypointScrape(
                    waypoint_targets, interval_s=interval, timeout_s=timeout, identity=identity
                )
            )
        return parts[0] if len(parts) == 1 else Sources(*parts)

    return L4Poller(
        scrape(),
        emit,
        interval_s=interval,
        mode="scrape",
        discovery=discovery,
        discoveries=[waypoint_discovery] if waypoint_discovery is not None else [],
        directory=directory,
        clock=clock,
        may_poll=may_poll,
        fresh_source=scrape,
    )
