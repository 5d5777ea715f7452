"""Direct scrape of ztunnel endpoints (port 15020, /metrics) and of waypoint pods (port 15020,
/stats/prometheus): parse, per-series deltas, samples. One `ScrapedTarget` per URL keeps its
parser, counter state and health; `TargetScrape` owns the target set; `DirectScrape` (ztunnel)
and `WaypointScrape` (waypoint request metrics) differ only in which families they keep and how
increases become samples."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

from app.domain import IdentityEvidence, L4Sample, L7MetricSample
from app.poll.deltas import CounterDeltas
from app.poll.exposition import ExpositionError, ExpositionParser, Sample
from app.poll.half_edges import SeriesIncrease, to_samples
from app.poll.target_state import ERROR, INVALID, TIMEOUT, TargetState
from app.poll.waypoint_labels import group, is_waypoint_family, to_metric_samples
from app.poll.zone_split import WorkloadZones
from app.poll.ztunnel_labels import (
    CLOSED,
    OPENED,
    REQUEST_BYTES,
    Counts,
    edge_key,
    is_traffic_family,
)
from app.settings import parse_waypoint_target

MAX_BODY_BYTES = 256 * 2**20


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    # True when every counter of this target began after we started watching (a ztunnel pod
    # discovered later that started later): its first scrape counts instead of baselining.
    count_first_scrape: bool = False
    # A waypoint pod's metrics: the waypoint's node id (`<ns>/<gateway>`) when discovery knows it.
    via: str = ""


class ScrapedTarget:
    def __init__(
        self,
        target: Target,
        interval_s: float,
        keep: Callable[[str], bool] = is_traffic_family,
    ) -> None:
        self.target = target
        self.state = TargetState(target.url, interval_s)
        self.parser = ExpositionParser(keep=keep)
        self.deltas = CounterDeltas()
        if target.count_first_scrape:
            self.deltas.update(())  # an empty baseline: every series seen next is new


def group_increases(
    increases: Iterable[tuple[Sample, float]],
) -> list[tuple[dict[str, str], Counts]]:
    """Sum the families' increases per edge label set (ztunnel may print extra labels)."""
    acc: dict[tuple[str, ...], tuple[dict[str, str], list[float]]] = {}
    index = {OPENED: 0, CLOSED: 1, REQUEST_BYTES: 2}
    for sample, delta in increases:
        key = edge_key(sample.labels)
        entry = acc.get(key)
        if entry is None:
            entry = acc[key] = (dict(sample.labels), [0.0, 0.0, 0.0, 0.0])
        entry[1][index.get(sample.name, 3)] += delta
    return [(labels, Counts(*(round(v) for v in values))) for labels, values in acc.values()]


TargetsProvider = Callable[[], Awaitable[list[Target]]]


class TargetScrape:
    """The target set a direct-scrape source owns: refreshed from its provider on every poll (a
    new URL starts a `ScrapedTarget`, a gone one forgets its state), every due target scraped
    concurrently (bounded), each within `timeout_s`, failures recorded in its state.
    Subclasses say which families they keep and turn the increases into samples."""

    keep: Callable[[str], bool] = staticmethod(is_traffic_family)

    def __init__(
        self,
        targets: TargetsProvider,
        *,
        interval_s: float,
        timeout_s: float,
        identity: IdentityEvidence,
        concurrency: int = 16,
    ) -> None:
        self._targets = targets
        self._interval_s, self._timeout_s = interval_s, timeout_s
        self._identity = identity
        self._concurrency = concurrency
        self.scraped: dict[str, ScrapedTarget] = {}

    def series(self) -> int:
        return sum(len(t.deltas) for t in self.scraped.values())

    def states(self) -> list[TargetState]:
        return [t.state for t in self.scraped.values()]

    async def _scrape_due(
        self, client: httpx.AsyncClient, now_s: float
    ) -> list[tuple[ScrapedTarget, list[tuple[Sample, float]], float]]:
        """(target, its series increases, interval start) for every due target that answered,
        in target order."""
        wanted = await self._targets()
        known = {t.target.url for t in self.scraped.values()}
        for target in wanted:
            if target.url not in known:
                self.scraped[target.url] = ScrapedTarget(target, self._interval_s, keep=self.keep)
        for url in known - {t.url for t in wanted}:
            del self.scraped[url]  # gone (pod deleted): forget its state
        due = [t for t in self.scraped.values() if t.state.due(now_s)]
        gate = asyncio.Semaphore(self._concurrency)

        async def one(t: ScrapedTarget) -> tuple[list[tuple[Sample, float]], float] | None:
            async with gate:
                return await scrape_increases(client, t, now_s, self._timeout_s)

        results = await asyncio.gather(*(one(t) for t in due))
        return [(t, *r) for t, r in zip(due, results, strict=True) if r is not None]


