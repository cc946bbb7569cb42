"""Inventory over real HTTP and the shared command bus, on SQLite and PostgreSQL: sample
stock, availability, admin stock counts, and reservations that stay correct under races."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from invariant.application import CommandResult
from invariant.domain import ValidationError
from shop.inventory.application import (
    CommitStock,
    GetStockLevel,
    ReleaseStock,
    ReserveStock,
    SetStock,
    StockLevel,
    StockLine,
    StockReleased,
    StockReserved,
)
from tests.shop.conftest import PROBLEM, ShopServer, eventually


async def level(server: ShopServer, product: str) -> StockLevel:
    found: StockLevel = await server.shop.queries.ask(GetStockLevel(product))
    return found


async def reserve(server: ShopServer, order: str, *lines: tuple[str, int]
                  ) -> CommandResult[Any]:
    result: CommandResult[Any] = await server.shop.commands.dispatch(ReserveStock(
        order_id=order, lines=tuple(StockLine(product_id=p, quantity=q) for p, q in lines)))
    return result


async def events_of(server: ShopServer, order: str, event_type: str) -> list[Any]:
    """The order's reservation events of one type."""
    return await server.events(f"inventory_reservation-{order}", event_type)


async def test_sample_stock_is_available_to_everyone(server: ShopServer) -> None:
    poster = await server.client.get("/inventory/poster")
    assert poster.json() == {"product_id": "poster", "available": 1, "in_stock": True}
    keyboard = (await server.client.get("/inventory/keyboard")).json()
    assert keyboard["available"] == 50
    never = (await server.client.get("/inventory/never-stocked")).json()
    assert never == {"product_id": "never-stocked", "available": 0, "in_stock": False}
    bad = await server.client.get("/inventory/not%20an%20id")
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)


async def test_an_admin_counts_stock_and_lists_it_in_pages(server: ShopServer) -> None:
    admin = await server.admin()
    counted = await server.client.put("/admin/inventory/mouse", headers=admin,
                                      json={"on_hand": 7})
    assert counted.status_code == 200, counted.text
    assert counted.json() == {"product_id": "mouse", "on_hand": 7, "reserved": 0,
                              "available": 7}
    assert (await server.client.get("/inventory/mouse")).json()["available"] == 7
    new = await server.client.put("/admin/inventory/teapot", headers=admin,
                                  json={"on_hand": 3})
    assert new.json()["available"] == 3
    first = (await server.client.get("/admin/inventory", headers=admin,
                                     params={"limit": 4})).json()
    assert first["total"] == 9 and len(first["items"]) == 4 and first["next_offset"] == 4
    every = (await server.client.get("/admin/inventory", headers=admin,
                                     params={"limit": 100})).json()["items"]
    assert {"product_id": "mouse", "on_hand": 7, "reserved": 0, "available": 7} in every
    assert [s["product_id"] for s in every] == sorted(s["product_id"] for s in every)


async def test_only_admins_count_stock(server: ShopServer) -> None:
    anonymous = await server.client.put("/admin/inventory/mouse", json={"on_hand": 1})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith(PROBLEM)
    assert (await server.client.get("/admin/inventory")).status_code == 401
    customer = await server.customer("cora@example.com")
    assert (await server.client.put("/admin/inventory/mouse", headers=customer,
                                    json={"on_hand": 1})).status_code == 403
    assert (await server.client.get("/admin/inventory", headers=customer)).status_code == 403
    assert (await level(server, "mouse")).on_hand == 100


