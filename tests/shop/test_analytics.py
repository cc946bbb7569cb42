"""Analytics over real HTTP: the sales report counts what integration events tell it, kept
in the read-model database or in Redis (``SHOP_ANALYTICS_REDIS_URL``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from invariant.config import Settings
from invariant.domain import ConfigurationError
from shop.analytics.redis_store import RedisSalesReports
from tests.conftest import require_server
from tests.messaging.conftest import REDIS_URL
from tests.shop.conftest import ShopServer, eventually, serve, shop_settings
from tests.shop.shopping import place, settled


@pytest.fixture(params=["sql", "redis"])
async def server(request: pytest.FixtureRequest, backend: Settings, tmp_path: Path
                 ) -> AsyncIterator[ShopServer]:
    """A running shop on each backend, its report in SQL, then in Redis (a fresh prefix,
    cleared afterwards)."""
    if request.param == "sql":
        async with serve(shop_settings(tmp_path, backend)) as running:
            yield running
        return
    reports = RedisSalesReports(REDIS_URL, prefix=f"test:analytics:{uuid.uuid4().hex}:")
    try:
        async with reports.connected():
            async with serve(shop_settings(tmp_path, backend, analytics_redis_url=REDIS_URL,
                                           analytics_redis_prefix=reports.prefix)) as running:
                yield running
            await reports.clear()
    except ConfigurationError as exc:
        require_server("Redis", exc)


async def test_the_report_counts_orders_and_units_for_admins_only(server: ShopServer) -> None:
    nia = await server.customer("nia@example.com")
    admin = await server.admin()
    shipped = await place(server, nia, ("mouse", 2))
    cancelled = await place(server, nia, ("poster", 3))
    assert (await settled(server, nia, shipped))["status"] == "shipped"
    assert (await settled(server, nia, cancelled))["status"] == "cancelled"

    async def report() -> dict[str, Any] | None:
        body: dict[str, Any] = (await server.client.get("/admin/analytics",
                                                        headers=admin)).json()
        orders = body["orders"]
        return body if orders["shipped"] == 1 and orders["cancelled"] == 1 else None

    body = await eventually(report, what="both orders counted")
    assert body["orders"]["placed"] == 2
    assert body["revenue"] == [{"currency": "USD", "charged": "59.00", "refunded": "0.00",
                                "net": "59.00"}]
    units = {p["product_id"]: (p["ordered"], p["cancelled"], p["shipped"])
             for p in body["products"]}
    assert units == {"mouse": (2, 0, 2), "poster": (3, 3, 0)}
    assert (await server.client.get("/admin/analytics", headers=nia)).status_code == 403
