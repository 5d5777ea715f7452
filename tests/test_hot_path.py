"""The speed-only helpers give what the plain code gives: a dict, `cls(...)`."""

from __future__ import annotations

import dataclasses
import inspect
import weakref
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import Endpoint, L7Observation, Provenance, Span, SpanKind
from app.hot_path import BoundedMemo, IdentityMemo, fast_constructor, fast_replace


# ---- BoundedMemo ----------------------------------------------------------------------------
@given(st.lists(st.integers(0, 20), max_size=200), st.integers(1, 8))
def test_memo_answers_what_the_function_answers_and_stays_bounded(
    keys: list[int], max_entries: int
) -> None:
    memo: BoundedMemo[int, str] = BoundedMemo(max_entries)
    for key in keys:
        value = memo.get(key)
        if value is None:
            value = memo.set(key, str(key))
        assert value == str(key)
        assert len(memo) <= max_entries


def test_memo_empties_at_once_when_full() -> None:
    memo: BoundedMemo[str, int] = BoundedMemo(3)
    for i, key in enumerate("abc"):
        memo.set(key, i)
    assert [memo.get(k) for k in "abc"] == [0, 1, 2] and len(memo) == 3
    memo.set("d", 3)
    assert len(memo) == 1 and "d" in memo and "a" not in memo
    assert memo.get("a") is None and memo.get("d") == 3


def test_memo_get_is_the_dict_get_and_survives_clear() -> None:
    memo: BoundedMemo[str, int | None] = BoundedMemo(2)
    get = memo.get
    memo.set("none", None)
    missing = object()
    assert get("none", missing) is None and get("other", missing) is missing
    memo.clear()
    assert len(memo) == 0 and get("none", missing) is missing
    memo.set("x", 1)
    assert get("x") == 1


# ---- IdentityMemo ---------------------------------------------------------------------------
class Box:
    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Box) and other.value == self.value

    def __hash__(self) -> int:
        return self.value


def test_identity_memo_tells_equal_objects_apart() -> None:
    memo: IdentityMemo[Box, str] = IdentityMemo(8)
    a, b = Box(1), Box(1)
    assert a == b and memo.set(a, "a") == "a"
    assert memo.get(a) == "a" and memo.get(b) is None
    memo.set(b, "b")
    assert (memo.get(a), memo.get(b), len(memo)) == ("a", "b", 2)


def test_identity_memo_holds_its_keys_so_their_ids_stay_unique() -> None:
    memo: IdentityMemo[Box, int] = IdentityMemo(8)
    box = Box(1)
    alive = weakref.ref(box)
    memo.set(box, 1)
    del box
    assert alive() is not None  # kept by the entry: no new object can take its id
    memo.clear()
    assert alive() is None


def test_identity_memo_is_bounded() -> None:
    memo: IdentityMemo[Box, int] = IdentityMemo(2)
    boxes = [Box(i) for i in range(5)]
    for i, box in enumerate(boxes):
        memo.set(box, i)
        assert len(memo) <= 2
    assert memo.get(boxes[4]) == 4 and memo.get(boxes[0]) is None


# ---- fast_constructor -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Frozen:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=list)
    d: bool = field(default=False, kw_only=True)


@dataclass(slots=True)
class Mutable:
    x: int
    y: dict[str, int] = field(default_factory=dict)


ENDPOINT = Endpoint("default", "reviews", workload="reviews-v1")
SPAN_ARGS: tuple[Any, ...] = (
    b"t" * 16,
    b"s" * 8,
    b"",
    SpanKind.SERVER,
    "n",
    1,
    2,
    "svc",
    True,
    {"a": 1},
    {},
)
OBSERVATION_ARGS: tuple[Any, ...] = (
    ENDPOINT,
    ENDPOINT,
    5,
    1.5,
    b"t" * 16,
    b"s" * 8,
    b"",
    "http",
    "200",
)


@pytest.mark.parametrize(
    ("cls", "args", "kwargs"),
    [
        (Span, SPAN_ARGS, {}),
        (Span, SPAN_ARGS[:9], {}),
        (L7Observation, OBSERVATION_ARGS, {"provenance": Provenance.PEER_TAGS, "evicted": True}),
        (L7Observation, (ENDPOINT, ENDPOINT, 5, 1.5, b""), {}),
        (Endpoint, ("ns", "svc"), {"principal": "spiffe://x"}),
        (Frozen, (1,), {}),
        (Frozen, (1, "x", [2]), {"d": True}),
        (Mutable, (1,), {"y": {"k": 2}}),
    ],
)
def test_built_object_equals_the_constructed_one(
    cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    made, expected = fast_constructor(cls)(*args, **kwargs), cls(*args, **kwargs)
    assert type(made) is cls and made == expected
    assert dataclasses.astuple(made) == dataclasses.astuple(expected)


@pytest.mark.parametrize("cls", [Span, L7Observation, Endpoint, Frozen, Mutable])
def test_signature_is_the_constructors(cls: Any) -> None:
    assert [
        (p.name, p.kind, p.default is inspect.Parameter.empty)
        for p in inspect.signature(fast_constructor(cls)).parameters.values()
    ] == [
        (p.name, p.kind, p.default is inspect.Parameter.empty)
        for p in inspect.signature(cls).parameters.values()
    ]


def test_hash_is_the_constructed_ones() -> None:
    assert hash(fast_constructor(Endpoint)("ns", "svc")) == hash(Endpoint("ns", "svc"))


def test_default_factories_run_per_object() -> None:
    new = fast_constructor(Frozen)
    first, second = new(1), new(1)
    assert first.c == [] and first.c is not second.c


def test_frozen_stays_frozen() -> None:
    made = fast_constructor(Frozen)(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.a = 2  # type: ignore[misc]


def test_missing_argument_fails_as_the_constructor_does() -> None:
    with pytest.raises(TypeError):
        fast_constructor(Mutable)()  # type: ignore[call-arg]


@dataclass
class NoSlots:
    a: int


@dataclass(slots=True)
class PostInit:
    a: int

    def __post_init__(self) -> None:
        pass


@dataclass(slots=True)
class NotInInit:
    a: int
    b: int = field(default=0, init=False)


@pytest.mark.parametrize("cls", [NoSlots, PostInit, NotInInit, dict])
def test_refuses_what_it_cannot_build_faithfully(cls: Any) -> None:
    with pytest.raises(TypeError):
        fast_constructor(cls)


# ---- fast_replace ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("obj", "name", "value"),
    [
        (Frozen(1, "x", [2], d=True), "b", "y"),
        (Frozen(1, "x", [2], d=True), "d", False),  # a keyword-only field
        (Mutable(3, {"k": 1}), "x", 4),
        (L7Observation(*OBSERVATION_ARGS), "duration_ms", 99.5),
    ],
)
def test_replaced_copy_equals_dataclasses_replace(obj: Any, name: str, value: Any) -> None:
    made = fast_replace(type(obj), name)(obj, value)
    expected = dataclasses.replace(obj, **{name: value})
    assert type(made) is type(obj) and made is not obj and made == expected
    assert dataclasses.astuple(made) == dataclasses.astuple(expected)
    assert getattr(obj, name) != value  # the original is untouched


def test_replace_refuses_an_unknown_field_and_a_class_it_cannot_copy() -> None:
    with pytest.raises(TypeError, match="no field"):
        fast_replace(Frozen, "zz")
    with pytest.raises(TypeError):
        fast_replace(dict, "x")  # type: ignore[arg-type]
