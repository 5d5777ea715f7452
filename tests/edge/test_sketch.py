"""LatencySketch accuracy against exact lower-nearest-rank percentiles, merging and round trip."""

from __future__ import annotations

import math
import random

import pytest

from app.edge.sketch import LatencySketch, merge_all

QUANTILES = (0.5, 0.95, 0.99)


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def lognormal(rng: random.Random) -> list[float]:
    return [rng.lognormvariate(math.log(20), 1.0) for _ in range(20_000)]


def uniform(rng: random.Random) -> list[float]:
    return [rng.uniform(0.5, 2_000.0) for _ in range(20_000)]


def bimodal(rng: random.Random) -> list[float]:
    return [
        rng.gauss(5.0, 0.5) if rng.random() < 0.9 else rng.gauss(800.0, 50.0) for _ in range(20_000)
    ]


@pytest.mark.parametrize("draw", [lognormal, uniform, bimodal])
def test_quantiles_within_one_percent(draw) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    values = [max(v, 0.01) for v in draw(rng)]
    sketch = LatencySketch()
    sketch.add_all(values)
    for q in QUANTILES:
        got = sketch.quantile(q)
        assert got is not None
        assert abs(got - exact(values, q)) <= 0.01 * exact(values, q), q


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("draw", [lognormal, uniform, bimodal])
def test_merging_parts_in_any_order_matches_the_whole(draw, seed: int) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    values = [max(v, 0.01) for v in draw(rng)]
    whole = LatencySketch()
    whole.add_all(values)
    cuts = sorted(rng.sample(range(1, len(values)), 7))
    parts = [values[a:b] for a, b in zip([0, *cuts], [*cuts, len(values)], strict=True)]
    sketches = []
    for part in parts:
        s = LatencySketch()
        s.add_all(part)
        sketches.append(s)
    rng.shuffle(sketches)
    merged = merge_all([s.to_bytes() if i % 2 else s for i, s in enumerate(sketches)])
    assert merged == whole
    assert merged.count == len(values)
    for q in QUANTILES:
        got = merged.quantile(q)
        assert got is not None
        assert abs(got - exact(values, q)) <= 0.01 * exact(values, q)


def test_bytes_round_trip_with_zeros_and_wide_range() -> None:
    sketch = LatencySketch()
    sketch.add_all([0.0, 0.0, 1e-3, 0.5, 1.0, 7.5, 1e3, 1e6, 3.3e4])
    restored = LatencySketch.from_bytes(sketch.to_bytes())
    assert restored == sketch
    assert restored.count == sketch.count == 9
    assert restored.quantile(0.0) == 0.0
    assert LatencySketch().quantile(0.5) is None
