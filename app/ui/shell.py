"""The web view's pages: one HTML shell for /ui, /ui/triage, /ui/coverage and /ui/traces/{id}
that loads the bundled app (app/ui/static/app.js, built by `make ui`) from meshstitch's own origin.

The shell carries no data, so it is served without the API token; the page asks for the token
and sends it as a bearer header on its API calls. Its configuration is embedded as JSON (not
script), and a Content-Security-Policy keeps the page on its own origin: no inline script, no
inline style attribute, nothing loaded or fetched from anywhere else.
"""

from __future__ import annotations

import json
from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from app.ui.assets import ASSETS_PATH

UI_PATHS = ("/ui", "/ui/triage", "/ui/coverage")
TRACE_PATH = "/ui/traces/{trace_id}"

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# Cytoscape.js adds a <style> element (one rule: its container is position: relative) unless an
# element with this id exists; the CSP forbids inline styles, so app.css carries that rule and
# its <link> has the id.
CYTOSCAPE_STYLESHEET_ID = "__________cytoscape_stylesheet"


def _json_for_html(value: object) -> str:
    # Inside <script type="application/json"> only "</" could end the element early.
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def shell_html(title: str, config: dict[str, object]) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" id="{CYTOSCAPE_STYLESHEET_ID}" href="{ASSETS_PATH}/app.css">
<script type="application/json" id="meshstitch-config">{_json_for_html(config)}</script>
<script defer src="{ASSETS_PATH}/app.js"></script>
</head>
<body>
<noscript>meshstitch's web view needs JavaScript; the same data is at /graph, /triage and
/coverage (see /docs).</noscript>
</body>
</html>
"""


def build_ui_router(*, version: str, trace_url_template: str, auth_required: bool) -> APIRouter:
    config: dict[str, object] = {
        "version": version,
        "traceUrlTemplate": trace_url_template or None,
        "authRequired": auth_required,
    }
    page = shell_html("meshstitch", config)
    router = APIRouter(include_in_schema=False)

    async def shell() -> HTMLResponse:
        return HTMLResponse(page, headers=HEADERS)

    async def trace_shell(trace_id: str) -> HTMLResponse:
        return HTMLResponse(page, headers=HEADERS)

    for path in UI_PATHS:
        router.add_api_route(path, shell, methods=["GET"])
    router.add_api_route(TRACE_PATH, trace_shell, methods=["GET"])
    return router
