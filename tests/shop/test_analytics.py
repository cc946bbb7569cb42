"""Analytics over real HTTP: the sales report counts what integration events tell it."""

from __future__ import annotations

from typing import Any

from tests.shop.conftest import ShopServer, eventually
from tests.shop.shopping import place, settled


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
