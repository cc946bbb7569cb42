"""Ordering over real HTTP, on SQLite and PostgreSQL: the cart, the credit limit, who sees
which order, and orders fulfilled across inventory, payments and shipping (or cancelled,
with what was done undone)."""

from __future__ import annotations

import re
from typing import Any

from tests.shop.conftest import PROBLEM, ShopServer, eventually
from tests.shop.shopping import available, order_with, place, provider, settled


async def test_an_order_is_reserved_charged_shipped_billed_and_counted(
        server: ShopServer) -> None:
    alice = await server.customer("alice@example.com")
    admin = await server.admin()
    keyboards = await available(server, "keyboard")
    order_id = await place(server, alice, ("keyboard", 1), ("mouse", 2))

    order = await settled(server, alice, order_id)
    assert order["status"] == "shipped"
    assert re.fullmatch(r"TRK-[0-9A-F]{10}", order["tracking_number"])
    assert order["fulfilment"] == {"phase": "shipped", "payment_attempts": 1,
                                   "tracking_number": order["tracking_number"],
                                   "reason": None}
    assert order["total"] == {"amount": "148.00", "currency": "USD"}
    assert await available(server, "keyboard") == keyboards - 1
    assert (await provider(server, admin))["charges"] == 1

    async def invoice() -> dict[str, Any] | None:
        response = await server.client.get("/billing/invoices", headers=alice)
        items = response.json()["items"]
        return items[0] if items and items[0]["status"] == "paid" else None

    paid = await eventually(invoice, what="a paid invoice")
    assert paid["order_id"] == order_id
    assert paid["paid"] == {"amount": "148.00", "currency": "USD"}

    async def report() -> dict[str, Any] | None:
        body = (await server.client.get("/admin/analytics", headers=admin)).json()
        return body if body["orders"]["shipped"] == 1 else None

    counted = await eventually(report, what="the shipment counted")
    assert counted["orders"] == {"placed": 1, "cancelled": 0, "shipped": 1}
    assert counted["revenue"] == [{"currency": "USD", "charged": "148.00",
                                   "refunded": "0.00", "net": "148.00"}]
    units = {p["product_id"]: p["shipped"] for p in counted["products"]}
    assert units == {"keyboard": 1, "mouse": 2}

    async def listed() -> dict[str, Any] | None:
        body: dict[str, Any] = (await server.client.get("/orders", headers=alice)).json()
        return body if body["items"] and body["items"][0]["status"] == "shipped" else None

    mine = await eventually(listed, what="the order listed as shipped")
    assert [o["order_id"] for o in mine["items"]] == [order_id] and mine["total"] == 1
    assert mine["items"][0]["items"] == 3
    response = await server.client.post(f"/orders/{order_id}/cancel", headers=alice)
    assert response.status_code == 422, "a shipped order can no longer be cancelled"
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_an_order_short_of_stock_is_cancelled_and_nothing_is_charged(
        server: ShopServer) -> None:
    bob = await server.customer("bob@example.com")
    admin = await server.admin()
    order_id = await place(server, bob, ("poster", 2), ("mouse", 1))
    order = await settled(server, bob, order_id)
    assert order["status"] == "cancelled"
    assert order["cancel_reason"].startswith("out of stock")
    assert "poster" in order["cancel_reason"]
    assert order["fulfilment"]["payment_attempts"] == 0
    assert (await provider(server, admin))["charges"] == 0
    assert await available(server, "poster") == 1


async def test_three_declined_payments_cancel_the_order_and_release_its_stock(
        server: ShopServer) -> None:
    carol = await server.customer("carol@example.com")
    admin = await server.admin()
    await provider(server, admin, "decline")
    before = await available(server, "monitor")
    order_id = await place(server, carol, ("monitor", 2))
    order = await settled(server, carol, order_id)
    assert order["status"] == "cancelled"
    assert order["cancel_reason"] == "payment declined 3 times"
    assert order["fulfilment"]["payment_attempts"] == 3
    await eventually(lambda: _back_to(server, "monitor", before), what="stock released")
    assert (await provider(server, admin))["charges"] == 0