class DirectScrape(TargetScrape):
    """ztunnel endpoints: all targets' increases joined into half-edge samples together."""

    # A workload's zone where ztunnel prints no locality labels (the pod directory's node
    # topology, app/poll/node_zones.py); None: labels only.
    zones: WorkloadZones | None = None

    async def poll(self, client: httpx.AsyncClient, now_s: float) -> list[L4Sample]:
        scraped = await self._scrape_due(client, now_s)
        # All targets together: the two half-edges of a waypoint call are printed by two ztunnels.
        increases: list[SeriesIncrease] = [
            (labels, counts, start_s)
            for _, target_increases, start_s in scraped
            for labels, counts in group_increases(target_increases)
        ]
        return to_samples(increases, now_s, self._identity, self.zones)


async def fetch(client: httpx.AsyncClient, url: str) -> str:
    async with client.stream("GET", url, headers={"Accept": "text/plain"}) as response:
        response.raise_for_status()
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ValueError(f"exposition larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8")


async def scrape_increases(
    client: httpx.AsyncClient, t: ScrapedTarget, now_s: float, timeout_s: float
) -> tuple[list[tuple[Sample, float]], float] | None:
    """One scrape of `t`: (series increases since its previous scrape, interval start), or None
    when the scrape failed (recorded in its state: timeout, not Prometheus text, HTTP error).
    Counter resets and first scrapes follow poll/deltas.py."""
    state = t.state
    try:
        body = await asyncio.wait_for(fetch(client, t.target.url), timeout_s)
        samples = t.parser.parse(body)
    except (TimeoutError, httpx.TimeoutException):
        state.failed(now_s, TIMEOUT, f"timed out after {timeout_s}s")
        return None
    except ExpositionError as exc:
        state.failed(now_s, INVALID, f"not Prometheus text: {exc}")
        return None
    except (httpx.HTTPError, UnicodeDecodeError, ValueError) as exc:
        state.failed(now_s, ERROR, f"{type(exc).__name__}: {exc}")
        return None
    start_s = state.last_success_s or now_s
    increases = t.deltas.update(samples)
    state.untracked_series = t.deltas.untracked
    state.succeeded(now_s)
    return increases, start_s


class WaypointScrape(TargetScrape):
    """Waypoint pods' request metrics. Each target's increases become samples on their own: a
    waypoint's series describe whole calls, so nothing needs joining across targets (unlike
    ztunnel's half-edges)."""

    keep = staticmethod(is_waypoint_family)

    async def poll(self, client: httpx.AsyncClient, now_s: float) -> list[L7MetricSample]:
        out: list[L7MetricSample] = []
        for t, increases, start_s in await self._scrape_due(client, now_s):
            entries = group(((s.name, s.labels, d) for s, d in increases), start_s)
            out.extend(to_metric_samples(entries, now_s, self._identity, t.target.via))
        return out


def waypoint_target(entry: str) -> Target:
    """A `MESHSTITCH_WAYPOINT_TARGETS` entry: `<url>` or `<namespace>/<waypoint>=<url>`. Naming
    the waypoint a pod belongs to tells meshstitch that workload is a waypoint before any span
    of it is sampled (what discovery learns from the pod's Gateway label)."""
    url, via = parse_waypoint_target(entry)
    return Target(url, via=via)


def static_targets(urls: Iterable[str | Target]) -> TargetsProvider:
    fixed = [u if isinstance(u, Target) else Target(u) for u in urls]

    async def provide() -> list[Target]:
        return fixed

    return provide
