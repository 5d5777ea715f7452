"""An edge's stats as a graph edge shows them: `L7Stats` (with percentiles) and `L4Stats` (the
counters of one reporter: per reporter in a bucket, the chosen reporter's on a graph edge).
`l7_stats` and `sum_l7` are generated from the field declaration (app/edge/fields.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from app.codegen import compile_function
from app.domain import Reporter
from app.edge import latency_rule
from app.edge.fields import EDGE_FIELDS, L4_COUNTERS, SOLE, Merge

N = TypeVar("N", int, float)  # the values of a count map


@dataclass(frozen=True, slots=True)
class L7Stats:
    """The declared fields `shown` on a graph edge (a test checks), then the percentiles."""

    requests: int
    errors: int
    errors_by_cause: dict[str, int]
    status_codes: dict[str, int]
    latency_sum_ms: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    unpaired: int = 0
    late: int = 0
    evicted: int = 0
    # Where the counts come from: "metrics" (waypoint request metrics, exact) or "spans"
    # (each sampled span counts one request).
    counts_from: str = "spans"
    spans: int = 0  # sampled spans seen on the edge
    bytes_sent: int | None = None  # request bytes (metrics only)
    bytes_received: int | None = None  # response bytes (metrics only)
    latency_from: str = ""  # "spans" | "histogram" (app/edge/latency_rule.py)
    # Per quantile (p50, p95, p99): the (lo, hi] interval the true value lies in, from the
    # exact histogram; None without one.
    latency_bounds: tuple[tuple[float, float] | None, ...] | None = None
    # Spans ÷ requests when the edge has metrics; for span-only edges the configured or the
    # observed rate (set by the reader).
    sampling_share: float | None = None

    @property
    def exact(self) -> bool:
        return self.counts_from == "metrics"

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(slots=True)
class L4Stats:
    """The counters are `fields.L4_COUNTERS`, in that order (a test checks)."""

    connections_opened: int = 0
    connections_closed: int = 0
    bytes_sent: int = 0  # request bytes, client → server
    bytes_received: int = 0  # response bytes, server → client
    mtls_connections: int = 0  # connections opened with connection_security_policy=mutual_tls
    connections_failed: int = 0  # closed with a failure flag (DENY, CONNECT, …)
    principals: tuple[str, ...] = ()  # on a graph edge: every principal seen (sorted)
    failures: tuple[tuple[str, int], ...] = ()  # on a graph edge: (flag, connections), sorted

    def merge(self, other: L4Stats) -> None:
        """Add `other`'s counters (principals are the bucket's, merged there)."""
        _merge_counters(self, other)

    @property
    def bytes_total(self) -> int:
        """Bytes both ways."""
        return self.bytes_sent + self.bytes_received

    @property
    def empty(self) -> bool:
        return not (
            self.connections_opened
            or self.connections_closed
            or self.bytes_sent
            or self.bytes_received
            or self.connections_failed
        )

    @property
    def has_traffic(self) -> bool:
        return bool(
            self.connections_opened
            or self.bytes_sent
            or self.bytes_received
            or self.connections_failed
        )

    @property
    def failures_by_flag(self) -> dict[str, int]:
        return dict(self.failures)

    @property
    def mtls_share(self) -> float | None:
        return self.mtls_connections / self.connections_opened if self.connections_opened else None


_merge_counters = compile_function(
    "merge_counters", "self, other", [f"self.{c} += other.{c}" for c in L4_COUNTERS], {}
)


def chosen_reporter(per_reporter: Mapping[str, L4Stats]) -> str | None:
    """Destination when it saw traffic, else source (adding both would count every connection
    twice); None when neither did."""
    for reporter in (Reporter.DESTINATION, Reporter.SOURCE):
        counters = per_reporter.get(reporter)
        if counters is not None and not counters.empty:
            return reporter
    return None


def chosen_sides(per_reporter: Mapping[str, L4Stats]) -> tuple[str, ...]:
    """The sides `choose_l4` reads: the chosen reporter's and `sole`."""
    reporter = chosen_reporter(per_reporter)
    return (SOLE,) if reporter is None else (str(reporter), SOLE)


