"""The write path's converters give exactly what the stored form was before: sketches byte for
byte equal to `LatencySketch.to_bytes`, JSON text equal to `json.dumps`."""

from __future__ import annotations

import json
import random

from app.edge.sketch import LatencySketch
from app.edge.sketch_codec import decode_sketch, encode_sketch, merge_encoded
from app.store.edges import _map_text, merge_map_text, merge_principals_text, merge_sketch_blob


def _random_sketch(rng: random.Random) -> LatencySketch:
    sketch = LatencySketch()
    for _ in range(rng.choice([1, 2, 5, 50, 500, 3000])):
        value = rng.choice(
            [0.0, rng.random() * 50, rng.lognormvariate(0, 3), 1e-9, 1e5 * rng.random()]
        )
        sketch.add(value, rng.choice([1, 1, 1, 200, 10**6]))
    return sketch


def test_encoded_sketches_equal_to_bytes_and_merge_exactly() -> None:
    rng = random.Random(3)
    for _ in range(400):
        a, b = _random_sketch(rng), _random_sketch(rng)
        assert encode_sketch(a.zero_count, a.bins) == a.to_bytes()
        zero, keys, counts = decode_sketch(a.to_bytes())
        assert (zero, dict(zip(keys, counts, strict=True))) == (a.zero_count, a.bins)
        merged = LatencySketch()
        merged.merge(a)
        merged.merge(b)
        assert merge_encoded(a.to_bytes(), b.to_bytes()) == merged.to_bytes()
        assert merge_sketch_blob(a.to_bytes(), b.to_bytes()) == merged.to_bytes()
        assert merge_sketch_blob(a.to_bytes(), None) == a.to_bytes()
        assert merge_sketch_blob(None, b.to_bytes()) == b.to_bytes()
    assert encode_sketch(0, {}) == LatencySketch().to_bytes()


def test_json_text_is_json_dumps_and_merges_add() -> None:
    for m in ({"200": 1}, {"a": 1.0}, {"a": True}, {"a": 1}, {"é": 2, "x": 0.25}, {}):
        assert _map_text(m) == json.dumps(m)
    assert merge_map_text('{"200": 3, "503": 1}', '{"503": 2, "404": 1}') == json.dumps(
        {"200": 3, "503": 3, "404": 1}
    )
    assert merge_map_text('{"a": 1}', "{}") == '{"a": 1}'
    assert merge_map_text('{"c": 0.5}', '{"c": 0.25}') == '{"c": 0.75}'
    assert merge_principals_text('["b"]', '["a", "b"]') == '["a", "b"]'
    assert merge_principals_text('["b"]', "[]") == '["b"]'
