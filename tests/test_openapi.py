"""openapi.yaml at the root is the contract: it must equal the running app's schema."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.cli import openapi_document

ROOT = Path(__file__).resolve().parents[1]


def test_openapi_yaml_equals_the_app_schema() -> None:
    committed = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    generated = yaml.safe_load(yaml.safe_dump(openapi_document(), sort_keys=False))
    assert committed == generated, "openapi.yaml is stale: run `make openapi` and commit it"


def test_the_drift_check_would_catch_a_changed_route() -> None:
    from fastapi import FastAPI

    doc = openapi_document()
    app = FastAPI(title=str(doc["info"]["title"]))  # type: ignore[index]

    @app.get("/not-in-the-contract")
    async def extra() -> dict[str, str]:
        return {}

    assert "/not-in-the-contract" not in doc["paths"]  # type: ignore[operator]
    assert app.openapi()["paths"].keys() != doc["paths"].keys()  # type: ignore[union-attr]
