"""The compiled sketch reader and merge (app/edge/_sketch.c) against their Python references
(`sketch_quantiles_reference`, `merge_encoded_reference`): equal quantiles, bit for bit, and equal
merged bytes on generated sketches and merges of them, and None (the reference then answers or
raises) on everything else."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from app.edge._sketch import merge as compiled_merge
from app.edge._sketch import quantiles as compiled
from app.edge.sketch import LatencySketch, SketchDecodeError
from app.edge.sketch_codec import (
    GAMMA,
    merge_encoded,
    merge_encoded_reference,
    sketch_quantiles,
    sketch_quantiles_reference,
)

QS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0, -1.0, 2.0)


def _stored(values: list[float], zeros: int = 0) -> bytes:
    sketch = LatencySketch()
    sketch.add_all(values)
    for _ in range(zeros):
        sketch.add(0.0)
    return sketch.to_bytes()


def _reference(parts: list[bytes], qs: tuple[float, ...]) -> object:
    try:
        return sketch_quantiles_reference(parts, qs)
    except (SketchDecodeError, OverflowError):  # a bin value past a double: float ** int raises
        return SketchDecodeError


def _same(parts: list[bytes], qs: tuple[float, ...] = QS) -> None:
    """Where the compiled reader answers, it answers as the reference; where the reference
    raises, the compiled reader declines (and `sketch_quantiles` raises as before)."""
    expected = _reference(parts, qs)
    got = compiled(parts, qs, GAMMA)
    if expected is SketchDecodeError:
        assert got is None
    elif got is not None:
        assert got == expected
        assert [type(v) for v in got] == [type(v) for v in expected]  # type: ignore[attr-defined]


def test_generated_sketches_and_their_merges_read_as_the_reference() -> None:
    rng = random.Random(11)
    shapes = [
        lambda: [rng.lognormvariate(0, 1) for _ in range(rng.randint(1, 300))],
        lambda: [rng.lognormvariate(3, 3) for _ in range(rng.randint(1, 2000))],  # wide deltas
        lambda: [rng.uniform(1e-5, 1e-2) for _ in range(rng.randint(1, 50))],  # negative keys
        lambda: [5.0] * rng.randint(128, 3000),  # counts over one varint byte
        lambda: [],
    ]
    answered = 0
    for _ in range(400):
        parts = [
            _stored(rng.choice(shapes)(), rng.choice([0, 0, 1, 200]))
            for _ in range(rng.choice([1, 1, 2, 3, 12]))
        ]
        got = compiled(parts, QS, GAMMA)
        assert got is not None, "the compiled reader reads everything to_bytes writes"
        assert got == sketch_quantiles_reference(parts, QS)
        answered += 1
    assert answered == 400


def test_disjoint_and_interleaved_key_ranges_merge_alike() -> None:
    low = _stored([0.5, 0.7, 1.0])
    high = _stored([100.0, 200.0, 5000.0])
    mid = _stored([0.6, 150.0, 3.0] * 40)
    for parts in ([low, high], [high, low], [low, mid, high], [mid, mid], [high, high, low]):
        assert compiled(parts, QS, GAMMA) == sketch_quantiles_reference(parts, QS)


def test_empty_and_zero_only_sketches() -> None:
    assert compiled([], QS, GAMMA) == tuple(None for _ in QS) == sketch_quantiles_reference([], QS)
    only_zero = _stored([], zeros=7)
    assert compiled([only_zero], QS, GAMMA) == (0.0,) * len(QS)
    assert compiled([only_zero, _stored([9.0])], QS, GAMMA) == sketch_quantiles_reference(
        [only_zero, _stored([9.0])], QS
    )


def test_what_to_bytes_never_writes_is_left_to_the_reference() -> None:
    good = _stored([1.0, 2.0, 3.0])
    cases = [
        b"",  # no version
        b"\x02" + good[1:],  # another version
        good[:-1],  # truncated
        good + b"\x00",  # trailing byte
        b"\x01\x00\x02\x04\x01\x00\x01",  # a zero key delta: keys not strictly ascending
        b"\x01\x00\x02\x04\x01\x03\x01",  # a negative delta
        b"\x01" + b"\xff" * 10 + b"\x01",  # a varint over 63 bits
        b"\x01\x00\x01" + b"\x80" * 9 + b"\x01\x01",  # a key varint over 63 bits
    ]
    for bad in cases:
        assert compiled([bad], QS, GAMMA) is None, bad
        assert compiled([good, bad], QS, GAMMA) is None, bad
        _same([bad])
    assert compiled(["not bytes"], QS, GAMMA) is None  # type: ignore[list-item]
    assert compiled([good], (math.nan,), GAMMA) is None  # the reference raises on NaN
    far = b"\x01\x00\x01\xfe\xff\xff\xff\x0f\x01"  # a key whose bin value overflows
    assert compiled([far], QS, GAMMA) is None
    _same([far])


def test_sketch_quantiles_still_raises_on_malformed_parts() -> None:
    try:
        sketch_quantiles([b"\x01\x00\x02\x04"], (0.5,))
    except SketchDecodeError:
        pass
    else:  # pragma: no cover - the assertion is the point
        raise AssertionError("a truncated sketch must raise")


def test_totals_past_exact_floats_are_left_to_the_reference() -> None:
    exact = bytes([1, 0, 1, 2]) + bytes([0x80] * 7 + [0x10])  # one bin, count 2^53
    assert compiled([exact], QS, GAMMA) == sketch_quantiles_reference([exact], QS)
    huge = bytes([1, 0, 1, 2]) + bytes([0x81] + [0x80] * 6 + [0x10])  # count 2^53 + 1
    assert compiled([huge], QS, GAMMA) is None
    assert sketch_quantiles([huge], (0.5,)) == sketch_quantiles_reference([huge], (0.5,))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.lists(st.floats(0, 1e7, allow_nan=False), max_size=40), min_size=1, max_size=5),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=3),
)
def test_mutated_parts_answer_as_the_reference_or_decline(
    values: list[list[float]], flips: list[tuple[int, int]]
) -> None:
    parts = [_stored(v) for v in values]
    _same(parts)
    mutated = bytearray(parts[0])
    for at, byte in flips:
        if mutated:
            mutated[at % len(mutated)] = byte
    _same([bytes(mutated), *parts[1:]])


# ---- merge ------------------------------------------------------------------------------------
def _same_merge(a: bytes, b: bytes) -> None:
    """Where the compiled merge answers, its bytes are the reference's; where the reference
    raises, it declines (and `merge_encoded` raises as before)."""
    try:
        expected: object = merge_encoded_reference(a, b)
    except SketchDecodeError:
        expected = SketchDecodeError
    got = compiled_merge(a, b)
    if expected is SketchDecodeError:
        assert got is None
    elif got is not None:
        assert got == expected


def test_merges_of_generated_sketches_are_the_references_bytes() -> None:
    rng = random.Random(12)
    shapes = [
        lambda: [rng.lognormvariate(0, 1) for _ in range(rng.randint(1, 300))],
        lambda: [rng.lognormvariate(3, 3) for _ in range(rng.randint(1, 2000))],  # wide deltas
        lambda: [rng.uniform(1e-5, 1e-2) for _ in range(rng.randint(1, 50))],  # negative keys
        lambda: [5.0] * rng.randint(128, 3000),  # counts over one varint byte
        lambda: [],
    ]
    for _ in range(400):
        a = _stored(rng.choice(shapes)(), rng.choice([0, 0, 1, 200]))
        b = _stored(rng.choice(shapes)(), rng.choice([0, 0, 1, 200]))
        got = compiled_merge(a, b)
        assert got is not None, "the compiled merge reads everything to_bytes writes"
        assert got == merge_encoded_reference(a, b) == merge_encoded(a, b)
        # and it is the stored form of the merged sketch
        both = LatencySketch.from_bytes(a)
        both.merge(LatencySketch.from_bytes(b))
        assert got == both.to_bytes()


def test_merge_leaves_what_to_bytes_never_writes_to_the_reference() -> None:
    good = _stored([1.0, 2.0, 3.0])
    for bad in [
        b"",
        b"\x02" + good[1:],
        good[:-1],
        good + b"\x00",
        b"\x01\x00\x02\x04\x01\x00\x01",  # keys not strictly ascending
        b"\x01" + b"\xff" * 10 + b"\x01",
    ]:
        assert compiled_merge(good, bad) is None and compiled_merge(bad, good) is None, bad
        _same_merge(good, bad)
        _same_merge(bad, good)
    assert compiled_merge("x", good) is None  # type: ignore[arg-type]
    huge = bytes([1, 0, 1, 2]) + bytes([0x81] + [0x80] * 6 + [0x10])  # count 2^53 + 1
    assert compiled_merge(huge, good) is None
    assert merge_encoded(huge, good) == merge_encoded_reference(huge, good)
    try:
        merge_encoded(good, good[:-1])
    except SketchDecodeError:
        pass
    else:  # pragma: no cover - the assertion is the point
        raise AssertionError("a truncated sketch must raise")


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.floats(0, 1e7, allow_nan=False), max_size=40),
    st.lists(st.floats(0, 1e7, allow_nan=False), max_size=40),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=3),
)
def test_merges_of_mutated_parts_answer_as_the_reference_or_decline(
    a_values: list[float], b_values: list[float], flips: list[tuple[int, int]]
) -> None:
    a, b = _stored(a_values), _stored(b_values)
    _same_merge(a, b)
    assert compiled_merge(a, b) is not None
    mutated = bytearray(a)
    for at, byte in flips:
        mutated[at % len(mutated)] = byte
    _same_merge(bytes(mutated), b)
    _same_merge(b, bytes(mutated))
