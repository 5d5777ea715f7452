"""Reading what the simpod JSON datasource sends: the whole Grafana query request, tolerated.

Payloads arrive as objects (builder mode) or JSON strings (code mode, already interpolated);
multi-value variables arrive as lists, and "All" as a list or `$__all`; ad hoc filters arrive as
`filters` (plugin ≥ 0.6.4). Unknown keys are ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from app.domain import Coverage, Level
from app.graph.window import Window, WindowError, parse_instant_s


class GrafanaRequestError(ValueError):
    """Rendered as a non-2xx `{"message": ...}`, which the plugin shows in the panel."""


def parse_payload(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise GrafanaRequestError(
                f"payload is not valid JSON: {exc.msg} at position {exc.pos}"
            ) from None
        if isinstance(parsed, dict):
            return parsed
    raise GrafanaRequestError("payload must be a JSON object")


_REGEX_ESCAPE = re.compile(r"\\(.)")
# "All": the plugin's `$__all`, or the dashboard's custom all value `[]` where it arrives as text.
_ALL = (None, "", "$__all", "[]")


def _unregex(value: str) -> list[str]:
    r"""Builder mode interpolates variables with Grafana's `regex` format: one value escaped
    (`bookinfo\/productpage`), several as `(a|b)`. Node names hold none of `\()|`, so undo it."""
    if "\\" not in value and not (value.startswith("(") and value.endswith(")")):
        return [value]
    if value.startswith("(") and value.endswith(")"):
        parts = re.split(r"(?<!\\)\|", value[1:-1])
    else:
        parts = [value]
    return [_REGEX_ESCAPE.sub(r"\1", p) for p in parts]


def as_list(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [v for item in items if item not in _ALL for v in _unregex(str(item)) if v not in _ALL]


@dataclass(frozen=True, slots=True)
class Selection:
    """What a target asks for after payload and ad hoc filters are combined."""

    namespaces: frozenset[str] = frozenset()
    excluded_namespaces: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()
    coverage: Coverage | None = None
    level: Level = Level.SERVICE
    depth: int = 1
    direction: str = "both"
    top: int = 10
    # Most edges a graph or table frame carries, busiest first (as /graph's `limit`).
    limit: int = 2000
    extra: dict[str, Any] = field(default_factory=dict)


def _int(value: Any, default: int, low: int, high: int, name: str) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value[0] if isinstance(value, list) else value)
    except (TypeError, ValueError):
        raise GrafanaRequestError(f"{name} must be a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise GrafanaRequestError(f"{name} must be between {low} and {high}, got {number}")
    return number


def selection(payload: dict[str, Any], filters: list[Any]) -> Selection:
    namespaces, excluded, services = (
        set(as_list(payload.get("namespace"))),
        set(),
        set(as_list(payload.get("service"))),
    )
    coverage_values = as_list(payload.get("coverage"))
    for item in filters or []:
        if not isinstance(item, dict):
            continue
        key, op, value = item.get("key"), item.get("operator", "="), str(item.get("value", ""))
        if key == "namespace" and op == "=":
            namespaces.add(value)
        elif key == "namespace" and op == "!=":
            excluded.add(value)
        elif key == "service" and op == "=":
            services.add(value)
        elif key == "coverage" and op == "=":
            coverage_values = [value]
    try:
        coverage = Coverage(coverage_values[0]) if coverage_values else None
        level = (
            Level(as_list(payload.get("level"))[0])
            if as_list(payload.get("level"))
            else Level.SERVICE
        )
    except ValueError as exc:
        raise GrafanaRequestError(str(exc)) from None
    direction = (as_list(payload.get("direction")) or ["both"])[0]
    if direction not in {"both", "upstream", "downstream"}:
        raise GrafanaRequestError(
            f"direction must be both, upstream or downstream, got {direction!r}"
        )
    return Selection(
        namespaces=frozenset(namespaces),
        excluded_namespaces=frozenset(excluded),
        services=frozenset(services),
        coverage=coverage,
        level=level,
        depth=_int(payload.get("depth"), 1, 1, 6, "depth"),
        direction=direction,
        top=_int(payload.get("top"), 10, 1, 500, "top"),
        limit=_int(payload.get("limit"), 2000, 1, 50_000, "limit"),
    )


def request_window(body: dict[str, Any], now_s: float, default_s: float = 900.0) -> Window:
    rng = body.get("range")
    if not isinstance(rng, dict) or "from" not in rng or "to" not in rng:
        return Window(now_s - default_s, now_s)
    try:
        start, end = parse_instant_s(str(rng["from"])), parse_instant_s(str(rng["to"]))
    except WindowError as exc:
        raise GrafanaRequestError(str(exc)) from None
    if end <= start:
        raise GrafanaRequestError("range.from must be before range.to")
    return Window(start, end)
