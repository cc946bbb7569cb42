"""Examples 74-76: order fulfilment as a process manager, with retries and timeouts.

OrderPlaced → charge (30 s to answer; declined or timed out: try again, 3 attempts, then
cancel the order) → reserve inventory (60 s; refused or timed out: refund, release what was
reserved, cancel) → ship (refused: undo both, cancel) → complete.
"""

from __future__ import annotations

from typing import Any

from examples.orders.application import (
    CancelOrder,
    ChargePayment,
    CompleteOrder,
    RefundPayment,
    ReleaseInventory,
    ReserveInventory,
    ShipOrder,
)
from examples.orders.domain import (
    InventoryReservationFailed,
    InventoryReserved,
    OrderPlaced,
    OrderShipped,
    PaymentCharged,
    PaymentDeclined,
    ShipmentFailed,
)
from invariant.domain import DomainEvent
from invariant.processes import Process, ProcessManager

PAYMENT_TIMEOUT = 30.0
INVENTORY_TIMEOUT = 60.0
PAYMENT_ATTEMPTS = 3


class OrderFulfilment(ProcessManager):
    """One process per order, correlated by the order id."""

    kind = "order-fulfilment"
    handles = (OrderPlaced, PaymentCharged, PaymentDeclined, InventoryReserved,
               InventoryReservationFailed, OrderShipped, ShipmentFailed)
    starts = (OrderPlaced,)

    def correlate(self, event: DomainEvent) -> str | None:
        if isinstance(event, OrderPlaced) and event.coordinator != "process-manager":
            return None  # the orchestrated saga fulfils this one
        order_id: str | None = getattr(event, "order_id", None)
        return order_id

    def initial_state(self, event: DomainEvent) -> dict[str, Any]:
        assert isinstance(event, OrderPlaced)
        return {"phase": "new", "attempt": 0, "sku": event.sku, "quantity": event.quantity,
                "amount": event.amount, "declines": event.declines, "stock": event.stock,
                "ship_fails": event.ship_fails}

    def handle(self, process: Process, event: DomainEvent) -> None:
        phase = process.state["phase"]
        match event:
            case OrderPlaced() if phase == "new":
                self._charge(process)
            case PaymentCharged() if phase == "payment":
                process.cancel("payment")
                s = process.state
                s["phase"] = "inventory"
                process.send(ReserveInventory(order_id=process.correlation, sku=s["sku"],
                                              quantity=s["quantity"], stock=s["stock"]),
                             "reserve")
                process.schedule("inventory", INVENTORY_TIMEOUT)
            case PaymentDeclined(attempt=attempt) if (
                    phase == "payment" and attempt == process.state["attempt"]):
                self._payment_failed(process, "declined")
            case InventoryReserved() if phase == "inventory":
                process.cancel("inventory")
                process.state["phase"] = "shipping"
                process.send(ShipOrder(order_id=process.correlation,
                                       fails=process.state["ship_fails"]), "ship")
            case InventoryReservationFailed() if phase == "inventory":
                self._give_up(process, "inventory refused", refund=True)
            case OrderShipped() if phase == "shipping":
                process.send(CompleteOrder(order_id=process.correlation), "complete")
                process.state["phase"] = "completed"
                process.complete()
            case ShipmentFailed() if phase == "shipping":
                self._give_up(process, "shipping refused", refund=True, release=True)
            case _:
                pass  # a duplicate, late or out-of-order event: nothing to do

    def timeout(self, process: Process, name: str) -> None:
        phase = process.state["phase"]
        if name == "payment" and phase == "payment":
            self._payment_failed(process, "timed out")
        elif name == "inventory" and phase == "inventory":
            self._give_up(process, "inventory timed out", refund=True, release=True)

    def _charge(self, process: Process) -> None:
        s = process.state
        s["phase"] = "payment"
        s["attempt"] += 1
        process.send(ChargePayment(order_id=process.correlation, amount=s["amount"],
                                   attempt=s["attempt"], declines=s["declines"]),
                     f"charge/{s['attempt']}")
        process.schedule("payment", PAYMENT_TIMEOUT)

    def _payment_failed(self, process: Process, why: str) -> None:
        if process.state["attempt"] < PAYMENT_ATTEMPTS:
            self._charge(process)
            return
        # A charge that answers after we gave up is refunded: RefundPayment closes payment.
        self._give_up(process, f"payment {why} {PAYMENT_ATTEMPTS} times", refund=True)

    def _give_up(self, process: Process, reason: str, *, refund: bool = False,
                 release: bool = False) -> None:
        order = process.correlation
        if release:
            process.send(ReleaseInventory(order_id=order), "release")
        if refund:
            process.send(RefundPayment(order_id=order), "refund")
        process.send(CancelOrder(order_id=order, reason=reason), "cancel")
        process.state["phase"] = "cancelled"
        process.fail(reason)
