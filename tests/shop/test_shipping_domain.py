"""Shipping's model as a specification (no server)."""

from __future__ import annotations

from shop.kernel import OrderId
from shop.shipping.domain import (
    EVENTS,
    REFUSAL_REASON,
    THE_CARRIER,
    Carrier,
    CarrierRefusalSwitched,
    Shipment,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentRefused,
    tracking_number,
)


def test_tracking_numbers_are_deterministic_per_order() -> None:
    number = tracking_number("order-1")
    assert number == tracking_number("order-1") != tracking_number("order-2")
    assert number.startswith("TRK-") and len(number) == 14
    assert number[4:] == number[4:].upper()
    int(number[4:], 16)


def test_a_shipment_is_created_once() -> None:
    shipment = Shipment(OrderId("o-1"))
    assert shipment.create(refuse=False) == "created"
    assert shipment.create(refuse=True) == "created"
    assert shipment.pending_events == (ShipmentCreated("o-1", tracking_number("o-1")),)


def test_a_refusal_is_final() -> None:
    shipment = Shipment(OrderId("o-1"))
    assert shipment.create(refuse=True) == "refused"
    assert shipment.create(refuse=False) == "refused"
    assert shipment.pending_events == (ShipmentRefused("o-1", REFUSAL_REASON),)
    assert shipment.cancel() == "refused" and len(shipment.pending_events) == 1


def test_cancelling_is_idempotent_and_blocks_a_late_creation() -> None:
    shipment = Shipment(OrderId("o-1"))
    assert shipment.cancel() == "cancelled"
    assert shipment.cancel() == "cancelled"
    assert shipment.create(refuse=False) == "cancelled"
    assert shipment.pending_events == (ShipmentCancelled("o-1"),)


def test_the_carrier_records_only_real_switches() -> None:
    carrier = Carrier(THE_CARRIER)
    carrier.switch_refusal(False)
    carrier.switch_refusal(True)
    carrier.switch_refusal(True)
    assert carrier.pending_events == (CarrierRefusalSwitched(True),) and carrier.refuses


def test_event_types_are_unique_and_prefixed() -> None:
    names = [e.event_type for e in EVENTS]
    assert len(set(names)) == len(names) and all(n.startswith("shipping.") for n in names)
