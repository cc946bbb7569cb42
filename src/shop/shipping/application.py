"""Shipping's commands, queries and the events fulfilment reacts to.

Published: the commands :class:`CreateShipment` and :class:`CancelShipment`, and the events
:class:`ShipmentCreated`, :class:`ShipmentRefused`, :class:`ShipmentCancelled` (stored as
``shipping.<name>``). Handlers return the shipment's status (``"created"``, ``"refused"``,
``"cancelled"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from invariant.application import AnyCommandHandler, Command, Query, UnitOfWork
from invariant.domain import ValidationError
from shop.kernel import OrderId, check_ids
from shop.shipping.domain import (
    THE_CARRIER,
    Carrier,
    Shipment,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentRefused,
)
from shop.shipping.messages import CancelShipment, CreateShipment


@dataclass(frozen=True, kw_only=True)
class SwitchCarrierRefusal(Command[bool]):
    """Admin: make the carrier refuse new shipments (``refuse=True``) or take them again."""

    refuse: bool

    def validate(self) -> None:
        if not isinstance(self.refuse, bool):
            raise ValidationError.single("refuse", "must be true or false", "invalid_bool",
                                         subject="SwitchCarrierRefusal")


@dataclass(frozen=True)
class GetCarrierRefusal(Query):
    """Whether the carrier refuses new shipments now."""


@dataclass(frozen=True)
class GetShipment(Query):
    """An order's shipment (status ``"new"`` when there is none)."""

    order_id: str

    def validate(self) -> None:
        check_ids("GetShipment", order_id=self.order_id)


@dataclass(frozen=True, slots=True)
class ShipmentView:
    order_id: str
    status: str
    tracking_number: str | None

    @classmethod
    def of(cls, shipment: Shipment) -> ShipmentView:
        return cls(shipment.id.value, shipment.status, shipment.tracking_number)


async def create_shipment(command: CreateShipment, uow: UnitOfWork) -> str:
    shipment = await uow.find_or_add(Shipment, OrderId(command.order_id))
    carrier = await uow.find(Carrier, THE_CARRIER)
    return shipment.create(refuse=carrier is not None and carrier.refuses)


async def cancel_shipment(command: CancelShipment, uow: UnitOfWork) -> str:
    return (await uow.find_or_add(Shipment, OrderId(command.order_id))).cancel()


async def switch_carrier_refusal(command: SwitchCarrierRefusal, uow: UnitOfWork) -> bool:
    carrier = await uow.find_or_add(Carrier, THE_CARRIER)
    carrier.switch_refusal(command.refuse)
    return carrier.refuses


HANDLERS: dict[type[Command[Any]], AnyCommandHandler] = {
    CreateShipment: create_shipment, CancelShipment: cancel_shipment,
    SwitchCarrierRefusal: switch_carrier_refusal}

__all__ = ["HANDLERS", "CancelShipment", "CreateShipment", "GetCarrierRefusal", "GetShipment",
           "ShipmentCancelled", "ShipmentCreated", "ShipmentRefused", "ShipmentView",
           "SwitchCarrierRefusal"]
