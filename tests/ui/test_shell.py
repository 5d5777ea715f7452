"""The web view's shell pages: served by meshstitch itself without the token (they hold no data),
with a Content-Security-Policy that keeps the page on its own origin, and the configuration the
page reads embedded as JSON that no setting can break out of."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.main import create_app
from app.settings import Settings

PAGES = ["/ui", "/ui/triage", "/ui/coverage", "/ui/traces/0123456789abcdef0123456789abcdef"]
_CONFIG = re.compile(r'<script type="application/json" id="meshstitch-config">(.*?)</script>', re.S)


def _client(tmp_path: Path, **settings: object) -> TestClient:
    return TestClient(
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}", **settings))
    )


def _config(html: str) -> dict[str, object]:
    found = _CONFIG.findall(html)
    assert len(found) == 1, html
    config: dict[str, object] = json.loads(found[0])
    return config


def test_every_page_is_the_shell_with_a_same_origin_policy(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        for path in PAGES:
            page = client.get(path)
            assert page.status_code == 200, path
            assert page.headers["content-type"].startswith("text/html")
            csp = page.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src 'self'" in csp
            assert "connect-src 'self'" in csp and "unsafe" not in csp
            assert _config(page.text) == {
                "version": "0.1.0",
                "traceUrlTemplate": None,
                "authRequired": False,
            }
            for asset in re.findall(r'(?:src|href)="(/ui/assets/[^"]+)"', page.text):
                loaded = client.get(asset)
                assert loaded.status_code == 200 and loaded.content, asset
        assert (
            client.get("/ui/assets/app.js")
            .headers["content-type"]
            .startswith(("text/javascript", "application/javascript"))
        )
        paths = client.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p.startswith("/ui")]


def test_pages_open_without_the_token_and_data_still_needs_it(tmp_path: Path) -> None:
    with _client(tmp_path, api_token="s3cret") as client:
        for path in PAGES:
            page = client.get(path)
            assert page.status_code == 200, path
            assert _config(page.text)["authRequired"] is True
            assert "s3cret" not in page.text
        assert client.get("/graph").status_code == 401
        assert client.get("/ui/../graph").status_code in {401, 404}
        assert client.get("/ui/traces/x/../../../graph").status_code in {401, 404}


def test_the_trace_link_template_is_embedded_as_inert_json(tmp_path: Path) -> None:
    template = "https://tempo.example/</script><script>alert(1)</script>/trace/{trace_id}"
    with _client(tmp_path, trace_url_template=template) as client:
        page = client.get("/ui").text
    assert "<script>alert(1)" not in page
    assert _config(page)["traceUrlTemplate"] == template


@pytest.mark.parametrize(
    "template",
    ["javascript:alert(1)//{trace_id}", "https://tempo.example/trace/", "ftp://x/{trace_id}"],
)
def test_a_trace_link_template_must_be_an_http_url_with_the_trace_id(template: str) -> None:
    with pytest.raises(ValidationError, match="trace_id"):
        Settings(trace_url_template=template)
