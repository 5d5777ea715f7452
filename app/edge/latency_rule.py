"""Which latency an edge shows when it has both an exact histogram (waypoint request metrics,
unsampled) and a sketch of sampled spans, and how far off it can be.

What a waypoint's `le` buckets hold (istio/proxy `istio_stats.cc` records whole milliseconds,
truncated; Envoy's `HistogramStatisticsImpl` prints `hist_approx_count_below(h, le)`, the values
whose libcircllhist bin — two significant digits: width 0.1 below 10, 1 below 100, 10 below
1000, … — lies entirely at or below `le`; the simulator's app/sim/envoy_histogram.py models the
same sources): a request of true duration t is counted in `le` iff its whole-ms value's bin ends
at or below `le`. So the requests between two printed bounds (lo, hi] have true durations in
[first_uncounted(lo), first_uncounted(hi)) ms — for Istio's default bounds simply [lo, hi), except
that the `le="0.5"` bucket holds every request under 1 ms: [0, 1).

The rule, per quantile q (the same rank as the sketch's and the README's: the lower nearest rank,
the ⌊q·(N-1)⌋-th of the N requests in order, 0-based):

1. The histogram's counts are exact, so the bucket holding that rank is known for certain and the
   true quantile lies in its true-duration range [lo, hi). That range is the stated **error
   bound**; it is returned with the value.
2. When spans were sampled on the edge and their sketch's quantile lies in that range (within the
   sketch's 1 % relative accuracy, then clamped into it), it is shown: it is at least as accurate
   as anything the histogram can say, and usually far more (1 % of the value).
3. Otherwise (no spans, or a small sample whose quantile fell outside the bucket the exact counts
   name) the histogram's linear interpolation inside the range is shown, as Prometheus'
   `histogram_quantile` does; the +Inf bucket answers its lower bound.

Either way the shown value lies within the bound, so the error is at most the bucket's width.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from app.rules.histogram_bound import le_bound

SKETCH_RELATIVE_ERROR = 0.01
SPANS, HISTOGRAM = "spans", "histogram"


def _bin(value: int) -> tuple[int, float]:
    """(lower edge, width) of the libcircllhist bin of a whole-ms value ≥ 1."""
    digits = len(str(value))
    if digits == 1:
        return value, 0.1
    width = 10 ** (digits - 2)
    return value // width * width, width


def first_uncounted(le: float) -> float:
    """The smallest whole-ms value Envoy does not count in bucket `le` (module docstring)."""
    if math.isinf(le):
        return math.inf
    if le <= 0:
        return 0.0 if le < 0 else 1.0  # 0 ms has its own bin, counted in every bucket ≥ 0
    value = max(1, math.ceil(le))  # its bin ends above its value, so above le
    while value > 1:
        lower, width = _bin(value - 1)
        if lower + width <= le:
            break
        value = lower  # that whole bin straddles le: none of it is counted
    return float(value)


def bucket_of(buckets: Mapping[str, int], q: float) -> tuple[float, float, float] | None:
    """(lo, hi, interpolated) for quantile q of per-bucket counts keyed by `le`, in true ms
    ([lo, hi) holds the quantile); None if empty."""
    ordered = sorted(((le_bound(le), n) for le, n in buckets.items() if n > 0), key=lambda x: x[0])
    total = sum(n for _, n in ordered)
    if not total:
        return None
    rank = math.floor(min(max(q, 0.0), 1.0) * (total - 1)) + 1  # 1-based lower nearest rank
    below, printed_lo = 0, 0.0
    for printed_hi, n in ordered:
        if below + n >= rank:
            lo = 0.0 if printed_lo <= 0 else first_uncounted(printed_lo)
            hi = first_uncounted(printed_hi)
            if math.isinf(hi):
                return lo, hi, lo
            return lo, hi, lo + (hi - lo) * (rank - below) / n
        below += n
        printed_lo = printed_hi
    return 0.0, math.inf, 0.0  # unreachable: the last bucket holds rank total


def choose(
    buckets: Mapping[str, int], q: float, sketch_value: float | None
) -> tuple[float | None, str, tuple[float, float] | None]:
    """(value, where it came from, (lo, hi) bound) for quantile q; see the module docstring."""
    found = bucket_of(buckets, q)
    if found is None:
        return sketch_value, SPANS if sketch_value is not None else "", None
    lo, hi, interpolated = found
    if sketch_value is not None:
        slack = SKETCH_RELATIVE_ERROR * sketch_value
        if lo - slack <= sketch_value <= hi + slack:
            return min(max(sketch_value, lo), hi), SPANS, (lo, hi)
    return interpolated, HISTOGRAM, (lo, hi)
