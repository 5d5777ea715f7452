"""The latency sketch's stored form and its codec, at C speed.

Format (version 1, stored in `l7_latency_sketch`): version byte, varint zero count, varint bin
count, then (zigzag key delta, count) varint pairs in key order. A typical edge bucket holds a few
dozen bins: ~100 bytes. Bins are DDSketch bins (app/edge/sketch.py): key k covers
(GAMMA^(k-1), GAMMA^k] ms and is represented by `bin_value(k)`.

Decoding, encoding and merging do the per-value work in slices, `map` and `accumulate` instead of
a Python varint loop; quantiles of stored parts are read in C (app/edge/_sketch.c), with
`sketch_quantiles_reference` the Python twin it is tested against. `LatencySketch.to_bytes`/`from_bytes` are the plain
reference implementation these are tested against (tests/edge/test_sketch_codec.py).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Iterable
from itertools import accumulate, repeat
from operator import add, and_, lt, rshift, sub

# Built by `pip install` (pyproject.toml ext-modules) like the OTLP decoder: a failed build
# fails the install, so there is no Python fallback to hide it.
from app.edge._sketch import merge as _compiled_merge
from app.edge._sketch import quantiles as _compiled_quantiles

ALPHA = 0.005
GAMMA = (1 + ALPHA) / (1 - ALPHA)
VERSION = 1


class SketchDecodeError(ValueError):
    """Stored sketch bytes cannot be read."""


def bin_value(key: int) -> float:
    """The value a bin stands for: the point of least relative error in (GAMMA^(k-1), GAMMA^k]."""
    return 2 * GAMMA**key / (GAMMA + 1)


def zigzag(n: int) -> int:
    return (n << 1) if n >= 0 else ((-n << 1) - 1)


def unzigzag(n: int) -> int:
    return (n >> 1) if not n & 1 else -((n + 1) >> 1)


def put_varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned LEB128 varint at `pos`, and the position after it."""
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


# zigzag-encoded one-byte key deltas -> delta
_UNZIGZAG = tuple(map(unzigzag, range(128)))
_VARINT = re.compile(rb"[\x80-\xff]*[\x00-\x7f]")


class _VarintValues(dict[bytes, int]):
    """Memo: encoded varint -> value (bounded; a miss decodes it in Python)."""

    def __missing__(self, encoded: bytes) -> int:
        value = read_varint(encoded, 0)[0]
        if len(self) < 100_000:
            self[encoded] = value
        return value


_VARINTS = _VarintValues()


def decode_sketch(data: bytes) -> tuple[int, list[int], list[int]]:
    """(zero count, keys ascending, counts) of a stored sketch; the per-value work runs in C
    (slices, `map`, `accumulate`) instead of a Python varint loop."""
    if not data or data[0] != VERSION:
        raise SketchDecodeError("unknown latency sketch version")
    try:
        zero, pos = read_varint(data, 1)
        n, pos = read_varint(data, pos)
        if not n:
            return zero, [], []
        first, pos = read_varint(data, pos)  # the first key is absolute: maybe several bytes
        body = data[pos:]
    except IndexError:
        raise SketchDecodeError("truncated latency sketch") from None
    if body.isascii():  # every count and later delta one byte: most buckets
        if len(body) != 2 * n - 1:
            raise SketchDecodeError("truncated latency sketch")
        counts = list(body[0::2])
        deltas = map(_UNZIGZAG.__getitem__, body[1::2])
    else:
        values = list(map(_VARINTS.__getitem__, _VARINT.findall(body)))
        if len(values) != 2 * n - 1 or (body and body[-1] & 0x80):
            raise SketchDecodeError("truncated latency sketch")
        counts = values[0::2]
        zigzags = values[1::2]
        # ascending keys (as to_bytes writes them): every delta positive, its zigzag even
        even = not any(map(and_, zigzags, repeat(1)))
        deltas = map(rshift, zigzags, repeat(1)) if even else map(unzigzag, zigzags)
    keys = list(accumulate(deltas, initial=unzigzag(first)))
    return zero, keys, counts


def merged_bins(parts: Iterable[bytes]) -> tuple[int, dict[int, int]]:
    """(zero count, bins) of the merge of stored sketches."""
    zero, bins = 0, dict[int, int]()
    for data in parts:
        z, keys, counts = decode_sketch(data)
        zero += z
        if not bins:
            bins = dict(zip(keys, counts, strict=True))
        else:  # bins[k] += c for each pair, in C (keys are distinct within one sketch)
            bins.update(zip(keys, map(add, map(bins.get, keys, repeat(0)), counts), strict=True))
    return zero, bins


_ODD = bytes(range(1, 256, 2))


