"""Example 72: contexts react to each other's events; compensations undo only what was done."""

from __future__ import annotations

from examples.orders.application import COMMANDS, CancelOrder, PlaceOrder, ReserveInventory
from examples.orders.choreography import InventoryReleasesCancelledOrders
from invariant.processes import ProcessRunner
from tests.processes.conftest import Env


def place(order_id: str) -> PlaceOrder:
    return PlaceOrder(order_id=order_id, customer_id="c", sku="sku-1", quantity=3, amount=9,
                      coordinator="nobody")


async def test_a_cancelled_order_releases_what_inventory_reserved_once(env: Env) -> None:
    bus = env.app.bus
    runner = ProcessRunner(env.app.store, env.database, bus,
                           [InventoryReleasesCancelledOrders()], commands=COMMANDS,
                           clock=env.clock)
    await runner.setup()
    for order in ("reserved", "never-reserved"):
        await bus.dispatch(place(order))
    await bus.dispatch(ReserveInventory(order_id="reserved", sku="sku-1", quantity=3, stock=5))
    for order in ("reserved", "never-reserved"):
        await bus.dispatch(CancelOrder(order_id=order, reason="customer changed their mind"))
    await runner.run_once()
    await runner.run_once()

    assert await env.app.side_effects("reserved") == {"InventoryReserved": 1,
                                                      "InventoryReleased": 1}
    assert await env.app.side_effects("never-reserved") == {}
    # A reservation arriving after the release holds nothing: the order is closed.
    late = await bus.dispatch(ReserveInventory(order_id="never-reserved", sku="sku-1",
                                               quantity=3, stock=5))
    assert late.value is False
    assert await env.app.side_effects("never-reserved") == {}
