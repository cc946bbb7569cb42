"""What shipping offers other contexts' process managers (fulfilment): the commands it
accepts and the events it answers with (in one process on the bus and the event log,
between services as messages through the broker).

* commands: :class:`CreateShipment`, :class:`CancelShipment`;
* events: :class:`ShipmentCreated`, :class:`ShipmentRefused`.
"""

from __future__ import annotations

from dataclasses import dataclass

from invariant.application import Command
from shop.kernel import check_ids
from shop.shipping.domain import ShipmentCreated, ShipmentRefused


@dataclass(frozen=True, kw_only=True)
class CreateShipment(Command[str]):
    """Ship a paid order (idempotent: the first outcome stands)."""

    order_id: str
    customer_id: str

    def validate(self) -> None:
        check_ids("CreateShipment", order_id=self.order_id, customer_id=self.customer_id)


@dataclass(frozen=True, kw_only=True)
class CancelShipment(Command[str]):
    """Cancel the order's shipment, created or not (idempotent)."""

    order_id: str

    def validate(self) -> None:
        check_ids("CancelShipment", order_id=self.order_id)


__all__ = [
    "CancelShipment", "CreateShipment", "ShipmentCreated", "ShipmentRefused",
]
