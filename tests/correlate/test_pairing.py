"""The bounded pairing store: expiry after the wait, eviction of the oldest when full."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def test_pop_forgets_the_deadline_too() -> None:
    store: PairingStore[int] = PairingStore(wait_ns=10 * S, max_items=2)
    store.put(b"1", 1, 0)
    store.put(b"2", 2, 0)
    assert store.pop(b"1") == 1
    store.put(b"3", 3, 5 * S)  # room again: nothing evicted
    assert (store.evicted, store.expire(10 * S), len(store)) == (0, [2], 1)
    assert store.drain() == [3]


# Operations on a store of at most 3 entries, against a list model: (op, key, now in seconds).
_ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "get", "pop", "expire"]),
        st.sampled_from(b"abcde"),
        st.integers(0, 30),
    ),
    max_size=60,
)


@given(_ops)
def test_store_matches_a_list_model(ops: list[tuple[str, int, int]]) -> None:
    store: PairingStore[tuple[int, int]] = PairingStore(wait_ns=10 * S, max_items=3)
    model: list[tuple[bytes, int, tuple[int, int]]] = []  # (key, deadline, value), oldest first
    evicted = expired = 0
    for i, (op, byte, now_s) in enumerate(ops):
        key, value, now = bytes([byte]), (byte, i), now_s * S
        found = next((entry for entry in model if entry[0] == key), None)
        if op == "put":
            want = None
            if found is not None:
                model.remove(found)
            elif len(model) >= 3:
                want = model.pop(0)[2]
                evicted += 1
            model.append((key, now + 10 * S, value))
            assert store.put(key, value, now) == want
        elif op == "get":
            assert store.get(key) == (found[2] if found else None)
        elif op == "pop":
            if found is not None:
                model.remove(found)
            assert store.pop(key) == (found[2] if found else None)
        else:
            due = []
            while model and model[0][1] <= now:
                due.append(model.pop(0)[2])
            expired += len(due)
            assert store.expire(now) == due
        assert (len(store), store.evicted, store.expired) == (len(model), evicted, expired)
    assert store.drain() == [entry[2] for entry in model]
