"""Shipping's model: one shipment per order, and the carrier's failure switch.

A shipment is decided once: created (with a tracking number derived from the order id, so
a repeated command gives the same number) or refused (when the admin switched the carrier
to refuse). Cancelling is idempotent; a shipment cancelled before it was created is never
created afterwards.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from invariant.domain import AggregateRoot, DomainEvent, Identity
from shop.kernel import OrderId

REFUSAL_REASON = "the carrier refuses new shipments (failure switch on)"


def tracking_number(order_id: str) -> str:
    """``TRK-`` and 10 upper-case hex digits of the order id's SHA-256."""
    return "TRK-" + hashlib.sha256(order_id.encode()).hexdigest()[:10].upper()


@dataclass(frozen=True)
class ShipmentCreated(DomainEvent):
    """The order's parcel is on its way."""

    event_type = "shipping.ShipmentCreated"

    order_id: str
    tracking_number: str


@dataclass(frozen=True)
class ShipmentRefused(DomainEvent):
    """The carrier would not take the order's parcel."""

    event_type = "shipping.ShipmentRefused"

    order_id: str
    reason: str


@dataclass(frozen=True)
class ShipmentCancelled(DomainEvent):
    """The order will not be (or is no longer) shipped."""

    event_type = "shipping.ShipmentCancelled"

    order_id: str


Status = Literal["new", "created", "refused", "cancelled"]


class Shipment(AggregateRoot[OrderId]):
    """The shipment of one order."""

    category = "shipping_shipment"

    def __init__(self, id: OrderId) -> None:
        super().__init__(id)
        self.status: Status = "new"
        self.tracking_number: str | None = None

    def create(self, *, refuse: bool) -> Status:
        """Ship the order (or record the carrier's refusal); only a new shipment acts."""
        if self.status == "new":
            if refuse:
                self.record(ShipmentRefused(self.id.value, REFUSAL_REASON))
            else:
                self.record(ShipmentCreated(self.id.value, tracking_number(self.id.value)))
        return self.status

    def cancel(self) -> Status:
        """Cancel a created shipment, or make sure none is created; a repeat does nothing."""
        if self.status in ("new", "created"):
            self.record(ShipmentCancelled(self.id.value))
        return self.status

    def apply(self, event: DomainEvent) -> None:
        match event:
            case ShipmentCreated(tracking_number=number):
                self.status, self.tracking_number = "created", number
            case ShipmentRefused():
                self.status = "refused"
            case ShipmentCancelled():
                self.status = "cancelled"


# -- the carrier ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CarrierId(Identity):
    """The carrier (shop has one: ``CarrierId("carrier")``)."""


THE_CARRIER = CarrierId("carrier")


@dataclass(frozen=True)
class CarrierRefusalSwitched(DomainEvent):
    """The admin switched whether the carrier refuses new shipments (to test failures)."""

    event_type = "shipping.CarrierRefusalSwitched"

    refuse: bool


class Carrier(AggregateRoot[CarrierId]):
    """The carrier shipments go to, and whether it refuses them."""

    category = "shipping_carrier"

    def __init__(self, id: CarrierId) -> None:
        super().__init__(id)
        self.refuses = False

    def switch_refusal(self, refuse: bool) -> None:
        if refuse != self.refuses:
            self.record(CarrierRefusalSwitched(refuse))

    def apply(self, event: DomainEvent) -> None:
        match event:
            case CarrierRefusalSwitched(refuse=refuse):
                self.refuses = refuse


EVENTS: tuple[type[DomainEvent], ...] = (ShipmentCreated, ShipmentRefused, ShipmentCancelled,
                                         CarrierRefusalSwitched)
