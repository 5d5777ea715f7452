"""A mergeable latency sketch with bounded relative error (DDSketch, Masson et al., VLDB 2019).

Values fall in logarithmic bins of ratio `GAMMA = (1 + ALPHA) / (1 - ALPHA)`; the value returned
for a bin is within `ALPHA` relative error of every value in it. Merging adds bin counts, so the
sketch of a window is exactly the merge of its buckets' sketches, whatever the order: that is what
lets several replicas and many buckets combine into one p99. ALPHA = 0.5 % keeps p50/p95/p99
within 1 % of the exact percentiles with margin for the rank discretisation.

Serialised form (stored in `edge_buckets.l7_latency_sketch`): version byte, varint zero count,
varint bin count, then (zigzag key delta, count) varint pairs in key order. A typical edge bucket
holds a few dozen bins: ~100 bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

ALPHA = 0.005
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
# Latencies below this (ms) are counted as zero: 1 ns, far below anything a proxy measures.
MIN_VALUE_MS = 1e-6
_VERSION = 1


class SketchDecodeError(ValueError):
    """Stored sketch bytes cannot be read."""


class LatencySketch:
    __slots__ = ("bins", "count", "zero_count")

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.zero_count = 0
        self.count = 0

    @staticmethod
    def key(value_ms: float) -> int:
        return math.ceil(math.log(value_ms) / _LOG_GAMMA)

    @staticmethod
    def value(key: int) -> float:
        # The bin (gamma^(k-1), gamma^k] is represented by the point of least relative error.
        return 2 * GAMMA**key / (GAMMA + 1)

    def add(self, value_ms: float, count: int = 1) -> None:
        if not value_ms > MIN_VALUE_MS:  # also catches NaN
            self.zero_count += count
        else:
            k = self.key(value_ms)
            self.bins[k] = self.bins.get(k, 0) + count
        self.count += count

    def add_all(self, values_ms: Iterable[float]) -> None:
        for value in values_ms:
            self.add(value)

    def merge(self, other: LatencySketch) -> None:
        bins = self.bins
        for k, c in other.bins.items():
            bins[k] = bins.get(k, 0) + c
        self.zero_count += other.zero_count
        self.count += other.count

    def quantile(self, q: float) -> float | None:
        """The value at rank floor(q * (count - 1)) (the lower nearest rank), or None when empty."""
        if self.count == 0:
            return None
        rank = math.floor(min(max(q, 0.0), 1.0) * (self.count - 1))
        if rank < self.zero_count:
            return 0.0
        seen = self.zero_count
        for k in sorted(self.bins):
            seen += self.bins[k]
            if seen > rank:
                return self.value(k)
        return self.value(max(self.bins))  # pragma: no cover - counts always add up

    def to_bytes(self) -> bytes:
        out = bytearray([_VERSION])
        _put_varint(out, self.zero_count)
        _put_varint(out, len(self.bins))
        previous = 0
        for k in sorted(self.bins):
            _put_varint(out, _zigzag(k - previous))
            _put_varint(out, self.bins[k])
            previous = k
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> LatencySketch:
        if not data or data[0] != _VERSION:
            raise SketchDecodeError("unknown latency sketch version")
        sketch = cls()
        try:
            pos = 1
            sketch.zero_count, pos = read_varint(data, pos)
            n, pos = read_varint(data, pos)
            key = 0
            total = sketch.zero_count
            for _ in range(n):
                delta, pos = read_varint(data, pos)
                count, pos = read_varint(data, pos)
                key += _unzigzag(delta)
                sketch.bins[key] = count
                total += count
        except IndexError:
            raise SketchDecodeError("truncated latency sketch") from None
        sketch.count = total
        return sketch

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, LatencySketch)
            and self.bins == other.bins
            and self.zero_count == other.zero_count
        )

    def __repr__(self) -> str:
        return f"LatencySketch(count={self.count}, bins={len(self.bins)})"


def merge_all(sketches: Iterable[LatencySketch | bytes | None]) -> LatencySketch:
    merged = LatencySketch()
    for item in sketches:
        if item is None:
            continue
        merged.merge(item if isinstance(item, LatencySketch) else LatencySketch.from_bytes(item))
    return merged


def _zigzag(n: int) -> int:
    return (n << 1) if n >= 0 else ((-n << 1) - 1)


def _unzigzag(n: int) -> int:
    return (n >> 1) if not n & 1 else -((n + 1) >> 1)


def _put_varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned LEB128 varint at `pos`, and the position after it (store/sketch_codec.py too)."""
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
