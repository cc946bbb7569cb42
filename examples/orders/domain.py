"""Order fulfilment's contexts as small aggregates, one stream per order in each context.

The services are fakes with real side effects: every reservation, charge, refund and
shipment is an event in the log, so tests count them to prove no step ran twice. Their
failures are chosen by the order (``declines``: the first N charges are declined;
``stock``: quantities above it cannot be reserved; ``ship_fails``), so they are
deterministic across processes and restarts.
"""

from __future__ import annotations

from dataclasses import dataclass

from invariant.domain import AggregateRoot, DomainEvent, Identity


@dataclass(frozen=True, slots=True)
class OrderId(Identity):
    """Identifies an order (and its reservation, payment and shipment)."""


# -- events ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class OrderPlaced(DomainEvent):
    order_id: str
    customer_id: str
    sku: str
    quantity: int
    amount: int  # cents
    declines: int = 0
    stock: int = 10
    ship_fails: bool = False
    coordinator: str = "process-manager"
    """Who fulfils the order: the process manager, or the orchestrated saga ("saga")."""


@dataclass(frozen=True)
class OrderCompleted(DomainEvent):
    order_id: str


@dataclass(frozen=True)
class OrderCancelled(DomainEvent):
    order_id: str
    reason: str


@dataclass(frozen=True)
class InventoryReserved(DomainEvent):
    order_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class InventoryReservationFailed(DomainEvent):
    order_id: str
    reason: str


@dataclass(frozen=True)
class InventoryReleased(DomainEvent):
    order_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class ReservationClosed(DomainEvent):
    order_id: str


@dataclass(frozen=True)
class PaymentCharged(DomainEvent):
    order_id: str
    amount: int
    attempt: int


@dataclass(frozen=True)
class PaymentDeclined(DomainEvent):
    order_id: str
    attempt: int
    reason: str


@dataclass(frozen=True)
class PaymentRefunded(DomainEvent):
    order_id: str
    amount: int


@dataclass(frozen=True)
class PaymentClosed(DomainEvent):
    order_id: str


@dataclass(frozen=True)
class OrderShipped(DomainEvent):
    order_id: str


@dataclass(frozen=True)
class ShipmentFailed(DomainEvent):
    order_id: str
    reason: str


@dataclass(frozen=True)
class ShipmentCancelled(DomainEvent):
    order_id: str


EVENTS = (OrderPlaced, OrderCompleted, OrderCancelled, InventoryReserved,
          InventoryReservationFailed, InventoryReleased, ReservationClosed, PaymentCharged,
          PaymentDeclined, PaymentRefunded, PaymentClosed, OrderShipped, ShipmentFailed,
          ShipmentCancelled)
SIDE_EFFECTS = (InventoryReserved, InventoryReleased, PaymentCharged, PaymentRefunded,
                OrderShipped, ShipmentCancelled)
"""Events that stand for something done in the world: each must happen at most once."""


# -- aggregates ------------------------------------------------------------------------------

class Order(AggregateRoot[OrderId]):
    category = "order"

    def __init__(self, id: OrderId) -> None:
        super().__init__(id)
        self.status = "new"

    @classmethod
    def place(cls, placed: OrderPlaced) -> Order:
        order = cls(OrderId(placed.order_id))
        order.record(placed)
        return order

    def complete(self) -> None:
        if self.status == "placed":
            self.record(OrderCompleted(str(self.id)))

    def cancel(self, reason: str) -> None:
        if self.status == "placed":
            self.record(OrderCancelled(str(self.id), reason))

    def apply(self, event: DomainEvent) -> None:
        match event:
            case OrderPlaced():
                self.status = "placed"
            case OrderCompleted():
                self.status = "completed"
            case OrderCancelled():
                self.status = "cancelled"


class Reservation(AggregateRoot[OrderId]):
    """Inventory's side: it releases only what it reserved, and once released (or closed by
    a cancellation) it reserves nothing more for the order."""

    category = "reservation"

    def __init__(self, id: OrderId) -> None:
        super().__init__(id)
        self.reserved: tuple[str, int] | None = None
        self.closed = False

    def reserve(self, sku: str, quantity: int, stock: int) -> bool:
        if self.reserved is not None:
            return True
        if self.closed:
            self.record(InventoryReservationFailed(str(self.id), "order cancelled"))
            return False
        if quantity > stock:
            self.record(InventoryReservationFailed(
                str(self.id), f"only {stock} of {sku} in stock, {quantity} wanted"))
            return False
        self.record(InventoryReserved(str(self.id), sku, quantity))
        return True

    def release(self) -> None:
        if self.reserved is not None:
            self.record(InventoryReleased(str(self.id), *self.reserved))
        elif not self.closed:
            self.record(ReservationClosed(str(self.id)))  # a late reserve must not hold stock

    def apply(self, event: DomainEvent) -> None:
        match event:
            case InventoryReserved(sku=sku, quantity=quantity):
                self.reserved = (sku, quantity)
            case InventoryReleased():
                self.reserved, self.closed = None, True
            case InventoryReservationFailed() | ReservationClosed():
                self.closed = True


class Payment(AggregateRoot[OrderId]):
    """Payment's side: charges at most once, refunds only a charge, closed by a refund."""

    category = "payment"

    def __init__(self, id: OrderId) -> None:
        super().__init__(id)
        self.charged: int | None = None
        self.closed = False

    def charge(self, amount: int, attempt: int, declines: int) -> bool:
        if self.charged is not None:
            return True
        if self.closed:
            self.record(PaymentDeclined(str(self.id), attempt, "payment closed"))
            return False
        if attempt <= declines:
            self.record(PaymentDeclined(str(self.id), attempt, "card declined"))
            return False
        self.record(PaymentCharged(str(self.id), amount, attempt))
        return True

    def refund(self) -> None:
        if self.charged is not None:
            self.record(PaymentRefunded(str(self.id), self.charged))
        elif not self.closed:
            self.record(PaymentClosed(str(self.id)))

    def apply(self, event: DomainEvent) -> None:
        match event:
            case PaymentCharged(amount=amount):
                self.charged = amount
            case PaymentRefunded() | PaymentClosed():
                self.charged, self.closed = None, True


class Shipment(AggregateRoot[OrderId]):
    category = "shipment"

    def __init__(self, id: OrderId) -> None:
        super().__init__(id)
        self.shipped = False
        self.failed = False

    def ship(self, fails: bool) -> bool:
        if self.shipped:
            return True
        if fails or self.failed:
            self.record(ShipmentFailed(str(self.id), "carrier refused the parcel"))
            return False
        self.record(OrderShipped(str(self.id)))
        return True

    def cancel(self) -> None:
        if self.shipped:
            self.record(ShipmentCancelled(str(self.id)))

    def apply(self, event: DomainEvent) -> None:
        match event:
            case OrderShipped():
                self.shipped = True
            case ShipmentCancelled():
                self.shipped = False
            case ShipmentFailed():
                self.failed = True
