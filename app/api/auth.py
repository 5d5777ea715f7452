"""Optional bearer-token authentication for the REST API and /grafana (MESHSTITCH_API_TOKEN).

A plain ASGI middleware rather than a dependency so no route can forget it. OTLP ingest has its
own token (MESHSTITCH_OTLP_TOKEN, checked by the transports), so `/v1/traces` is left to them.
Probes and `/metrics` stay open: kubelet and Prometheus must reach them, and they name no secret.
The comparison is app/bearer.py's, shared with the OTLP transports.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.problems import PROBLEM_JSON
from app.bearer import WRONG_TOKEN, bearer_matches

# /ui is the web view's shell (app/ui/shell.py): it holds no data and must load before it can ask
# for the token, which it then sends on every API call.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v1/traces", "/ui"})
# The web view's other pages and its bundled scripts and styles (app/ui/assets.py): the same for
# everyone, they name no secret.
OPEN_PREFIX = "/ui/"


class BearerTokenMiddleware:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path in OPEN_PATHS
            or path.startswith(OPEN_PREFIX)
            or scope["method"] == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        header = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None
        )
        if bearer_matches(header, self.token):
            await self.app(scope, receive, send)
            return
        await _refuse(scope, send)


async def _refuse(scope: Scope, send: Send) -> None:
    path = scope["path"]
    if path == "/grafana" or path.startswith("/grafana/"):
        # The simpod JSON datasource shows `message` of a non-2xx answer.
        body: dict[str, object] = {"message": WRONG_TOKEN}
        media_type = "application/json"
    else:
        body = {
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "detail": f"{WRONG_TOKEN} (Authorization: Bearer <MESHSTITCH_API_TOKEN>)",
            "instance": path,
        }
        media_type = PROBLEM_JSON
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", media_type.encode()),
                (b"content-length", str(len(payload)).encode()),
                (b"www-authenticate", b'Bearer realm="meshstitch"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