def choose_l4(
    per_reporter: Mapping[str, L4Stats], failures: Mapping[str, int] | None = None
) -> L4Stats | None:
    """An edge's L4 as one view: the chosen reporter's counters plus the traffic only one ztunnel
    reports (side `sole`: a waypoint's client legs, server legs from an unknown caller), which
    no other reporter double counts. `failures` ("<side>/<flag>" -> connections) are those of
    the same sides. A new object: the bucket's counters are not changed."""
    reporter = chosen_reporter(per_reporter)
    sole = per_reporter.get(SOLE)
    if sole is not None and sole.empty:
        sole = None
    if reporter is None and sole is None:
        return None
    out = L4Stats()
    sides = []
    if reporter is not None:
        out.merge(per_reporter[reporter])
        sides.append(str(reporter))
    if sole is not None:
        out.merge(sole)
        sides.append(SOLE)
    if failures:
        by_flag: dict[str, int] = {}
        for key, n in failures.items():
            side, _, flag = key.partition("/")
            if side in sides:
                by_flag[flag] = by_flag.get(flag, 0) + n
        out.failures = tuple(sorted(by_flag.items()))
    return out


def add_counts(into: dict[str, N], new: Mapping[str, N] | None) -> None:
    """Per-key sums of two count maps, into the first (its key order first)."""
    if new:
        for k, v in new.items():
            into[k] = into.get(k, 0) + v


def added(a: Mapping[str, N], b: Mapping[str, N]) -> dict[str, N]:
    """A new count map: per-key sums of `a` and `b` (`a`'s key order first)."""
    out = dict(a)
    add_counts(out, b)
    return out


_SHOWN = [f for f in EDGE_FIELDS if f.shown]
_PERCENTILES = "p50_ms=p50, p95_ms=p95, p99_ms=p99"
_ENV = {"L7Stats": L7Stats, "_added": added}


def _sum_expression(shown: str, merge: Merge) -> str:
    a, b = f"a.{shown}", f"b.{shown}"
    return f"_added({a}, {b})" if merge is Merge.ADD_MAP else f"{a} + {b}"


_l7_stats = compile_function(
    "l7_stats",
    "bucket, p50, p95, p99",
    [
        "return L7Stats("
        + ", ".join(f"{f.shown}=bucket.{f.attr}" for f in _SHOWN)
        + f", {_PERCENTILES})"
    ],
    _ENV,
)
_sum_l7 = compile_function(
    "sum_l7",
    "a, b, p50, p95, p99",
    [
        "return L7Stats("
        + ", ".join(f"{f.shown}={_sum_expression(f.shown, f.merge)}" for f in _SHOWN)
        + f", {_PERCENTILES})"
    ],
    _ENV,
)


_QS = (0.5, 0.95, 0.99)


def l7_stats(bucket: Any) -> L7Stats | None:
    """An edge bucket's L7 as a graph edge shows it; None when it holds no L7 evidence (no
    requests and no counted losses).

    With waypoint request metrics in the bucket, requests, errors, status codes and bytes are
    theirs (exact) and latency follows app/edge/latency_rule.py; the spans give the sampling
    share. Without, every count is a span count (`counts_from="spans"`)."""
    if not bucket.has_l7:
        return None
    sketched = bucket.l7_latency.quantiles(_QS) if bucket.l7_requests else (None, None, None)
    spans = bucket.l7_requests
    if not bucket.l7m_requests:
        p50, p95, p99 = sketched
        result: L7Stats = _l7_stats(bucket, p50, p95, p99)
        return replace(result, spans=spans, latency_from="spans" if spans else "")
    chosen = [
        latency_rule.choose(bucket.l7m_latency_buckets, q, v)
        for q, v in zip(_QS, sketched, strict=True)
    ]
    requests = bucket.l7m_requests
    base: L7Stats = _l7_stats(bucket, *(c[0] for c in chosen))
    froms = {c[1] for c in chosen if c[1]}
    return replace(
        base,
        requests=requests,
        errors=bucket.l7m_errors,
        errors_by_cause=dict(bucket.l7m_errors_by_cause),
        status_codes=dict(bucket.l7m_status_codes),
        latency_sum_ms=bucket.l7m_latency_sum_ms,
        counts_from="metrics",
        spans=spans,
        bytes_sent=bucket.l7m_bytes_sent,
        bytes_received=bucket.l7m_bytes_received,
        latency_from=latency_rule.HISTOGRAM if latency_rule.HISTOGRAM in froms else "spans",
        latency_bounds=tuple(c[2] for c in chosen),
        sampling_share=spans / requests,
    )


def sum_l7(
    a: L7Stats | None,
    b: L7Stats | None,
    percentiles: tuple[float | None, float | None, float | None],
) -> L7Stats | None:
    """Exact sums of two edges' L7 counters with the given (merged) percentiles."""
    if a is None or b is None:
        return a or b
    result: L7Stats = _sum_l7(a, b, *percentiles)
    return replace(
        result,
        counts_from="metrics" if a.exact and b.exact else "spans",
        spans=a.spans + b.spans,
        latency_from=a.latency_from or b.latency_from,
    )
