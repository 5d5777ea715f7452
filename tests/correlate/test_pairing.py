"""The bounded pairing store: expiry after the wait, eviction of the oldest when full."""

from __future__ import annotations

import pytest

from app.correlate.pairing import PairingStore

S = 1_000_000_000


def test_expiry_after_the_wait_oldest_first() -> None:
    store: PairingStore[str] = PairingStore(wait_ns=10 * S, max_items=10)
    store.put(b"a", "a", now_ns=0)
    store.put(b"b", "b", now_ns=5 * S)
    assert store.expire(9 * S) == []
    assert store.expire(10 * S) == ["a"]
    assert store.expire(20 * S) == ["b"]
    assert len(store) == 0
    assert store.expired == 2


def test_full_store_evicts_the_oldest_and_counts_it() -> None:
    store: PairingStore[int] = PairingStore(wait_ns=10 * S, max_items=2)
    assert store.put(b"1", 1, 0) is None
    assert store.put(b"2", 2, 0) is None
    assert store.put(b"3", 3, 0) == 1
    assert store.put(b"4", 4, 0) == 2
    assert (store.get(b"3"), store.get(b"4"), store.evicted, len(store)) == (3, 4, 2, 2)


def test_pop_and_reput_refreshes_the_deadline() -> None:
    store: PairingStore[int] = PairingStore(wait_ns=10 * S, max_items=2)
    store.put(b"1", 1, 0)
    store.put(b"1", 1, 5 * S)
    assert store.expire(10 * S) == []
    assert store.pop(b"1") == 1
    assert store.pop(b"1") is None


def test_drain_returns_everything() -> None:
    store: PairingStore[int] = PairingStore(wait_ns=S, max_items=5)
    for i in range(3):
        store.put(bytes([i]), i, 0)
    assert store.drain() == [0, 1, 2]
    assert len(store) == 0


def test_max_items_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_items"):
        PairingStore[int](wait_ns=S, max_items=0)
