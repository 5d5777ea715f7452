"""ztunnel L4 evidence from a Prometheus that already scrapes ztunnel (PromQL instant queries).

For every closed bucket [end - bucket_s, end) and every traffic family we ask
`sum by (<edge labels>) (increase(<family>{reporter=~"source|destination"}[<bucket_s>s]))`
at `time=end`. Imprecision versus direct scrape, by design of `increase()`: it extrapolates the
first/last samples inside the window to the window's edges, so results are floats (rounded here
to ints) that can be off by part of a scrape interval's traffic per bucket; a series' first
sample is not counted (Prometheus cannot tell it from a baseline); a counter reset inside the
window is handled by Prometheus. Buckets are evaluated `settle_s` after they close, so the last
scrape of the bucket has been ingested.

The ztunnels (for /cost's "ztunnels per node") are counted at each bucket's end as the distinct
`instance` labels of `istio_build{component="ztunnel"}`: every ztunnel registers that gauge at
start, traffic or not (istio/ztunnel `src/metrics/meta.rs`, `IstioBuildLabel`, prefixed `istio_`),
and Prometheus gives each scraped target its own `instance`, so a ztunnel scraped by two jobs
counts once. The `sum by` of the traffic families drops `instance`, so they cannot count them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import httpx

from app.domain import IdentityEvidence, L4Sample, L7MetricSample, ZtunnelCount
from app.poll import waypoint_labels
from app.poll.half_edges import to_samples
from app.poll.target_state import ERROR, INVALID, TIMEOUT, TargetState
from app.poll.zone_split import WorkloadZones
from app.poll.ztunnel_labels import (
    EDGE_LABELS,
    FAMILIES,
    Counts,
    edge_key,
)


class PromQLError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


def _quoted(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_query(
    family: str,
    window_s: int,
    *,
    job: str = "",
    dedupe: tuple[str, ...] = ("job",),
    reporter: str = '=~"source|destination"',
    by: tuple[str, ...] = EDGE_LABELS,
) -> str:
    """`sum by (<by>) (max without (<dedupe>) (increase(<family>{reporter…, job=~…}[Ns])))`."""
    selector = f"reporter{reporter}"
    if job:
        selector += f", job=~{_quoted(job)}"
    inner = f"increase({family}{{{selector}}}[{window_s}s])"
    if dedupe:
        inner = f"max without ({', '.join(dedupe)}) ({inner})"
    return f"sum by ({', '.join(by)}) ({inner})"


def ztunnel_count_query(job: str = "") -> str:
    """The number of distinct ztunnel targets (module docstring)."""
    selector = 'component="ztunnel"' + (f", job=~{_quoted(job)}" if job else "")
    return f"count(count by (instance) (istio_build{{{selector}}}))"


_WAYPOINT_QUERIES = tuple(
    (
        family,
        (*waypoint_labels.EDGE_LABELS, "le")
        if family == waypoint_labels.DURATION_BUCKET
        else waypoint_labels.EDGE_LABELS,
    )
    for family in waypoint_labels.FAMILIES
)


def parse_vector(body: Any) -> list[tuple[dict[str, str], float]]:
    """The `data.result` of an instant query as (labels, value); NaN/Inf values are dropped."""
    if not isinstance(body, Mapping):
        raise PromQLError("bad_response", "response is not a JSON object")
    if body.get("status") != "success":
        raise PromQLError(str(body.get("errorType", "unknown")), str(body.get("error", "")))
    data = body.get("data")
    if not isinstance(data, Mapping) or data.get("resultType") != "vector":
        kind = data.get("resultType") if isinstance(data, Mapping) else None
        raise PromQLError("bad_response", f"expected resultType vector, got {kind!r}")
    out = []
    for item in data.get("result") or []:
        try:
            labels = {str(k): str(v) for k, v in item["metric"].items()}
            value = float(item["value"][1])
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise PromQLError("bad_response", f"malformed sample {item!r}") from exc
        if math.isfinite(value):
            out.append((labels, value))
    return out


class PromQLSource:
    # A workload's zone where the series carry no locality labels (ztunnel < 1.26): the pod
    # directory's node topology, as in direct scrape (app/poll/scrape.py `DirectScrape.zones`).
    zones: WorkloadZones | None = None

    def __init__(
        self,
        base_url: str,
        *,
        bucket_s: int,
        interval_s: float,
        timeout_s: float,
        identity: IdentityEvidence,
        token: str = "",
        username: str = "",
        password: str = "",
        settle_s: float | None = None,
        max_backlog_buckets: int = 60,
        job: str = "",
        dedupe_labels: tuple[str, ...] = ("job",),
    ) -> None:
        self._job, self._dedupe = job, dedupe_labels
        self._url = base_url.rstrip("/") + "/api/v1/query"
        self._bucket_s, self._timeout_s = bucket_s, timeout_s
        # In milliseconds: Prometheus' `timeout` is a duration (web/api/v1 `parseDuration`: float
        # seconds or model.ParseDuration), which refuses "5.0s", what a float setting prints.
        self._query_timeout = f"{max(1, round(timeout_s * 1000))}ms"
        self._identity = identity
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._auth = httpx.BasicAuth(username, password) if username else None
        self._settle_s = min(interval_s, 30.0) if settle_s is None else settle_s
        self._backlog = max_backlog_buckets
        self.state = TargetState(base_url, interval_s)
        self.next_end_s: int | None = None  # next bucket end to evaluate
        self.last_series = 0
        self.ztunnels = ZtunnelCount(None, "not counted yet: no PromQL bucket evaluated")

    def series(self) -> int:
        return self.last_series

    def states(self) -> list[TargetState]:
        return [self.state]

    def _closed_ends(self, now_s: float) -> list[int]:
        last = int((now_s - self._settle_s) // self._bucket_s) * self._bucket_s
        if self.next_end_s is None:
            self.next_end_s = last  # start with the bucket that just closed; no history backfill
        first = max(self.next_end_s, last - (self._backlog - 1) * self._bucket_s)
        return list(range(first, last + 1, self._bucket_s))

    async def query(
        self, client: httpx.AsyncClient, promql: str, at_s: float
    ) -> list[tuple[dict[str, str], float]]:
        response = await client.get(
            self._url,
            params={"query": promql, "time": f"{at_s:.3f}", "timeout": self._query_timeout},
            headers=self._headers,
            auth=self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT,
            timeout=self._timeout_s,
        )
        # Prometheus answers 400/422/503 with a JSON error body; keep its errorType/error.
        try:
            body = response.json()
        except ValueError:
            response.raise_for_status()
            raise PromQLError("bad_response", f"HTTP {response.status_code}, not JSON") from None
        if response.status_code >= 400 and not isinstance(body, Mapping):
            response.raise_for_status()
        return parse_vector(body)

    async def bucket(
        self, client: httpx.AsyncClient, end_s: int
    ) -> list[L4Sample | L7MetricSample]:
        acc: dict[tuple[str, ...], tuple[dict[str, str], list[float]]] = {}
        for i, family in enumerate(FAMILIES):
            for labels, value in await self.query(
                client,
                build_query(family, self._bucket_s, job=self._job, dedupe=self._dedupe),
                end_s,
            ):
                key = edge_key(labels)
                entry = acc.get(key)
                if entry is None:
                    entry = acc[key] = (labels, [0.0, 0.0, 0.0, 0.0])
                entry[1][i] += value
        self.last_series = len(acc)
        start_s = float(end_s - self._bucket_s)
        grouped = [
            (labels, Counts(*(max(0, round(v)) for v in values)), start_s)
            for labels, values in acc.values()
        ]
        out: list[L4Sample | L7MetricSample] = []
        out.extend(to_samples(grouped, float(end_s), self._identity, self.zones))
        increases: list[tuple[str, dict[str, str], float]] = []
        for family, by in _WAYPOINT_QUERIES:
            query = build_query(
                family,
                self._bucket_s,
                job=self._job,
                dedupe=self._dedupe,
                reporter=f"={_quoted(waypoint_labels.WAYPOINT_REPORTER)}",
                by=by,
            )
            for labels, value in await self.query(client, query, end_s):
                labels.setdefault("reporter", waypoint_labels.WAYPOINT_REPORTER)
                increases.append((family, labels, value))
        entries = waypoint_labels.group(increases, start_s)
        self.last_series += len(entries)
        out.extend(waypoint_labels.to_metric_samples(entries, float(end_s), self._identity))
        self.ztunnels = await self.ztunnel_count(client, end_s)
        return out

    async def ztunnel_count(self, client: httpx.AsyncClient, at_s: float) -> ZtunnelCount:
        """The ztunnels Prometheus scrapes at `at_s`; a failed or empty answer says why."""
        promql = ztunnel_count_query(self._job)
        try:
            result = await self.query(client, promql, at_s)
        except PromQLError as exc:  # the traffic was read: the count alone is lost
            return ZtunnelCount(None, f"`{promql}` failed: {exc}")
        if not result:
            return ZtunnelCount(
                None,
                f"`{promql}` is empty: Prometheus keeps no ztunnel istio_build series "
                "(dropped by relabelling, or another job name), so ztunnels are not counted",
            )
        return ZtunnelCount(round(result[0][1]), f"PromQL at the latest bucket end: `{promql}`")

    async def poll(
        self, client: httpx.AsyncClient, now_s: float
    ) -> list[L4Sample | L7MetricSample]:
        if not self.state.due(now_s):
            return []
        out: list[L4Sample | L7MetricSample] = []
        for end_s in self._closed_ends(now_s):
            try:
                out.extend(await self.bucket(client, end_s))
            except httpx.TimeoutException:
                self.state.failed(now_s, TIMEOUT, f"timed out after {self._timeout_s}s")
                return out
            except PromQLError as exc:
                self.state.failed(
                    now_s, INVALID if exc.error_type == "bad_response" else ERROR, str(exc)
                )
                return out
            except httpx.HTTPError as exc:
                self.state.failed(now_s, ERROR, f"{type(exc).__name__}: {exc}")
                return out
            self.next_end_s = end_s + self._bucket_s
        self.state.succeeded(now_s)
        return out
