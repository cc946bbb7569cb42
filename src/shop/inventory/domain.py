"""Inventory's model: stock per product, and each order's reservation of it.

* :class:`Stock` (one stream per product): units on hand and the units each order holds;
  ``available = on_hand - reserved`` is never negative.
* :class:`Reservation` (one stream per order): what the order holds, across products. It
  reserves all of its lines or none (:meth:`Reservation.reserve` touches the stocks of every
  line in the same unit of work), releases exactly what it holds, once, and commits it when
  the order ships. Once released or closed it reserves nothing more, so a reservation that
  arrives after the order was given up cannot hold stock.

Concurrency comes from the event store: two orders reserving the last unit both append to
the product's stream at the version they read; one append fails, and when the command runs
again it finds the unit gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from invariant.domain import AggregateRoot, DomainError, DomainEvent, FieldError, ValidationError
from shop.kernel import OrderId, ProductId

MAX_UNITS = 1_000_000_000


@dataclass(frozen=True)
class ReservedLine:
    """Units of one product held for an order."""

    product_id: str
    quantity: int


# -- a product's stock ----------------------------------------------------------------------

@dataclass(frozen=True)
class StockLevelSet(DomainEvent):
    """The units on hand were counted (set by an admin or seeded)."""

    event_type = "inventory.StockLevelSet"

    product_id: str
    on_hand: int


@dataclass(frozen=True)
class UnitsAllocated(DomainEvent):
    """Units of a product were set aside for an order."""

    event_type = "inventory.UnitsAllocated"

    product_id: str
    order_id: str
    quantity: int


@dataclass(frozen=True)
class UnitsDeallocated(DomainEvent):
    """An order gave back the units it held."""

    event_type = "inventory.UnitsDeallocated"

    product_id: str
    order_id: str
    quantity: int


@dataclass(frozen=True)
class UnitsShipped(DomainEvent):
    """An order's units left the warehouse: no longer on hand nor reserved."""

    event_type = "inventory.UnitsShipped"

    product_id: str
    order_id: str
    quantity: int


class StockBelowReserved(DomainError):
    """On hand cannot drop below what orders hold."""


class Stock(AggregateRoot[ProductId]):
    """The stock of one product."""

    category = "inventory_stock"

    def __init__(self, id: ProductId) -> None:
        super().__init__(id)
        self.on_hand = 0
        self.held: dict[str, int] = {}

    @property
    def reserved(self) -> int:
        return sum(self.held.values())

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def set_level(self, on_hand: int) -> None:
        """Count the units on hand; refused below what orders hold."""
        check_units("on_hand", on_hand, low=0)
        if on_hand < self.reserved:
            raise StockBelowReserved(
                f"cannot set the stock of {self.id} to {on_hand}: orders hold {self.reserved} "
                f"units; set at least {self.reserved}")
        if on_hand != self.on_hand or self.version == 0:
            self.record(StockLevelSet(self.id.value, on_hand))

    def allocate(self, order_id: str, quantity: int) -> None:
        """Hold ``quantity`` units for an order (the caller checked ``available``)."""
        if quantity > self.available:
            raise StockBelowReserved(f"only {self.available} of {self.id} available")
        self.record(UnitsAllocated(self.id.value, order_id, quantity))

    def deallocate(self, order_id: str) -> None:
        if order_id in self.held:
            self.record(UnitsDeallocated(self.id.value, order_id, self.held[order_id]))

    def ship(self, order_id: str) -> None:
        if order_id in self.held:
            self.record(UnitsShipped(self.id.value, order_id, self.held[order_id]))

    def apply(self, event: DomainEvent) -> None:
        match event:
            case StockLevelSet(on_hand=on_hand):
                self.on_hand = on_hand
            case UnitsAllocated(order_id=order, quantity=quantity):
                self.held[order] = self.held.get(order, 0) + quantity
            case UnitsDeallocated(order_id=order):
                self.held.pop(order, None)
            case UnitsShipped(order_id=order, quantity=quantity):
                self.held.pop(order, None)
                self.on_hand -= quantity


