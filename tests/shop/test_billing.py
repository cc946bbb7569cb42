"""Billing over real HTTP: invoices follow orders and payments (integration events through
the broker and the inbox), and each customer sees only their own."""

from __future__ import annotations

from typing import Any

from tests.shop.conftest import ShopServer, eventually
from tests.shop.shopping import available, place, provider, settled


async def invoices(server: ShopServer, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await server.client.get("/billing/invoices", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_refused_shipment_refunds_the_payment_and_the_invoice_says_so(
        server: ShopServer) -> None:
    kim = await server.customer("kim@example.com")
    lee = await server.customer("lee@example.com")
    admin = await server.admin()
    response = await server.client.put("/admin/shipping/failures", headers=admin,
                                       json={"refuse": True})
    assert response.status_code == 200, response.text
    before = await available(server, "keyboard")
    order_id = await place(server, kim, ("keyboard", 1))

    order = await settled(server, kim, order_id)
    assert order["status"] == "cancelled"
    assert order["cancel_reason"].startswith("shipment refused")
    assert await available(server, "keyboard") == before
    assert await provider(server, admin) == {"mode": "approve", "charges": 1, "refunds": 1}

    async def refunded() -> dict[str, Any] | None:
        found = await invoices(server, kim)
        return found[0] if found and found[0]["status"] == "refunded" else None

    invoice = await eventually(refunded, what="a refunded invoice")
    assert invoice["order_id"] == order_id and invoice["invoice_id"] == f"INV-{order_id}"
    money = {"amount": "89.00", "currency": "USD"}
    assert (invoice["total"], invoice["paid"], invoice["refunded"]) == (money, money, money)
    assert [(x["product_id"], x["quantity"]) for x in invoice["lines"]] == [("keyboard", 1)]
    assert await invoices(server, lee) == []


async def test_an_order_cancelled_before_payment_leaves_a_void_invoice(
        server: ShopServer) -> None:
    max_ = await server.customer("max@example.com")
    order_id = await place(server, max_, ("poster", 5))
    assert (await settled(server, max_, order_id))["status"] == "cancelled"

    async def void() -> dict[str, Any] | None:
        found = await invoices(server, max_)
        return found[0] if found and found[0]["status"] == "void" else None

    invoice = await eventually(void, what="a void invoice")
    assert invoice["paid"] is None and invoice["refunded"] is None
    assert (await server.client.get("/billing/invoices")).status_code == 401
