"""The latency rule: the exact histogram names the bucket the true quantile lies in; the spans'
sketch is shown when it agrees with that bucket, else the histogram's interpolation.

Histograms are filled as a waypoint fills them (whole ms, Envoy's `count_below` buckets), by the
simulator's model of the Istio/Envoy sources (app/sim/envoy_histogram.py), not by the rule's own
reading of them."""

from __future__ import annotations

import math
import random

from app.edge.latency_rule import HISTOGRAM, SPANS, bucket_of, choose, first_uncounted
from app.edge.sketch import LatencySketch
from app.sim.envoy_histogram import DEFAULT_BUCKETS, EnvoyHistogram, format_value


def _histogram(values: list[float]) -> dict[str, int]:
    """Per-bucket counts as meshstitch derives them from a waypoint's cumulative `le` lines."""
    hist = EnvoyHistogram()
    for v in values:
        hist.record(int(v))  # Istio truncates to whole milliseconds
    out: dict[str, int] = {}
    below = 0
    for le, cumulative in zip(DEFAULT_BUCKETS, hist.cumulative(), strict=True):
        if cumulative > below:
            out[format_value(le)] = cumulative - below
        below = cumulative
    if hist.count > below:
        out["+Inf"] = hist.count - below
    return out


def _nearest_rank(values: list[float], q: float) -> float:
    """The lower nearest rank, as LatencySketch and the simulator's truth define a quantile."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


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
            assert lo <= _nearest_rank(values, q) < hi
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
    assert source == SPANS and bound == (500.0, 1000.0)  # 990 ms is counted in le="1000"
    assert value is not None and abs(value - 990) <= 0.01 * 990


def test_without_spans_the_histogram_interpolates_and_the_inf_bucket_answers_its_floor() -> None:
    # rank: the lower nearest rank of 10 requests at q=0.5 is the 5th
    assert bucket_of({"5": 5, "10": 5}, 0.5) == (0.0, 5.0, 5.0)
    assert bucket_of({"5": 5, "10": 5}, 0.7) == (5.0, 10.0, 7.0)  # the 7th of 10
    assert choose({"5": 1, "+Inf": 99}, 0.99, None) == (5.0, HISTOGRAM, (5.0, math.inf))
    # a sampled quantile outside the bucket the exact counts name is not shown
    assert choose({"5": 90, "10": 10}, 0.5, 8.0) == (2.7777777777777777, HISTOGRAM, (0.0, 5.0))
    assert bucket_of({}, 0.5) is None
    assert choose({}, 0.5, 3.0) == (3.0, SPANS, None)


def test_sub_millisecond_requests_are_in_the_half_ms_bucket_but_bounded_by_one_ms() -> None:
    """Istio records 0.8 ms as 0 ms, counted in le="0.5": the bound must reach 1 ms."""
    values = [0.8] * 100
    value, source, bound = choose(_histogram(values), 0.99, 0.8)
    assert bound == (0.0, 1.0) and source == SPANS and value == 0.8


def test_first_uncounted_follows_the_circllhist_bins() -> None:
    # Istio's default bounds are multiples of the bin width there: le counts whole ms below it
    assert [first_uncounted(b) for b in (0.5, 1, 5, 25, 250, 2500)] == [1, 1, 5, 25, 250, 2500]
    # a custom bound inside a bin: that whole bin is left to the next bucket
    assert first_uncounted(125) == 120  # 120-129 ms share one bin, which ends above 125
    assert first_uncounted(2.5) == 3
    hist = EnvoyHistogram()
    for v in range(0, 300):
        hist.record(v)
    for le, cumulative in zip(DEFAULT_BUCKETS, hist.cumulative(), strict=True):
        assert cumulative == min(300, int(first_uncounted(le))), le
