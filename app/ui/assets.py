"""What the browser loads, shipped inside the package (app/ui/static/, built by `make ui` from
frontend/package-lock.json) and served by meshstitch itself: an air-gapped cluster reaches no CDN.

`/docs` is FastAPI's Swagger UI page pointed at the vendored swagger-ui-dist instead of jsDelivr,
with the online validator off (it would send the schema to validator.swagger.io).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_PATH = "/ui/assets"
SWAGGER = f"{ASSETS_PATH}/vendor/swagger-ui-dist"


def mount_assets(app: FastAPI) -> None:
    app.mount(ASSETS_PATH, StaticFiles(directory=STATIC_DIR), name="ui-assets")


def build_docs_router(title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    router = APIRouter()

    @router.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    return router
