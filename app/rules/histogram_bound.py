"""A Prometheus histogram bucket's `le` label as a number, for the poller (per-bucket counts of
waypoint request metrics) and the latency rule (app/edge/latency_rule.py) alike."""

from __future__ import annotations

import math


def le_bound(le: str) -> float:
    """The bucket's upper bound; `+Inf`, or anything that is not a number, is infinity."""
    try:
        return float(le)
    except ValueError:
        return math.inf
