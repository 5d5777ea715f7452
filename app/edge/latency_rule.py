"""Which latency an edge shows when it has both an exact histogram (waypoint request metrics,
unsampled) and a sketch of sampled spans, and how far off it can be.

The rule, per quantile q:

1. The histogram's counts are exact, so the bucket holding rank ⌈q·N⌉ of the N requests is
   known for certain: the true quantile lies in (lo, hi] of that bucket (Envoy's `le` is
   inclusive). That interval is the stated **error bound**; it is returned with the value.
2. When spans were sampled on the edge and their sketch's quantile lies in that interval (within
   the sketch's 1 % relative accuracy, then clamped into it), it is shown: it is at least as
   accurate as anything the histogram can say, and usually far more (1 % of the value).
3. Otherwise (no spans, or a small sample whose quantile fell outside the bucket the exact counts
   name) the histogram's linear interpolation inside the bucket is shown, as Prometheus'
   `histogram_quantile` does; the +Inf bucket answers its lower bound.

Either way the shown value lies within the bound, so the error is at most the bucket width.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

SKETCH_RELATIVE_ERROR = 0.01
SPANS, HISTOGRAM = "spans", "histogram"


def _upper(le: str) -> float:
    try:
        return float(le)
    except ValueError:
        return math.inf


def bucket_of(buckets: Mapping[str, int], q: float) -> tuple[float, float, float] | None:
    """(lo, hi, interpolated) for quantile q of per-bucket counts keyed by `le`; None if empty."""
    ordered = sorted(((_upper(le), n) for le, n in buckets.items() if n > 0), key=lambda x: x[0])
    total = sum(n for _, n in ordered)
    if not total:
        return None
    rank = max(1, math.ceil(q * total - 1e-9))
    below, lo = 0, 0.0
    for hi, n in ordered:
        if below + n >= rank:
            if math.isinf(hi):
                return lo, hi, lo
            return lo, hi, lo + (hi - lo) * (rank - below) / n
        below += n
        lo = hi
    return lo, math.inf, lo  # unreachable: the last bucket holds rank total


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
