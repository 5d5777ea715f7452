"""`GET` a list from the Kubernetes API: ztunnel discovery and the pod directory list pods, the
pod directory also Services (app/poll/service_list.py).

One pooled client per list, on the API server's CA and client certificate (not the scrapes').
A failed listing is recorded on the caller's TargetState and answers None, so the caller keeps
what it had. Cluster-wide lists are read in pages (`limit`/`continue`, the API's chunked list,
as kubectl does with 500) and stop at `max_items`, so one answer never holds the whole cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from app.poll.kube_access import KubeAccess
from app.poll.target_state import ERROR, INVALID, TIMEOUT, TargetState

T = TypeVar("T")
PAGE_SIZE = 500


class PodListClient:
    def __init__(
        self,
        access: KubeAccess,
        path: str,
        params: dict[str, str],
        *,
        timeout_s: float,
        max_items: int | None = None,
        what: str = "pod list",
    ) -> None:
        """`max_items` set: paged, at most that many items are read; None: one unpaged `GET`."""
        self._access = access
        self._url = f"{access.server}{path}"
        self._params, self._timeout_s = params, timeout_s
        self._max_items, self._what = max_items, what
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(verify=self._access.verify, timeout=self._timeout_s)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _get(self, params: dict[str, str]) -> Any:
        response = await self._http().get(self._url, params=params, headers=self._access.headers())
        response.raise_for_status()
        return response.json()

    async def _items(self) -> Any:
        if self._max_items is None:
            return (await self._get(self._params)).get("items")
        items: list[Any] = []
        params = {**self._params, "limit": str(min(PAGE_SIZE, self._max_items))}
        while len(items) < self._max_items:
            body = await self._get(params)
            page = body.get("items")
            if not isinstance(page, list):
                raise ValueError(f"no items in the {self._what}")
            items.extend(page[: self._max_items - len(items)])
            token = (body.get("metadata") or {}).get("continue")
            if not token or not page:  # an empty page with a token would never end
                break
            params = {**params, "continue": str(token)}
        return items

    async def read(self, now_s: float, state: TargetState, parse: Callable[[Any], T]) -> T | None:
        """`parse(items)` of the list. A bad answer (ValueError, AttributeError, TypeError from
        the JSON or from `parse`) is INVALID; the state is updated either way. An expired
        `continue` token (410 Gone) fails the listing like any HTTP error; the next one restarts."""
        try:
            parsed = parse(await self._items())
        except httpx.TimeoutException:
            state.failed(now_s, TIMEOUT, f"timed out after {self._timeout_s}s")
            return None
        except httpx.HTTPError as exc:
            state.failed(now_s, ERROR, f"{type(exc).__name__}: {exc}")
            return None
        except (ValueError, AttributeError, TypeError) as exc:
            state.failed(now_s, INVALID, f"unexpected {self._what}: {exc}")
            return None
        state.succeeded(now_s)
        return parsed
