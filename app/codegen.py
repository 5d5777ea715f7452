"""Functions compiled from source text, for per-field code derived from one declaration.

A merge or a row encoder written as a loop over a field list pays a `getattr`/`setattr` per field
per row; generated once at import from the same list, it runs as fast as one written by hand and
still changes when the list does (the way `dataclasses` writes `__init__`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def compile_function(
    name: str, params: str, body: Iterable[str], env: dict[str, Any]
) -> Callable[..., Any]:
    """`def name(params): body` with the globals `env`; `body` is lines without indentation."""
    lines = [f"def {name}({params}):", *(f"    {line}" for line in body)]
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), dict(env), namespace)
    fn: Callable[..., Any] = namespace[name]
    fn.__doc__ = "Generated from the field declaration:\n\n" + "\n".join(lines)
    return fn
