"""Errors under /grafana, rendered in one place as app/api/problems.py does for REST.

The simpod JSON datasource shows `err.data.message` of a non-2xx answer, so an error is
`{"message": ...}`. Routes raise; `GrafanaRoute` answers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from app.grafana.requests import GrafanaRequestError
from app.graph.queries import UnknownNode

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Bad request; the plugin shows `message`",
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"message": {"type": "string"}}}
            }
        },
    }
}


def grafana_error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


class GrafanaRoute(APIRoute):
    """A route whose request errors (400) and unknown nodes (404) become `{"message": ...}`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except GrafanaRequestError as exc:
                return grafana_error(str(exc))
            except UnknownNode as exc:
                return grafana_error(exc.describe("this time range"), 404)

        return answer
