"""The console's tests run against a shop with a module that can be made to fail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from invariant.config import Settings
from shop.platform.runtime import default_modules
from tests.shop.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ShopServer, serve, shop_settings
from tests.shop.console.kit import ConsoleClient, Troubles


@pytest.fixture
def troubles() -> Troubles:
    return Troubles.make()


@pytest.fixture
async def shop(tmp_path: Path, troubles: Troubles) -> AsyncIterator[ShopServer]:
    settings = shop_settings(tmp_path, Settings(store="sqlite",
                                                sqlite_path=tmp_path / "shop.db"))
    async with serve(settings, modules=[*default_modules(), troubles.module]) as running:
        yield running


@pytest.fixture
async def admin(shop: ShopServer) -> ConsoleClient:
    console = ConsoleClient(shop.client)
    response = await console.log_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert (response.status_code, response.headers["location"]) == (303, "/console/streams")
    return console
