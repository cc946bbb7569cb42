"""The same shop, configured for the distributed set-up: PostgreSQL and NATS JetStream
(``INVARIANT_BROKER=nats``) instead of SQLite and the in-database broker. Every message
between contexts (sign-up emails, invoices, analytics) crosses the real NATS server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from invariant.config import Settings
from invariant.messaging.brokers.nats import NatsBroker
from tests.conftest import POSTGRES_DSN, fresh_pg_schema, require_server
from tests.messaging.conftest import NATS_URL
from tests.shop.conftest import ShopServer, eventually, serve, shop_settings
from tests.shop.shopping import place, settled

pytestmark = pytest.mark.postgres


@pytest.fixture
async def distributed(tmp_path: Path) -> AsyncIterator[ShopServer]:
    channel = f"shop_{uuid.uuid4().hex[:10]}"
    try:
        import nats

        probe = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
        await probe.close()
    except Exception as exc:
        require_server("NATS", exc)
    async with fresh_pg_schema() as schema:
        settings = Settings.from_env({
            "INVARIANT_STORE": "postgres", "INVARIANT_POSTGRES_DSN": POSTGRES_DSN,
            "INVARIANT_POSTGRES_SCHEMA": schema, "INVARIANT_POSTGRES_POOL": "10",
            "INVARIANT_BROKER": "nats", "INVARIANT_BROKER_URL": NATS_URL,
            "INVARIANT_BROKER_CHANNEL": channel})
        try:
            async with serve(shop_settings(tmp_path, settings)) as running:
                assert isinstance(running.shop.broker, NatsBroker)
                yield running
        finally:
            nc = await nats.connect(NATS_URL)
            try:
                await nc.jetstream().delete_stream(channel.upper())
            finally:
                await nc.close()


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
