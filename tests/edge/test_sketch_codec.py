"""The store's sketch codec (app/edge/sketch_codec.py) against the plain reference codec
(`LatencySketch.to_bytes`): decoding, quantiles read from stored bytes, malformed input."""

from __future__ import annotations

import random

import pytest

from app.edge.sketch import LatencySketch, SketchDecodeError
from app.edge.sketch_codec import decode_sketch, sketch_quantiles


def _sketch(values: list[float]) -> LatencySketch:
    sketch = LatencySketch()
    sketch.add_all(values)
    return sketch


def test_sketch_decoding_and_quantiles_match_the_sketch() -> None:
    rng = random.Random(3)
    cases = [
        [],
        [0.0],
        [1.0, 2.0, 300.0],
        [5.0] * 300 + [0.0, 1e6],  # a count over 127: multi-byte varints
        [rng.lognormvariate(0, 3) for _ in range(5000)],  # wide key deltas
        [1e-3, 1e9],
    ]
    for values in cases:
        sketch = _sketch(values)
        data = sketch.to_bytes()
        zero, keys, counts = decode_sketch(data)
        assert (zero, dict(zip(keys, counts, strict=True))) == (sketch.zero_count, sketch.bins)
        qs = (0.0, 0.5, 0.95, 0.99, 1.0)
        assert sketch_quantiles([data], qs) == tuple(sketch.quantile(q) for q in qs)
        other = _sketch([rng.lognormvariate(1, 1) for _ in range(50)])
        both = _sketch(values)
        both.merge(other)
        assert sketch_quantiles([data, other.to_bytes()], qs) == tuple(both.quantile(q) for q in qs)
    for _ in range(300):  # one sketch: the path that reads quantiles without decoding keys
        spread = rng.choice([0.01, 0.1, 1.0, 3.0])
        values = [rng.lognormvariate(0, spread) for _ in range(rng.randint(1, 400))]
        sketch = _sketch(values + [0.0] * rng.choice([0, 0, 1, 5]))
        qs = (0.0, 0.3, 0.5, 0.95, 0.99, 1.0)
        assert sketch_quantiles([sketch.to_bytes()], qs) == tuple(sketch.quantile(q) for q in qs)
    for bad in (b"", b"\x02", b"\x01\x00\x02\x04", b"\x01\x00\x01\x04\x81"):
        with pytest.raises(SketchDecodeError):
            decode_sketch(bad)
