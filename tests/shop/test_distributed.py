"""The same shop, configured for the distributed set-up: PostgreSQL and NATS JetStream
(``INVARIANT_BROKER=nats``) instead of SQLite and the in-database broker. Every message
between contexts (sign-up emails, invoices, analytics) crosses the real NATS server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.shop.conftest import ShopServer, eventually
from tests.shop.shopping import place, settled

pytestmark = pytest.mark.postgres


async def test_sign_up_order_invoice_and_analytics_over_nats(distributed: ShopServer) -> None:
    server = distributed
    customer = await server.customer("nat@example.com")  # the code crossed NATS to the email
    order_id = await place(server, customer, ("keyboard", 1))
    order = await settled(server, customer, order_id)
    assert order["status"] == "shipped", order

    async def paid_invoice() -> dict[str, Any] | None:
        response = await server.client.get("/billing/invoices", headers=customer)
        items = response.json()["items"]
        return items[0] if items and items[0]["status"] == "paid" else None

    invoice = await eventually(paid_invoice, what="a paid invoice fed through NATS")
    assert invoice["order_id"] == order_id
    admin = await server.admin()

    async def shipped_count() -> dict[str, Any] | None:
        body = (await server.client.get("/admin/analytics", headers=admin)).json()
        return body if body["orders"]["shipped"] == 1 else None

    await eventually(shipped_count, what="analytics fed through NATS")
    assert await server.mail("nat@example.com", "shipped") is not None
