"""A span's status code, error cause and protocol, from Envoy and OTel attributes.

Status code string: `grpc:<code>` when a gRPC status is present (gRPC answers HTTP 200 even when
it fails), else the HTTP status (`"503"`), else `""`.

A request is an error when any of these holds; `ErrorCause` is the FIRST that applies, in the
order of app/rules/error_cause.py (shared with waypoint request metrics):

1. `RESPONSE_FLAGS` — Envoy `response_flags` other than `-`/empty (UF, URX, UH, NR, UC, DC, UT …);
   `DI` (delay injected by fault injection) alone is not a failure and is ignored.
2. `GRPC` — `grpc.status_code` / `rpc.grpc.status_code` non-zero.
3. `HTTP_5XX` — `http.status_code` / `http.response.status_code` ≥ 500.
4. `SPAN_STATUS` — the span's status is ERROR (what the OTel connector and Tempo use alone).
"""

from __future__ import annotations

from app.domain import AttrValue, ErrorCause
from app.hot_path import BoundedMemo
from app.rules.error_cause import first_error_cause

_CACHE_MAX = 4096
# (http status attribute, response_flags, status_error) → result, for spans without a gRPC status
# whose values are str/int/None (Envoy writes strings): a handful of distinct keys per mesh.
# Exact types only, so True/1/1.0 (equal as dict keys) never share an entry.
_cache: BoundedMemo[
    tuple[AttrValue | None, AttrValue | None, bool], tuple[str, ErrorCause | None]
] = BoundedMemo(_CACHE_MAX)
_CACHEABLE = (str, int, type(None))


def _int(value: AttrValue | None) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    text = value.strip()
    return int(text) if text.isdigit() else None


def span_status(
    attributes: dict[str, AttrValue], status_error: bool
) -> tuple[str, ErrorCause | None]:
    """(status code string, first applicable error cause or None)."""
    get = attributes.get
    if "grpc.status_code" not in attributes and "rpc.grpc.status_code" not in attributes:
        http_raw = get("http.status_code", get("http.response.status_code"))
        flags_raw = get("response_flags")
        if type(http_raw) in _CACHEABLE and type(flags_raw) in _CACHEABLE:
            key = (http_raw, flags_raw, status_error)
            cached = _cache.get(key)
            if cached is None:
                cached = _cache.set(key, _span_status(attributes, status_error))
            return cached
    return _span_status(attributes, status_error)


def _span_status(
    attributes: dict[str, AttrValue], status_error: bool
) -> tuple[str, ErrorCause | None]:
    grpc = _int(attributes.get("grpc.status_code", attributes.get("rpc.grpc.status_code")))
    http = _int(attributes.get("http.status_code", attributes.get("http.response.status_code")))
    code = f"grpc:{grpc}" if grpc is not None else (str(http) if http is not None else "")
    flags = attributes.get("response_flags")
    flags_text = "" if flags is None else str(flags).strip()
    return code, first_error_cause(flags_text, bool(grpc), http, status_error)


def span_protocol(attributes: dict[str, AttrValue]) -> str:
    """grpc | db | messaging | http. Spans are L7, so anything else is counted as http."""
    if (
        "grpc.status_code" in attributes
        or "rpc.grpc.status_code" in attributes
        or attributes.get("rpc.system") == "grpc"
    ):
        return "grpc"
    if "db.system" in attributes:
        return "db"
    if "messaging.system" in attributes:
        return "messaging"
    return "http"
