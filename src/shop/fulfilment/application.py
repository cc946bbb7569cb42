"""Order fulfilment across contexts: a process manager, one process per placed order.

::

    OrderPlaced ──ReserveStock──▶ StockReserved ──ChargePayment(1..3)──▶ PaymentCharged
      ──CreateShipment──▶ ShipmentCreated ──MarkOrderShipped──▶ OrderShipped ──CommitStock──▶ done

* StockReservationRejected → CancelOrder("out of stock: ...");
  no answer within ``reservation_timeout`` → ReleaseStock + CancelOrder.
* PaymentDeclined / PaymentTimedOut / no answer within ``payment_timeout`` → the next
  attempt; after ``attempts`` failures → ReleaseStock + RefundPayment (it closes the
  payment, so a late charge is refused) + CancelOrder("payment declined 3 times").
* ShipmentRefused → RefundPayment + ReleaseStock + CancelOrder("shipment refused: ...").
* OrderCancelled while in progress (the customer cancelled) → undo what was done so far
  (CancelShipment, RefundPayment, ReleaseStock). Stock is committed only once the order is
  marked shipped, so a cancellation racing the shipment can still release it.

Every command is sent under a key unique to its decision (``charge/2``), so a decision
repeated after a crash is handled once by the command bus. The state is JSON: ``phase``,
``attempt``, ``failures``, ``tracking_number``, ``reason`` and what the commands need.
"""

from __future__ import annotations

from typing import Any

from invariant.domain import DomainEvent, Money
from invariant.processes import Process, ProcessManager
from shop.inventory.messages import (
    CommitStock,
    ReleaseStock,
    ReserveStock,
    StockLine,
    StockReservationRejected,
    StockReserved,
)
from shop.ordering.messages import (
    CancelOrder,
    MarkOrderShipped,
    OrderCancelled,
    OrderPlaced,
    OrderShipped,
)
from shop.payments.messages import (
    ChargePayment,
    PaymentCharged,
    PaymentDeclined,
    PaymentTimedOut,
    RefundPayment,
)
from shop.shipping.messages import (
    CancelShipment,
    CreateShipment,
    ShipmentCreated,
    ShipmentRefused,
)

RESERVING, CHARGING, SHIPPING, MARKING = "reserving", "charging", "shipping", "marking"
SHIPPED, CANCELLED = "shipped", "cancelled"
IN_PROGRESS = (RESERVING, CHARGING, SHIPPING, MARKING)
PAYMENT_ATTEMPTS = 3


