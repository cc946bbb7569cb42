"""The API's documentation pages, working offline: Swagger UI (``/docs``) and ReDoc
(``/redoc``) load their scripts and styles from shop itself, taken from the installed
``fastapi-offline`` package, instead of from a CDN (FastAPI's default: a blank page without
internet access).

The assets are served by one GET route that knows each file by name (no directory is
mounted: nothing else can be asked for, and a 405 lists the path's methods truly).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

from invariant.domain.errors import NotFoundError

ASSETS = "/docs/assets"
_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
          "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}
_OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def _asset_directory() -> Path:
    return Path(str(importlib.resources.files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` with local assets (``app`` made with
    ``docs_url=None, redoc_url=None``)."""
    directory = _asset_directory()
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        if name not in _FILES:
            raise NotFoundError(f"no documentation asset {name!r}")
        return FileResponse(directory / name, media_type=_FILES[name])

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url, title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + _OAUTH2_REDIRECT,
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            # no badge from the online validator: the page must not reach out
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None})

    @app.get(_OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + openapi_url, title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png", with_google_fonts=False)
