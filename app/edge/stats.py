"""An edge's stats as a graph edge shows them: `L7Stats` (with percentiles) and `L4Stats` (the
counters of one reporter: per reporter in a bucket, the chosen reporter's on a graph edge).
`l7_stats` and `sum_l7` are generated from the field declaration (app/edge/fields.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from app.codegen import compile_function
from app.domain import Reporter
from app.edge.fields import EDGE_FIELDS, L4_COUNTERS, Merge

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
    principals: tuple[str, ...] = ()  # on a graph edge: every principal seen (sorted)

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
        )

    @property
    def has_traffic(self) -> bool:
        return bool(self.connections_opened or self.bytes_sent or self.bytes_received)

    @property
    def mtls_share(self) -> float | None:
        return self.mtls_connections / self.connections_opened if self.connections_opened else None


_merge_counters = compile_function(
    "merge_counters", "self, other", [f"self.{c} += other.{c}" for c in L4_COUNTERS], {}
)


def choose_l4(per_reporter: Mapping[str, L4Stats]) -> L4Stats | None:
    """One reporter's view of an edge: destination when it saw traffic, else source (adding both
    would count every connection twice)."""
    for reporter in (Reporter.DESTINATION, Reporter.SOURCE):
        counters = per_reporter.get(reporter)
        if counters is not None and not counters.empty:
            return counters
    return None


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


def l7_stats(bucket: Any) -> L7Stats | None:
    """An edge bucket's L7 as a graph edge shows it, with its sketch's percentiles; None when
    it holds no L7 evidence (no requests and no counted losses)."""
    if not bucket.has_l7:
        return None
    p50, p95, p99 = bucket.l7_latency.quantiles((0.5, 0.95, 0.99))
    result: L7Stats = _l7_stats(bucket, p50, p95, p99)
    return result


def sum_l7(
    a: L7Stats | None,
    b: L7Stats | None,
    percentiles: tuple[float | None, float | None, float | None],
) -> L7Stats | None:
    """Exact sums of two edges' L7 counters with the given (merged) percentiles."""
    if a is None or b is None:
        return a or b
    result: L7Stats = _sum_l7(a, b, *percentiles)
    return result
