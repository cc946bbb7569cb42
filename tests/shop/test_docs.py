"""/docs and /redoc work without internet access: every script, style and icon they load
comes from shop itself (issue #14: /docs was blank offline, Swagger UI came from a CDN)."""

from __future__ import annotations

import re

import pytest

from tests.shop.conftest import ShopServer

PAGES = {"/docs": "SwaggerUIBundle", "/redoc": "Redoc"}
"""Each page, and a name its script defines."""


@pytest.fixture
def server(sqlite_server: ShopServer) -> ShopServer:
    """The shop on SQLite: its pages do not depend on the store."""
    return sqlite_server


@pytest.mark.parametrize(("page", "script_defines"), PAGES.items())
async def test_a_documentation_page_loads_only_what_shop_serves(
        server: ShopServer, page: str, script_defines: str) -> None:
    response = await server.client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/html")
    html = response.text
    assert "://" not in html.replace("window.location.origin", "")  # no other host
    urls = re.findall(r'(?:src|href|spec-url)="([^"]+)"', html) + re.findall(
        r"url: '([^']+)'", html)
    assert "/openapi.json" in urls and len(urls) >= 3, urls
    scripts = 0
    for url in urls:
        assert url.startswith("/"), url
        asset = await server.client.get(url)
        assert asset.status_code == 200, url
        if url.endswith(".js"):
            scripts += 1
            assert asset.headers["content-type"].startswith("text/javascript")
            assert script_defines in asset.text and len(asset.content) > 100_000
        if url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css")
            assert ".swagger-ui" in asset.text
    assert scripts == 1


async def test_only_the_documentation_assets_are_served(server: ShopServer) -> None:
    for name in ("../../pyproject.toml", "core.py", "..%2F__init__.py", "nothing.js"):
        response = await server.client.get(f"/docs/assets/{name}")
        assert response.status_code == 404, name
    assert (await server.client.post("/docs/assets/favicon.png")).headers["allow"] == "GET"
