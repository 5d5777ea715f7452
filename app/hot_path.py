"""Speed-only building blocks, named once: bounded memos and a constructor that skips `__init__`.

Each is kept only where a `bench/` script shows it pays, and each gives exactly what the plain
code gives (tests/test_hot_path.py checks them against the plain versions):

- `BoundedMemo`: a dict of computed values that never outgrows `max_entries`. When full it is
  emptied at once rather than evicting one entry: the memos hold a few distinct values (clusters,
  status flags, tags) that come straight back, and a flood of junk keys must cost misses, not
  memory or per-entry bookkeeping.
- `IdentityMemo`: the same, keyed by object identity for values (dicts) that are unhashable or
  slow to hash. The entry holds the object, so its `id()` cannot be reused while the entry lives.
- `fast_constructor`: a slotted dataclass built by calling each slot's descriptor, as a
  generated function with the class's own signature (a frozen dataclass's `__init__` goes
  through `object.__setattr__` per field: about 2-3x the cost).
- `fast_replace`: `dataclasses.replace(obj, name=value)` for one field, the same way
  (`replace` also inspects every field and calls `__init__`: about 5x the cost).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import MemberDescriptorType
from typing import Any, Generic, ParamSpec, TypeVar

from app.codegen import compile_function

K = TypeVar("K")
V = TypeVar("V")
O = TypeVar("O")  # noqa: E741
P = ParamSpec("P")
T = TypeVar("T")


class BoundedMemo(Generic[K, V]):
    """Values by key, at most `max_entries` of them; full, it is cleared before the next `set`.

    `get` is the dict's own `get` (a hit costs one C call, as with a plain dict), so hot loops
    may bind it once: `get = memo.get`.
    """

    __slots__ = ("_entries", "get", "max_entries")

    def __init__(self, max_entries: int) -> None:
        self._entries: dict[K, V] = {}
        self.get = self._entries.get
        self.max_entries = max_entries

    def set(self, key: K, value: V) -> V:
        """Remember `value` under `key` (emptying the memo first when it is full); returns it."""
        entries = self._entries
        if len(entries) >= self.max_entries:
            entries.clear()  # in place: `get` stays bound to this dict
        entries[key] = value
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries


class IdentityMemo(Generic[O, V]):
    """Values by object identity (`is`, not `==`), at most `max_entries`, cleared when full.

    Keyed by `id(obj)`; each entry also holds `obj`, so no other object can take that id while
    the entry lives. Values must not be None (`get` answers None for "not remembered").
    """

    __slots__ = ("_entries", "max_entries")

    def __init__(self, max_entries: int) -> None:
        self._entries: dict[int, tuple[O, V]] = {}
        self.max_entries = max_entries

    def get(self, obj: O) -> V | None:
        entry = self._entries.get(id(obj))
        return entry[1] if entry is not None else None

    def set(self, obj: O, value: V) -> V:
        """Remember `value` for `obj` (emptying the memo first when it is full); returns it."""
        entries = self._entries
        if len(entries) >= self.max_entries:
            entries.clear()
        entries[id(obj)] = (obj, value)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def fast_constructor(cls: Callable[P, T]) -> Callable[P, T]:
    """A function with `cls(...)`'s signature that builds the same instance without `__init__`.

    `cls` must be a slotted dataclass (`slots=True`, frozen or not) without `__post_init__`,
    `InitVar`s or `init=False` fields: then `__init__` only stores each argument (or its default)
    in its slot, which the generated function does through the slots' own descriptors. Generated
    from the field list, so a field added to `cls` is added here too.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__")
    env: dict[str, Any] = {"_fc_new": object.__new__, "_fc_cls": cls, "_fc_missing": _MISSING}
    positional: list[str] = []
    keyword: list[str] = []
    body = ["_fc_obj = _fc_new(_fc_cls)"]
    for i, f in enumerate(dataclasses.fields(cls)):
        slot = getattr(cls, f.name, None)
        if not isinstance(slot, MemberDescriptorType) or not f.init or f.name.startswith("_fc_"):
            raise TypeError(f"{cls.__name__}.{f.name} is not a slot set by __init__")
        env[f"_fc_set{i}"] = slot.__set__
        if f.default is not dataclasses.MISSING:
            env[f"_fc_default{i}"] = f.default
            param = f"{f.name}=_fc_default{i}"
        elif f.default_factory is not dataclasses.MISSING:
            env[f"_fc_factory{i}"] = f.default_factory
            param = f"{f.name}=_fc_missing"
            body.append(f"if {f.name} is _fc_missing: {f.name} = _fc_factory{i}()")
        else:
            param = f.name
        (keyword if f.kw_only else positional).append(param)
        body.append(f"_fc_set{i}(_fc_obj, {f.name})")
    params = ", ".join([*positional, *(["*", *keyword] if keyword else [])])
    made: Callable[P, T] = compile_function(
        f"new_{cls.__name__}", params, [*body, "return _fc_obj"], env
    )
    made.__doc__ = f"`{cls.__name__}(...)` without `__init__` (app.hot_path.fast_constructor)."
    return made


def fast_replace(cls: type[T], name: str) -> Callable[[T, Any], T]:
    """A function `(obj, value)` giving `dataclasses.replace(obj, **{name: value})` for an
    instance of `cls` (the same kind of slotted dataclass as `fast_constructor` takes): the other
    fields are copied slot by slot, not re-validated, and `__init__` is not called."""
    fast_constructor(cls)  # the same checks: a slotted dataclass whose __init__ only stores
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    if name not in names:
        raise TypeError(f"{cls.__name__} has no field {name!r}")
    env: dict[str, Any] = {"_fr_new": object.__new__, "_fr_cls": cls}
    body = ["_fr_copy = _fr_new(_fr_cls)"]
    for i, field_name in enumerate(names):
        env[f"_fr_set{i}"] = getattr(cls, field_name).__set__
        value = "_fr_value" if field_name == name else f"_fr_obj.{field_name}"
        body.append(f"_fr_set{i}(_fr_copy, {value})")
    made: Callable[[T, Any], T] = compile_function(
        f"replace_{name}", "_fr_obj, _fr_value", [*body, "return _fr_copy"], env
    )
    return made


_MISSING: Any = object()
