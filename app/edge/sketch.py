"""A mergeable latency sketch with bounded relative error (DDSketch, Masson et al., VLDB 2019).

Values fall in logarithmic bins of ratio `GAMMA = (1 + ALPHA) / (1 - ALPHA)`; the value returned
for a bin is within `ALPHA` relative error of every value in it. Merging adds bin counts, so the
sketch of a window is exactly the merge of its buckets' sketches, whatever the order: that is what
lets several replicas and many buckets combine into one p99. ALPHA = 0.5 % keeps p50/p95/p99
within 1 % of the exact percentiles with margin for the rank discretisation.

A sketch read from the store may hold stored parts not yet decoded (`merge_encoded`): a window
read merges many rows and usually only asks for three quantiles, which `sketch_codec` answers
from the stored bytes. Everything that looks at the bins decodes the parts first (`_fold`), so
the parts are invisible to callers. `to_bytes`/`from_bytes` are the plain reference codec that
`sketch_codec` (the one the store uses) is tested against.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from app.edge.sketch_codec import (
    ALPHA,
    GAMMA,
    VERSION,
    SketchDecodeError,
    bin_value,
    decode_sketch,
    put_varint,
    read_varint,
    sketch_quantiles,
    unzigzag,
    zigzag,
)

__all__ = ["ALPHA", "GAMMA", "MIN_VALUE_MS", "LatencySketch", "SketchDecodeError", "merge_all"]

_LOG_GAMMA = math.log(GAMMA)
# Latencies below this (ms) are counted as zero: 1 ns, far below anything a proxy measures.
MIN_VALUE_MS = 1e-6


class LatencySketch:
    __slots__ = ("_bins", "_count", "_encoded", "_zero")

    def __init__(self) -> None:
        self._bins: dict[int, int] = {}
        self._zero = 0
        self._count = 0
        self._encoded: list[bytes] | None = None  # stored parts not yet decoded

    # ---- the bins (stored parts decoded first) -------------------------------------------------
    @property
    def bins(self) -> dict[int, int]:
        if self._encoded:
            self._fold()
        return self._bins

    @property
    def zero_count(self) -> int:
        if self._encoded:
            self._fold()
        return self._zero

    @property
    def count(self) -> int:
        if self._encoded:
            self._fold()
        return self._count

    def _fold(self) -> None:
        parts, self._encoded = self._encoded or [], None
        bins = self._bins
        for data in parts:
            zero, keys, counts = decode_sketch(data)
            for k, c in zip(keys, counts, strict=True):
                bins[k] = bins.get(k, 0) + c
            self._zero += zero
            self._count += zero + sum(counts)

    # ---- adding --------------------------------------------------------------------------------
    @staticmethod
    def key(value_ms: float) -> int:
        return math.ceil(math.log(value_ms) / _LOG_GAMMA)

    @staticmethod
    def value(key: int) -> float:
        return bin_value(key)

    def add(self, value_ms: float, count: int = 1) -> None:
        if not value_ms > MIN_VALUE_MS:  # also catches NaN
            self._zero += count
        else:
            k = self.key(value_ms)
            self._bins[k] = self._bins.get(k, 0) + count
        self._count += count

    def add_key(self, key: int | None) -> None:
        """`add(value)` for a value whose bin key the caller computed (None: a zero value)."""
        if key is None:
            self._zero += 1
        else:
            bins = self._bins
            bins[key] = bins.get(key, 0) + 1
        self._count += 1

    def add_all(self, values_ms: Iterable[float]) -> None:
        for value in values_ms:
            self.add(value)

    def merge(self, other: LatencySketch) -> None:
        if other._encoded:
            self._encoded = [*(self._encoded or ()), *other._encoded]
        bins = self._bins
        for k, c in other._bins.items():
            bins[k] = bins.get(k, 0) + c
        self._zero += other._zero
        self._count += other._count

    def merge_encoded(self, data: bytes | None) -> None:
        """Merge a stored sketch (`to_bytes` form); decoded only when the bins are needed."""
        if not data:
            return
        if self._encoded is None:
            self._encoded = [data]
        else:
            self._encoded.append(data)

    # ---- reading -------------------------------------------------------------------------------
    def quantile(self, q: float) -> float | None:
        """The value at rank floor(q * (count - 1)) (the lower nearest rank), or None when empty."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> tuple[float | None, ...]:
        """`quantile(q)` for each q; a sketch made only of stored parts is answered from them."""
        if self._encoded and not self._count:
            return sketch_quantiles(self._encoded, qs)
        count = self.count
        if count == 0:
            return tuple(None for _ in qs)
        keys = sorted(self._bins)
        out: list[float | None] = []
        for q in qs:
            rank = math.floor(min(max(q, 0.0), 1.0) * (count - 1))
            if rank < self._zero:
                out.append(0.0)
                continue
            seen = self._zero
            for k in keys:
                seen += self._bins[k]
                if seen > rank:
                    out.append(bin_value(k))
                    break
            else:  # pragma: no cover - counts always add up
                out.append(bin_value(keys[-1]))
        return tuple(out)

    def to_bytes(self) -> bytes:
        bins = self.bins
        out = bytearray([VERSION])
        put_varint(out, self._zero)
        put_varint(out, len(bins))
        previous = 0
        for k in sorted(bins):
            put_varint(out, zigzag(k - previous))
            put_varint(out, bins[k])
            previous = k
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> LatencySketch:
        if not data or data[0] != VERSION:
            raise SketchDecodeError("unknown latency sketch version")
        sketch = cls()
        try:
            pos = 1
            sketch._zero, pos = read_varint(data, pos)
            n, pos = read_varint(data, pos)
            key = 0
            total = sketch._zero
            for _ in range(n):
                delta, pos = read_varint(data, pos)
                count, pos = read_varint(data, pos)
                key += unzigzag(delta)
                sketch._bins[key] = count
                total += count
        except IndexError:
            raise SketchDecodeError("truncated latency sketch") from None
        sketch._count = total
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