async def test_bad_stock_counts_are_problems_naming_the_field(server: ShopServer) -> None:
    admin = await server.admin()
    for body in ({"on_hand": -1}, {"on_hand": "many"}, {"on_hand": 1.5}, {},
                 {"on_hand": 10**12}, {"on_hand": 1, "extra": True}):
        response = await server.client.put("/admin/inventory/mouse", headers=admin, json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith(PROBLEM)
        assert response.json()["errors"][0]["field"].startswith("body"), body
    await reserve(server, "order-held", ("monitor", 4))
    below = await server.client.put("/admin/inventory/monitor", headers=admin,
                                    json={"on_hand": 3})
    assert below.status_code == 422 and "hold 4" in below.json()["detail"]
    assert (await level(server, "monitor")).on_hand == 5


async def test_two_orders_racing_for_the_last_unit_get_exactly_one(server: ShopServer) -> None:
    orders = [f"race-{i}" for i in range(5)]
    results = await asyncio.gather(*(reserve(server, o, ("poster", 1)) for o in orders))
    outcomes = sorted(r.value for r in results)
    assert outcomes == ["rejected"] * 4 + ["reserved"]
    poster = await level(server, "poster")
    assert (poster.on_hand, poster.reserved, poster.available) == (1, 1, 0)
    winner = orders[[r.value for r in results].index("reserved")]
    assert (await server.client.get("/inventory/poster")).json()["in_stock"] is False

    released = await server.shop.commands.dispatch(ReleaseStock(order_id=winner))
    assert released.value == "released"
    again = await server.shop.commands.dispatch(ReleaseStock(order_id=winner))
    assert again.value == "released"
    assert len(await events_of(server, winner, StockReleased.event_type)) == 1
    assert (await level(server, "poster")).available == 1


async def test_racing_orders_for_several_products_hold_all_or_nothing(
        server: ShopServer) -> None:
    # monitor has 5, poster 1: each order wants 2 monitors and the poster
    results = await asyncio.gather(*(reserve(server, f"combo-{i}", ("monitor", 2),
                                             ("poster", 1)) for i in range(3)))
    assert sorted(r.value for r in results) == ["rejected", "rejected", "reserved"]
    monitor, poster = await level(server, "monitor"), await level(server, "poster")
    assert (monitor.reserved, poster.reserved) == (2, 1)


async def test_a_reservation_is_all_or_nothing_and_idempotent(server: ShopServer) -> None:
    short = await reserve(server, "order-1", ("monitor", 2), ("poster", 2))
    assert short.value == "rejected"
    assert (await level(server, "monitor")).available == 5  # nothing held for the monitor
    rejected = await events_of(server, "order-1", "inventory.StockReservationRejected")
    assert [e.reason for e in rejected] == ["poster: 2 wanted, 1 available"]

    held = await reserve(server, "order-2", ("keyboard", 2), ("mouse", 1), ("keyboard", 1))
    assert held.value == "reserved"
    repeated = await reserve(server, "order-2", ("keyboard", 40))
    assert repeated.value == "reserved"
    assert len(await events_of(server, "order-2", StockReserved.event_type)) == 1
    keyboard = await level(server, "keyboard")
    assert (keyboard.on_hand, keyboard.reserved) == (50, 3)

    committed = await server.shop.commands.dispatch(CommitStock(order_id="order-2"))
    assert committed.value == "committed"
    await server.shop.commands.dispatch(CommitStock(order_id="order-2"))
    await server.shop.commands.dispatch(ReleaseStock(order_id="order-2"))
    keyboard, mouse = await level(server, "keyboard"), await level(server, "mouse")
    assert (keyboard.on_hand, keyboard.reserved, mouse.on_hand, mouse.reserved) == \
        (47, 0, 99, 0)
    admin = await server.admin()

    async def listed() -> dict[str, Any] | None:
        page = (await server.client.get("/admin/inventory", headers=admin,
                                        params={"limit": 100})).json()
        row = next(s for s in page["items"] if s["product_id"] == "keyboard")
        return row if row["on_hand"] == 47 else None

    assert (await eventually(listed, timeout=5, what="the read model"))["reserved"] == 0


async def test_a_released_order_never_holds_stock_afterwards(server: ShopServer) -> None:
    closed = await server.shop.commands.dispatch(ReleaseStock(order_id="late"))
    assert closed.value == "closed"
    late = await reserve(server, "late", ("mouse", 1))
    assert late.value == "closed"
    assert (await level(server, "mouse")).reserved == 0
    assert await server.shop.commands.dispatch(SetStock(product_id="mouse", on_hand=0))
    assert (await level(server, "mouse")).available == 0


def test_bad_order_ids_are_refused_under_the_command_that_carries_them() -> None:
    for command in (CommitStock, ReleaseStock):
        with pytest.raises(ValidationError) as caught:
            command(order_id="not an id!").validate()
        assert caught.value.subject == command.__name__
        assert [e.field for e in caught.value.errors] == ["order_id"]
