"""The latency rule: the exact histogram names the bucket the true quantile lies in; the spans'
sketch is shown when it agrees with that bucket, else the histogram's interpolation."""

from __future__ import annotations

import math
import random

from app.edge.latency_rule import HISTOGRAM, SPANS, bucket_of, choose
from app.edge.sketch import LatencySketch

ISTIO_BOUNDS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


def _histogram(values: list[float]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        le = next((f"{b:.32g}" for b in ISTIO_BOUNDS if v <= b), "+Inf")
        out[le] = out.get(le, 0) + 1
    return out


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_the_true_quantile_lies_in_the_stated_bound_and_so_does_the_shown_value() -> None:
    rng = random.Random(9)
    for _ in range(300):
        values = [rng.lognormvariate(3, 1.2) for _ in range(rng.randint(1, 3000))]
        hist = _histogram(values)
        share = rng.choice([1.0, 0.1, 0.01])
        sampled = [v for v in values if rng.random() < share]
        sketch = LatencySketch()
        sketch.add_all(sampled)
        for q in (0.5, 0.95, 0.99):
            (estimate,) = sketch.quantiles((q,)) if sampled else (None,)
            value, source, bound = choose(hist, q, estimate)
            assert bound is not None and value is not None
            lo, hi = bound
            assert lo < _nearest_rank(values, q) <= hi
            assert lo <= value <= hi
            assert source in (SPANS, HISTOGRAM)
            if source == SPANS:
                assert estimate is not None and abs(value - estimate) <= 0.01 * estimate + 1e-9


def test_all_spans_kept_shows_the_sketch_within_one_percent() -> None:
    values = [float(v) for v in range(1, 1001)]
    sketch = LatencySketch()
    sketch.add_all(values)
    (estimate,) = sketch.quantiles((0.99,))
    value, source, bound = choose(_histogram(values), 0.99, estimate)
    assert source == SPANS and bound == (500.0, 1000.0)
    assert value is not None and abs(value - 990) <= 0.01 * 990


def test_without_spans_the_histogram_interpolates_and_the_inf_bucket_answers_its_floor() -> None:
    assert bucket_of({"5": 5, "10": 5}, 0.5) == (0.0, 5.0, 5.0)
    assert bucket_of({"5": 5, "10": 5}, 0.7) == (5.0, 10.0, 7.0)
    assert choose({"5": 1, "+Inf": 99}, 0.99, None) == (5.0, HISTOGRAM, (5.0, math.inf))
    # a sampled quantile outside the bucket the exact counts name is not shown
    assert choose({"5": 90, "10": 10}, 0.5, 8.0) == (2.7777777777777777, HISTOGRAM, (0.0, 5.0))
    assert bucket_of({}, 0.5) is None
    assert choose({}, 0.5, 3.0) == (3.0, SPANS, None)
