"""A bounded store of spans waiting for their peer, like the OTel Collector servicegraph connector's.

Keys are bytes: trace id + span id for a client waiting for its server, trace id + parent span
id for a server (or waypoint span) waiting for its client. Every entry waits the same `wait_ns`,
so insertion order is expiry order and an `OrderedDict` gives O(1) expiry and eviction.

Unlike the connector (which drops the *new* span when `max_items` is reached), a full store
evicts its OLDEST entry and hands it back to the caller, who emits it as an unpaired observation
flagged `evicted=True`: the newest spans are the ones most likely to still find their peer, and
nothing is lost silently. `evicted` and `expired` count what left without a peer.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


def span_key(trace_id: bytes, span_id: bytes) -> bytes:
    return trace_id + span_id


class PairingStore(Generic[V]):
    __slots__ = ("_entries", "_max_items", "_wait_ns", "evicted", "expired")

    def __init__(self, wait_ns: int, max_items: int) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._wait_ns = wait_ns
        self._max_items = max_items
        self._entries: OrderedDict[bytes, tuple[int, V]] = OrderedDict()
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: bytes) -> bool:
        return key in self._entries

    def get(self, key: bytes) -> V | None:
        entry = self._entries.get(key)
        return entry[1] if entry is not None else None

    def pop(self, key: bytes) -> V | None:
        entry = self._entries.pop(key, None)
        return entry[1] if entry is not None else None

    def put(self, key: bytes, value: V, now_ns: int) -> V | None:
        """Store `value` until `now_ns + wait`; returns the oldest value evicted to make room."""
        entries = self._entries
        evicted: V | None = None
        if key in entries:
            del entries[key]  # re-inserted at the back with a fresh deadline
        elif len(entries) >= self._max_items:
            evicted = entries.popitem(last=False)[1][1]
            self.evicted += 1
        entries[key] = (now_ns + self._wait_ns, value)
        return evicted

    def expire(self, now_ns: int) -> list[V]:
        """Remove and return the values whose wait ran out (deadline ≤ now_ns), oldest first."""
        entries = self._entries
        out: list[V] = []
        while entries:
            key, (deadline, value) = next(iter(entries.items()))
            if deadline > now_ns:
                break
            del entries[key]
            out.append(value)
        self.expired += len(out)
        return out

    def drain(self) -> list[V]:
        """Remove and return everything (shutdown, tests), oldest first."""
        out = [value for _, value in self._entries.values()]
        self._entries.clear()
        return out
