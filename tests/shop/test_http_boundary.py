"""shop's HTTP boundary (issue #14, item 6): a 405 names every method of its path, and
request bodies are capped before they are parsed (413), over a real uvicorn server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from invariant.config import Settings
from tests.shop.conftest import PROBLEM, ShopServer, serve, shop_settings

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ShopServer]:
    settings = shop_settings(tmp_path, Settings(store="sqlite",
                                                sqlite_path=tmp_path / "shop.db"))
    async with serve(settings) as running:
        yield running


async def test_a_405_names_every_method_the_document_gives_its_path(server: ShopServer
                                                                   ) -> None:
    document = (await server.client.get("/openapi.json")).json()
    admin = await server.admin()
    shared = 0
    for template, operations in document["paths"].items():
        documented = sorted(m.upper() for m in operations)
        shared += len(documented) > 1
        path = re.sub(r"\{[^}]+\}", "x-1", template)
        for method in METHODS:
            if method in documented:
                continue
            response = await server.client.request(method, path, headers=admin)
            assert response.status_code == 405, (method, path, response.text)
            assert response.headers["allow"] == ", ".join(documented), (method, path)
            assert response.headers["content-type"].startswith(PROBLEM)
            assert response.json()["allowed"] == documented
    assert shared >= 6  # paths with more than one method: where Starlette named only one
    refused = await server.client.put("/orders", headers=admin)
    assert refused.headers["allow"] == "GET, POST"
