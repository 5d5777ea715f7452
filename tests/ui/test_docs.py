"""/docs and the bundled assets: nothing the page loads comes from another origin (an air-gapped
cluster reaches no CDN), and what is vendored is what frontend/package-lock.json pins."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from app.ui.assets import STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]
_URL = re.compile(r"""(?:src|href)=["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""")


def _client(tmp_path: Path, **settings: object) -> TestClient:
    return TestClient(
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}", **settings))
    )


def test_docs_loads_only_bundled_same_origin_assets(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        urls = [a or b for a, b in _URL.findall(page.text)]
        assert any(u.endswith("swagger-ui-bundle.js") for u in urls), urls
        assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
        assert "validatorUrl" in page.text and '"validatorUrl": null' in page.text
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            assert response.content, url
        assert client.get("/redoc").status_code == 404  # redoc would load from a CDN


def test_vendored_files_are_the_locked_versions_with_their_licences() -> None:
    lock = json.loads((ROOT / "frontend" / "package-lock.json").read_text())
    record = json.loads((STATIC_DIR / "vendor" / "VENDORED.json").read_text())
    assert record
    for entry in record:
        locked = lock["packages"][f"node_modules/{entry['package']}"]
        assert (entry["version"], entry["integrity"]) == (locked["version"], locked["integrity"])
        if "bundled_into" in entry:  # part of the web view's bundle: its licence collected
            assert (STATIC_DIR / entry["bundled_into"]).is_file()
            licences = (STATIC_DIR / "app.LICENSES.txt").read_text()
            assert f"{entry['package']} {entry['version']} ({entry['license']})" in licences
            continue
        folder = STATIC_DIR / "vendor" / entry["package"]
        assert (folder / "LICENSE").is_file()
        assert all((folder / f).is_file() for f in entry["files"])
    bundled = {e["package"] for e in record if "bundled_into" in e}
    imported = set(json.loads((ROOT / "frontend" / "package.json").read_text())["dependencies"])
    assert bundled == imported - {e["package"] for e in record if "files" in e}


def test_assets_load_without_the_api_token_and_docs_still_asks_for_it(tmp_path: Path) -> None:
    with _client(tmp_path, api_token="s3cret") as client:
        css = client.get("/ui/assets/vendor/swagger-ui-dist/swagger-ui.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert client.get("/docs").status_code == 401
        assert client.get("/docs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/ui/assets/../../graph").status_code in {401, 404}