def _one_quantiles(data: bytes, qs: tuple[float, ...]) -> tuple[float | None, ...] | None:
    """Quantiles of one stored sketch whose counts and key deltas are one byte each, without
    decoding its keys: the cumulative counts find each rank's bin, and that bin's key is the
    first key plus the sum of the deltas before it. None when the sketch is not of that form."""
    if len(data) < 4 or data[0] != VERSION or not data[-1:].isascii():
        return None
    try:
        zero, pos = read_varint(data, 1)
        n, pos = read_varint(data, pos)
        first, pos = read_varint(data, pos)
    except IndexError:
        return None
    body = data[pos:]
    if not n:
        return None
    deltas = body[1::2]
    # one-byte values, 2n-1 of them, and every key delta positive (even zigzag): ascending keys
    if len(body) != 2 * n - 1 or not body.isascii() or deltas.translate(None, _ODD) != deltas:
        return None
    cumulative = list(accumulate(body[0::2]))
    total = zero + cumulative[-1]
    first_key = unzigzag(first)
    out: list[float | None] = []
    for q in qs:
        rank = math.floor(min(max(q, 0.0), 1.0) * (total - 1))
        if rank < zero:
            out.append(0.0)
            continue
        i = bisect_right(cumulative, rank - zero)
        out.append(bin_value(first_key + (sum(deltas[:i]) >> 1)))
    return tuple(out)


def sketch_quantiles(parts: list[bytes], qs: tuple[float, ...]) -> tuple[float | None, ...]:
    """LatencySketch.quantile of the merge of `parts` for each q (same ranks, same values):
    the compiled reader (app/edge/_sketch.c), or the reference for input it leaves to it."""
    found = _compiled_quantiles(parts, qs, GAMMA)
    if found is None:
        return sketch_quantiles_reference(parts, qs)
    return found


def sketch_quantiles_reference(
    parts: list[bytes], qs: tuple[float, ...]
) -> tuple[float | None, ...]:
    """`sketch_quantiles` in Python: the reference the compiled reader is held equal to
    (tests/edge/test_sketch_c.py), and the reader of what that one declines (malformed parts
    raise `SketchDecodeError` here)."""
    if len(parts) == 1 and (fast := _one_quantiles(parts[0], qs)) is not None:
        return fast
    if len(parts) == 1:
        zero, keys, counts = decode_sketch(parts[0])
        if not all(map(lt, keys, keys[1:])):  # pragma: no cover - to_bytes writes keys in order
            zero, bins = merged_bins(parts)
            keys = sorted(bins)
            counts = [bins[k] for k in keys]
    else:
        zero, bins = merged_bins(parts)
        keys = sorted(bins)
        counts = list(map(bins.__getitem__, keys))
    cumulative = list(accumulate(counts))
    total = zero + (cumulative[-1] if cumulative else 0)
    if not total:
        return tuple(None for _ in qs)
    out: list[float | None] = []
    for q in qs:
        rank = math.floor(min(max(q, 0.0), 1.0) * (total - 1))
        if rank < zero:
            out.append(0.0)
        else:
            out.append(bin_value(keys[bisect_right(cumulative, rank - zero)]))
    return tuple(out)


class _VarintBytes(dict[int, bytes]):
    """Memo: value → its varint encoding (bounded; a miss encodes it in Python)."""

    def __missing__(self, value: int) -> bytes:
        out = bytearray()
        put_varint(out, value)
        encoded = bytes(out)
        if len(self) < 100_000:
            self[value] = encoded
        return encoded


_VARINT_BYTES = _VarintBytes()
_HEADER = bytes([VERSION])


def encode_sketch(zero: int, bins: dict[int, int]) -> bytes:
    """`LatencySketch.to_bytes()` of a sketch with these zero count and bins, byte for byte, with
    the per-bin work in C (`map`, one `bytes(...)` when every value fits one byte)."""
    keys = sorted(bins)
    n = len(keys)
    head = _HEADER + _VARINT_BYTES[zero] + _VARINT_BYTES[n]
    if not n:
        return head
    first = keys[0]
    values: list[int] = [0] * (2 * n)
    values[0] = 2 * first if first >= 0 else -2 * first - 1  # zigzag
    # later keys ascend: each delta is positive, its zigzag twice the delta
    values[2::2] = map(_TWICE, map(sub, keys[1:], keys))
    values[1::2] = map(bins.__getitem__, keys)
    if max(values) < 0x80:
        return head + bytes(values)
    return head + b"".join(map(_VARINT_BYTES.__getitem__, values))


_TWICE = (2).__mul__


def merge_encoded(a: bytes, b: bytes) -> bytes:
    """The stored form of the merge of two stored sketches (`encode_sketch` of the summed bins):
    the compiled merge (app/edge/_sketch.c), or the reference for input it leaves to it. The
    store calls this for every stored bucket and roll-up a flush adds to."""
    merged = _compiled_merge(a, b)
    return merged if merged is not None else merge_encoded_reference(a, b)


def merge_encoded_reference(a: bytes, b: bytes) -> bytes:
    """`merge_encoded` in Python: the reference the compiled merge is tested against
    (tests/edge/test_sketch_c.py), and the merge of what it declines."""
    zero_a, keys_a, counts_a = decode_sketch(a)
    zero_b, keys, counts = decode_sketch(b)
    bins = dict(zip(keys_a, counts_a, strict=True))
    bins.update(zip(keys, map(add, map(bins.get, keys, repeat(0)), counts), strict=True))
    return encode_sketch(zero_a + zero_b, bins)
