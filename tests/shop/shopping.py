"""Helpers of the ordering, payments, billing and analytics HTTP tests: fill a cart, place
it, and wait for fulfilment to settle."""

from __future__ import annotations

from typing import Any

from tests.shop.conftest import ShopServer, eventually

SETTLED = ("shipped", "cancelled")


async def order_with(server: ShopServer, headers: dict[str, str],
                     *items: tuple[str, int]) -> str:
    """A new draft order holding ``items`` (product id, quantity): its id."""
    response = await server.client.post("/orders", headers=headers)
    assert response.status_code == 201, response.text
    order_id: str = response.json()["order_id"]
    for product_id, quantity in items:
        response = await server.client.post(f"/orders/{order_id}/items", headers=headers,
                                            json={"product_id": product_id,
                                                  "quantity": quantity})
        assert response.status_code == 201, response.text
    return order_id


async def place(server: ShopServer, headers: dict[str, str], *items: tuple[str, int]) -> str:
    """Fill a new order with ``items`` and place it: its id."""
    order_id = await order_with(server, headers, *items)
    response = await server.client.post(f"/orders/{order_id}/place", headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "placed"
    return order_id


async def settled(server: ShopServer, headers: dict[str, str], order_id: str,
                  timeout: float = 15.0) -> dict[str, Any]:  # noqa: ASYNC109
    """The order once fulfilment is done with it (shipped or cancelled)."""
    async def probe() -> dict[str, Any] | None:
        response = await server.client.get(f"/orders/{order_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        fulfilment = body["fulfilment"] or {}
        done = body["status"] in SETTLED and fulfilment.get("phase") in SETTLED
        return body if done else None

    return await eventually(probe, timeout=timeout, what=f"order {order_id} to settle")


async def available(server: ShopServer, product_id: str) -> int:
    response = await server.client.get(f"/inventory/{product_id}")
    assert response.status_code == 200, response.text
    return int(response.json()["available"])


async def provider(server: ShopServer, admin: dict[str, str], mode: str | None = None
                   ) -> dict[str, Any]:
    """The payment provider's status, after switching it to ``mode`` if given."""
    if mode is None:
        response = await server.client.get("/admin/payments/provider", headers=admin)
    else:
        response = await server.client.put("/admin/payments/provider", headers=admin,
                                           json={"mode": mode})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