class OrderFulfilment(ProcessManager):
    """Fulfils placed orders; correlated by the order id."""

    kind = "shop-order-fulfilment"
    handles = (OrderPlaced, OrderCancelled, OrderShipped, StockReserved,
               StockReservationRejected, PaymentCharged, PaymentDeclined, PaymentTimedOut,
               ShipmentCreated, ShipmentRefused)
    starts = (OrderPlaced,)
    sends = (ReserveStock, ReleaseStock, CommitStock, ChargePayment, RefundPayment,
             CreateShipment, CancelShipment, CancelOrder, MarkOrderShipped)

    def __init__(self, *, reservation_timeout: float, payment_timeout: float,
                 attempts: int = PAYMENT_ATTEMPTS) -> None:
        self.reservation_timeout = reservation_timeout
        self.payment_timeout = payment_timeout
        self.attempts = attempts

    def correlate(self, event: DomainEvent) -> str | None:
        order_id = getattr(event, "order_id", None)
        return order_id if isinstance(order_id, str) else None

    def initial_state(self, event: DomainEvent) -> dict[str, Any]:
        assert isinstance(event, OrderPlaced)
        return {"phase": "placed", "customer_id": event.customer_id,
                "amount": str(event.total.amount), "currency": event.total.currency.code,
                "lines": [[line.product_id, line.quantity] for line in event.lines],
                "attempt": 0, "failures": [], "tracking_number": None, "reason": None}

    # -- events ------------------------------------------------------------------------------

    def handle(self, process: Process, event: DomainEvent) -> None:
        phase = process.state["phase"]
        match event:
            case OrderPlaced() if phase == "placed":
                self._reserve(process)
            case OrderCancelled(reason=reason) if phase in IN_PROGRESS:
                self._compensate(process, reason)
            case StockReserved() if phase == RESERVING:
                process.cancel("reservation")
                self._charge(process)
            case StockReservationRejected(reason=reason) if phase == RESERVING:
                self._give_up(process, f"out of stock: {reason}")
            case PaymentCharged() if phase == CHARGING:
                process.cancel("payment")
                self._ship(process)
            case PaymentDeclined(attempt=attempt) if self._current(process, phase, attempt):
                self._payment_failed(process, "declined")
            case PaymentTimedOut(attempt=attempt) if self._current(process, phase, attempt):
                self._payment_failed(process, "timed out")
            case ShipmentCreated(tracking_number=tracking) if phase == SHIPPING:
                process.state.update(phase=MARKING, tracking_number=tracking)
                process.send(MarkOrderShipped(order_id=process.correlation,
                                              tracking_number=tracking), "mark-shipped")
            case ShipmentRefused(reason=reason) if phase == SHIPPING:
                self._give_up(process, f"shipment refused: {reason}", refund=True,
                              release=True)
            case OrderShipped() if phase == MARKING:
                process.send(CommitStock(order_id=process.correlation), "commit-stock")
                process.state["phase"] = SHIPPED
                process.complete()
            case _:
                pass  # a duplicate, late or out-of-order event: nothing to do

    def timeout(self, process: Process, name: str) -> None:
        phase = process.state["phase"]
        if name == "reservation" and phase == RESERVING:
            self._give_up(process, "stock reservation timed out", release=True)
        elif name == "payment" and phase == CHARGING:
            self._payment_failed(process, "timed out")

    # -- decisions ---------------------------------------------------------------------------

    def _reserve(self, process: Process) -> None:
        lines = tuple(StockLine(product_id=p, quantity=q) for p, q in process.state["lines"])
        process.state["phase"] = RESERVING
        process.send(ReserveStock(order_id=process.correlation, lines=lines), "reserve")
        process.schedule("reservation", self.reservation_timeout)

    def _charge(self, process: Process) -> None:
        s = process.state
        s["phase"] = CHARGING
        s["attempt"] += 1
        process.send(ChargePayment(order_id=process.correlation, customer_id=s["customer_id"],
                                   amount=Money.of(s["amount"], s["currency"]),
                                   attempt=s["attempt"]), f"charge/{s['attempt']}")
        process.schedule("payment", self.payment_timeout)

    def _ship(self, process: Process) -> None:
        process.state["phase"] = SHIPPING
        process.send(CreateShipment(order_id=process.correlation,
                                    customer_id=process.state["customer_id"]), "ship")

    @staticmethod
    def _current(process: Process, phase: str, attempt: int) -> bool:
        return phase == CHARGING and attempt == process.state["attempt"]

    def _payment_failed(self, process: Process, why: str) -> None:
        process.cancel("payment")
        failures: list[str] = process.state["failures"]
        failures.append(why)
        if process.state["attempt"] < self.attempts:
            self._charge(process)
            return
        kinds = set(failures)
        summary = why if len(kinds) == 1 else "failed"
        self._give_up(process, f"payment {summary} {len(failures)} times", refund=True,
                      release=True)

    def _give_up(self, process: Process, reason: str, *, refund: bool = False,
                 release: bool = False) -> None:
        order = process.correlation
        if release:
            process.send(ReleaseStock(order_id=order), "release")
        if refund:
            process.send(RefundPayment(order_id=order), "refund")
        process.send(CancelOrder(order_id=order, reason=reason), "cancel")
        self._end_cancelled(process, reason)

    def _compensate(self, process: Process, reason: str) -> None:
        """The order was cancelled while in progress: undo every step that may have run."""
        order, phase = process.correlation, process.state["phase"]
        if phase in (SHIPPING, MARKING):
            process.send(CancelShipment(order_id=order), "cancel-shipment")
        if phase in (CHARGING, SHIPPING, MARKING):
            process.send(RefundPayment(order_id=order), "refund")
        process.send(ReleaseStock(order_id=order), "release")
        self._end_cancelled(process, reason)

    @staticmethod
    def _end_cancelled(process: Process, reason: str) -> None:
        process.state.update(phase=CANCELLED, reason=reason)
        process.fail(reason)
