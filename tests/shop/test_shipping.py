"""Shipping over real HTTP and the shared command bus, on SQLite and PostgreSQL: the
carrier's failure switch, idempotent shipments with deterministic tracking numbers."""

from __future__ import annotations

from shop.shipping.application import CancelShipment, CreateShipment, ShipmentCreated
from shop.shipping.domain import tracking_number
from tests.shop.conftest import PROBLEM, ShopServer


async def count(server: ShopServer, event_type: str, order: str) -> int:
    return len(await server.events(f"shipping_shipment-{order}", event_type))


async def test_the_failure_switch_makes_the_carrier_refuse(server: ShopServer) -> None:
    admin = await server.admin()
    assert (await server.client.get("/admin/shipping/failures", headers=admin)).json() == \
        {"refuse": False}
    switched = await server.client.put("/admin/shipping/failures", headers=admin,
                                       json={"refuse": True})
    assert switched.status_code == 200 and switched.json() == {"refuse": True}
    assert (await server.client.get("/admin/shipping/failures", headers=admin)).json() == \
        {"refuse": True}
    refused = await server.shop.commands.dispatch(
        CreateShipment(order_id="order-1", customer_id="customer-1"))
    assert refused.value == "refused"
    shown = (await server.client.get("/admin/shipping/shipments/order-1", headers=admin)).json()
    assert shown == {"order_id": "order-1", "status": "refused", "tracking_number": None}

    await server.client.put("/admin/shipping/failures", headers=admin, json={"refuse": False})
    repeated = await server.shop.commands.dispatch(
        CreateShipment(order_id="order-1", customer_id="customer-1"))
    assert repeated.value == "refused"  # the first outcome stands
    created = await server.shop.commands.dispatch(
        CreateShipment(order_id="order-2", customer_id="customer-1"))
    assert created.value == "created"


async def test_shipments_are_created_once_with_a_tracking_number(server: ShopServer) -> None:
    admin = await server.admin()
    for _ in range(2):
        result = await server.shop.commands.dispatch(
            CreateShipment(order_id="order-7", customer_id="customer-1"))
        assert result.value == "created"
    assert await count(server, ShipmentCreated.event_type, "order-7") == 1
    shown = (await server.client.get("/admin/shipping/shipments/order-7", headers=admin)).json()
    assert shown["tracking_number"] == tracking_number("order-7")
    assert shown["tracking_number"].startswith("TRK-") and len(shown["tracking_number"]) == 14

    for _ in range(2):
        cancelled = await server.shop.commands.dispatch(CancelShipment(order_id="order-7"))
        assert cancelled.value == "cancelled"
    assert await count(server, "shipping.ShipmentCancelled", "order-7") == 1
    none = (await server.client.get("/admin/shipping/shipments/order-8", headers=admin)).json()
    assert none == {"order_id": "order-8", "status": "new", "tracking_number": None}


async def test_only_admins_switch_failures_and_bad_input_is_a_problem(
        server: ShopServer) -> None:
    assert (await server.client.put("/admin/shipping/failures",
                                    json={"refuse": True})).status_code == 401
    customer = await server.customer("sam@example.com")
    assert (await server.client.put("/admin/shipping/failures", headers=customer,
                                    json={"refuse": True})).status_code == 403
    assert (await server.client.get("/admin/shipping/failures",
                                    headers=customer)).status_code == 403
    admin = await server.admin()
    for body in ({}, {"refuse": "maybe"}, {"refuse": True, "also": 1}):
        bad = await server.client.put("/admin/shipping/failures", headers=admin, json=body)
        assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
        assert bad.json()["errors"][0]["field"].startswith("body")
    assert (await server.client.get("/admin/shipping/failures", headers=admin)).json() == \
        {"refuse": False}
    assert (await server.client.get("/admin/shipping/shipments/a%20b",
                                    headers=admin)).status_code == 422
