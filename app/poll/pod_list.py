"""`GET` a pod list from the Kubernetes API: ztunnel discovery and the pod directory both list pods.

One pooled client per list, on the API server's CA and client certificate (not the scrapes').
A failed listing is recorded on the caller's TargetState and answers None, so the caller keeps
what it had.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from app.poll.kube_access import KubeAccess
from app.poll.target_state import ERROR, INVALID, TIMEOUT, TargetState

T = TypeVar("T")


class PodListClient:
    def __init__(
        self, access: KubeAccess, path: str, params: dict[str, str], *, timeout_s: float
    ) -> None:
        self._access = access
        self._url = f"{access.server}{path}"
        self._params, self._timeout_s = params, timeout_s
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(verify=self._access.verify, timeout=self._timeout_s)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def read(self, now_s: float, state: TargetState, parse: Callable[[Any], T]) -> T | None:
        """`parse(items)` of the list. A bad answer (ValueError, AttributeError, TypeError from
        the JSON or from `parse`) is INVALID; the state is updated either way."""
        try:
            response = await self._http().get(
                self._url, params=self._params, headers=self._access.headers()
            )
            response.raise_for_status()
            parsed = parse(response.json().get("items"))
        except httpx.TimeoutException:
            state.failed(now_s, TIMEOUT, f"timed out after {self._timeout_s}s")
            return None
        except httpx.HTTPError as exc:
            state.failed(now_s, ERROR, f"{type(exc).__name__}: {exc}")
            return None
        except (ValueError, AttributeError, TypeError) as exc:
            state.failed(now_s, INVALID, f"unexpected pod list: {exc}")
            return None
        state.succeeded(now_s)
        return parsed
