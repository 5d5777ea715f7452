"""A bounded store of spans waiting for their peer, like the OTel Collector servicegraph connector's.

Keys are bytes: trace id + span id for a client waiting for its server, trace id + parent span
id for a server (or waypoint span) waiting for its client. Every entry waits the same `wait_ns`,
so insertion order is expiry order and an `OrderedDict` gives O(1) expiry and eviction.

Unlike the connector (which drops the *new* span when `max_items` is reached), a full store
evicts its OLDEST entry and hands it back to the caller, who emits it as an unpaired observation
flagged `evicted=True`: the newest spans are the ones most likely to still find their peer, and
nothing is lost silently. `evicted` and `expired` count what left without a peer.

Values and deadlines are kept apart: values in a plain dict whose own `get` is the store's `get`
(one C call per lookup, no tuple to unpack), deadlines in an `OrderedDict` that also holds the
order. The spans of one batch share `now_ns`, so they share one deadline object too: a `put`
allocates nothing but the dicts' own slots.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")

_MISSING: object = object()


def span_key(trace_id: bytes, span_id: bytes) -> bytes:
    return trace_id + span_id


class PairingStore(Generic[V]):
    __slots__ = (
        "_deadline",
        "_deadlines",
        "_max_items",
        "_now_ns",
        "_values",
        "_wait_ns",
        "evicted",
        "expired",
        "get",
    )

    get: Callable[[bytes], V | None]

    def __init__(self, wait_ns: int, max_items: int) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._wait_ns = wait_ns
        self._max_items = max_items
        self._values: dict[bytes, V] = {}
        self._deadlines: OrderedDict[bytes, int] = OrderedDict()
        self._now_ns: int | None = None
        self._deadline = 0
        self.get = self._values.get
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: bytes) -> bool:
        return key in self._values

    def pop(self, key: bytes) -> V | None:
        value = self._values.pop(key, _MISSING)
        if value is _MISSING:
            return None
        del self._deadlines[key]
        return value  # type: ignore[return-value]

    def put(self, key: bytes, value: V, now_ns: int) -> V | None:
        """Store `value` until `now_ns + wait`; returns the oldest value evicted to make room."""
        values, deadlines = self._values, self._deadlines
        evicted: V | None = None
        if key in values:
            del deadlines[key]  # re-inserted at the back with a fresh deadline
        elif len(values) >= self._max_items:
            oldest = deadlines.popitem(last=False)[0]
            evicted = values.pop(oldest)
            self.evicted += 1
        if now_ns != self._now_ns:
            self._now_ns = now_ns
            self._deadline = now_ns + self._wait_ns
        values[key] = value
        deadlines[key] = self._deadline
        return evicted

    def expire(self, now_ns: int) -> list[V]:
        """Remove and return the values whose wait ran out (deadline ≤ now_ns), oldest first."""
        values, deadlines = self._values, self._deadlines
        out: list[V] = []
        while deadlines:
            key = next(iter(deadlines))
            if deadlines[key] > now_ns:
                break
            del deadlines[key]
            out.append(values.pop(key))
        self.expired += len(out)
        return out

    def drain(self) -> list[V]:
        """Remove and return everything (shutdown, tests), oldest first."""
        values = self._values
        out = [values[key] for key in self._deadlines]
        values.clear()
        self._deadlines.clear()
        return out