# -- an order's reservation -----------------------------------------------------------------

@dataclass(frozen=True)
class StockReserved(DomainEvent):
    """Every line of the order is held: fulfilment may charge the customer."""

    event_type = "inventory.StockReserved"

    order_id: str
    lines: tuple[ReservedLine, ...] = ()


@dataclass(frozen=True)
class StockReservationRejected(DomainEvent):
    """The order could not be held; ``reason`` names each product short of stock."""

    event_type = "inventory.StockReservationRejected"

    order_id: str
    reason: str


@dataclass(frozen=True)
class StockReleased(DomainEvent):
    """The order gave back everything it held."""

    event_type = "inventory.StockReleased"

    order_id: str
    lines: tuple[ReservedLine, ...] = ()


@dataclass(frozen=True)
class StockCommitted(DomainEvent):
    """The order shipped: its units left on-hand stock."""

    event_type = "inventory.StockCommitted"

    order_id: str
    lines: tuple[ReservedLine, ...] = ()


@dataclass(frozen=True)
class ReservationClosed(DomainEvent):
    """The order was released before it held anything: it will hold nothing from now on."""

    event_type = "inventory.ReservationClosed"

    order_id: str


Status = Literal["open", "reserved", "rejected", "released", "committed", "closed"]


class Reservation(AggregateRoot[OrderId]):
    """The stock one order holds."""

    category = "inventory_reservation"

    def __init__(self, id: OrderId) -> None:
        super().__init__(id)
        self.status: Status = "open"
        self.lines: tuple[ReservedLine, ...] = ()

    def reserve(self, wanted: Mapping[str, int], stocks: Mapping[str, Stock]) -> Status:
        """Hold every wanted quantity, or nothing (rejected, naming what is short).

        Only an open reservation acts: reserving again changes nothing and answers the
        status the first reservation reached."""
        if self.status != "open":
            return self.status
        short = [f"{product}: {quantity} wanted, {stocks[product].available} available"
                 for product, quantity in wanted.items()
                 if stocks[product].available < quantity]
        if short:
            self.record(StockReservationRejected(self.id.value, "; ".join(short)))
            return self.status
        for product, quantity in wanted.items():
            stocks[product].allocate(self.id.value, quantity)
        self.record(StockReserved(self.id.value, tuple(
            ReservedLine(product, quantity) for product, quantity in wanted.items())))
        return self.status

    def release(self, stocks: Mapping[str, Stock]) -> Status:
        """Give back what is held (once); an order holding nothing yet is closed."""
        if self.status == "reserved":
            for line in self.lines:
                stocks[line.product_id].deallocate(self.id.value)
            self.record(StockReleased(self.id.value, self.lines))
        elif self.status == "open":
            self.record(ReservationClosed(self.id.value))
        return self.status

    def commit(self, stocks: Mapping[str, Stock]) -> Status:
        """The order shipped: what it holds leaves the stock (once)."""
        if self.status == "reserved":
            for line in self.lines:
                stocks[line.product_id].ship(self.id.value)
            self.record(StockCommitted(self.id.value, self.lines))
        return self.status

    def apply(self, event: DomainEvent) -> None:
        match event:
            case StockReserved(lines=lines):
                self.status, self.lines = "reserved", lines
            case StockReservationRejected():
                self.status = "rejected"
            case StockReleased():
                self.status = "released"
            case StockCommitted():
                self.status = "committed"
            case ReservationClosed():
                self.status = "closed"


def check_units(field: str, value: int, *, low: int) -> None:
    """A whole number of units within ``low..MAX_UNITS``, or ValidationError."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_UNITS:
        raise ValidationError([FieldError(
            field, f"must be a whole number from {low} to {MAX_UNITS}, got {value!r}",
            "out_of_range")], subject="stock")


EVENTS: tuple[type[DomainEvent], ...] = (
    StockLevelSet, UnitsAllocated, UnitsDeallocated, UnitsShipped, StockReserved,
    StockReservationRejected, StockReleased, StockCommitted, ReservationClosed)