async def test_a_provider_that_times_out_three_times_cancels_the_order(
        server: ShopServer) -> None:
    dave = await server.customer("dave@example.com")
    admin = await server.admin()
    await provider(server, admin, "timeout")
    before = await available(server, "keyboard")
    order_id = await place(server, dave, ("keyboard", 1))
    order = await settled(server, dave, order_id)
    assert order["cancel_reason"] == "payment timed out 3 times"
    assert order["fulfilment"] == {"phase": "cancelled", "payment_attempts": 3,
                                   "tracking_number": None,
                                   "reason": "payment timed out 3 times"}
    await eventually(lambda: _back_to(server, "keyboard", before), what="stock released")


async def test_a_customer_cancels_before_shipment_and_fulfilment_undoes_its_steps(
        server: ShopServer) -> None:
    erin = await server.customer("erin@example.com")
    admin = await server.admin()
    await provider(server, admin, "timeout")  # holds the order in the payment phase
    before = await available(server, "mouse")
    order_id = await place(server, erin, ("mouse", 3))
    response = await server.client.post(f"/orders/{order_id}/cancel", headers=erin,
                                        json={"reason": "changed my mind"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    order = await settled(server, erin, order_id)
    assert order["cancel_reason"] == "changed my mind"
    assert order["fulfilment"]["reason"] == "changed my mind"
    await eventually(lambda: _back_to(server, "mouse", before), what="stock released")
    assert (await provider(server, admin))["charges"] == 0


async def test_the_cart_and_the_credit_limit(server: ShopServer) -> None:
    gus = await server.customer("gus@example.com")
    order_id = await order_with(server, gus, ("monitor", 3))
    url = f"/orders/{order_id}"
    response = await server.client.patch(f"{url}/items/monitor", headers=gus,
                                         json={"quantity": 4})
    assert response.json()["total"] == {"amount": "996.00", "currency": "USD"}
    response = await server.client.post(f"{url}/items", headers=gus,
                                        json={"product_id": "mouse", "quantity": 1})
    assert response.status_code == 422, response.text
    assert "credit limit" in response.json()["detail"]
    response = await server.client.patch(f"{url}/items/monitor", headers=gus,
                                         json={"quantity": 5})
    assert response.status_code == 422
    response = await server.client.delete(f"{url}/items/monitor", headers=gus)
    assert response.status_code == 200 and response.json()["lines"] == []
    response = await server.client.post(f"{url}/place", headers=gus)
    assert response.status_code == 422 and "empty" in response.json()["detail"]
    response = await server.client.post(f"{url}/items", headers=gus,
                                        json={"product_id": "no-such-thing"})
    assert response.status_code == 404
    response = await server.client.post(f"{url}/items", headers=gus,
                                        json={"product_id": "mouse", "quantity": 0})
    assert response.status_code == 422


async def test_customers_see_only_their_own_orders(server: ShopServer) -> None:
    hal = await server.customer("hal@example.com")
    ivy = await server.customer("ivy@example.com")
    order_id = await order_with(server, hal, ("mouse", 1))
    for method, path, body in [
        ("GET", f"/orders/{order_id}", None),
        ("POST", f"/orders/{order_id}/items", {"product_id": "mouse", "quantity": 1}),
        ("DELETE", f"/orders/{order_id}/items/mouse", None),
        ("POST", f"/orders/{order_id}/place", None),
        ("POST", f"/orders/{order_id}/cancel", None),
    ]:
        response = await server.client.request(method, path, headers=ivy, json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert (await server.client.get("/orders", headers=ivy)).json()["total"] == 0
    assert (await server.client.get(f"/orders/{order_id}")).status_code == 401
    response = await server.client.get(f"/orders/{order_id}", headers=hal)
    assert response.json()["status"] == "draft"


async def _back_to(server: ShopServer, product_id: str, units: int) -> bool | None:
    return True if await available(server, product_id) == units else None


async def test_a_request_s_correlation_id_is_carried_by_the_events_it_makes(
        server: ShopServer) -> None:
    customer = await server.customer("flow@example.com")
    answer = await server.client.post("/orders",
                                      headers={**customer, "X-Correlation-ID": "cart-17"})
    assert answer.status_code == 201 and answer.headers["X-Correlation-ID"] == "cart-17"
    order_id = answer.json()["order_id"]
    [started] = await server.shop.app.store.read_stream(f"ordering_order-{order_id}")
    assert started.correlation_id == "cart-17"
    second = await server.client.post("/orders", headers=customer)  # none given: a new one
    assert second.headers["X-Correlation-ID"] != "cart-17"
