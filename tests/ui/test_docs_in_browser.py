"""/docs in a real browser: Swagger UI renders the API from the bundled assets, with no console
error and no request to any origin but meshstitch's own."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from app.settings import Settings
from app.sim.harness import serve_meshstitch
from tests.ports import free_port
from tests.ui.browser import chromium_page


def test_docs_renders_the_api_from_its_own_origin(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        host="127.0.0.1",
        http_port=free_port(),
        grpc_port=free_port(),
    )
    with serve_meshstitch(settings) as running, chromium_page() as (page, log):
        page.goto(f"{running.base_url}/docs")
        # Swagger UI lists each operation once it has fetched and rendered /openapi.json.
        page.wait_for_selector("#operations-graph-graph_graph_get", timeout=30_000)
        assert page.locator(".opblock-summary-path").count() >= 6
        origin = urlsplit(running.base_url).netloc
        foreign = [u for u in log.requests if urlsplit(u).netloc not in {origin, ""}]
        assert foreign == [], foreign
        assert any(u.endswith("/openapi.json") for u in log.requests), log.requests
        assert log.console_errors == [] and log.page_errors == [], log
