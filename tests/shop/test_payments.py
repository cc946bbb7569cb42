"""Payments over real HTTP: the operator's switch on the fake payment provider."""

from __future__ import annotations

from tests.shop.conftest import ShopServer
from tests.shop.shopping import provider


async def test_only_admins_switch_the_provider_between_approve_decline_and_timeout(
        server: ShopServer) -> None:
    admin = await server.admin()
    customer = await server.customer("pat@example.com")
    assert await provider(server, admin) == {"mode": "approve", "charges": 0, "refunds": 0}
    assert (await provider(server, admin, "decline"))["mode"] == "decline"
    assert (await provider(server, admin, "timeout"))["mode"] == "timeout"
    assert (await provider(server, admin))["mode"] == "timeout"
    response = await server.client.put("/admin/payments/provider", headers=admin,
                                       json={"mode": "explode"})
    assert response.status_code == 422
    response = await server.client.put("/admin/payments/provider", headers=customer,
                                       json={"mode": "approve"})
    assert response.status_code == 403
    assert (await server.client.get("/admin/payments/provider")).status_code == 401
    assert (await provider(server, admin))["mode"] == "timeout"
