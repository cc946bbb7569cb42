"""Example 72: choreography. Inventory reacts to the order's own events, with no
coordinator: a cancelled order's stock is released, and only what was reserved is (the
``Reservation`` aggregate releases nothing it did not hold, and holds nothing afterwards)."""

from __future__ import annotations

from examples.orders.application import ReleaseInventory
from examples.orders.domain import OrderCancelled
from invariant.domain import DomainEvent
from invariant.processes import Process, ProcessManager


class InventoryReleasesCancelledOrders(ProcessManager):
    """Inventory's reaction to ``OrderCancelled``: one short process per cancelled order."""

    kind = "inventory-on-cancel"
    handles = (OrderCancelled,)
    starts = (OrderCancelled,)

    def correlate(self, event: DomainEvent) -> str | None:
        return event.order_id if isinstance(event, OrderCancelled) else None

    def handle(self, process: Process, event: DomainEvent) -> None:
        process.send(ReleaseInventory(order_id=process.correlation), "release")
        process.complete()
