"""Ordering's published language: what other contexts (billing, analytics, notifications)
learn about orders. Versioned and named; money as an :class:`Amount` (decimal text + ISO
4217 code); times in ISO 8601 UTC. Never change a released version: add a new one.

* ``order.placed`` v1    an order was placed (its lines and total)
* ``order.cancelled`` v1 an order was cancelled, with the reason
* ``order.shipped`` v1   an order left the warehouse, with its tracking number
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from invariant.messaging.published_language import Amount, IntegrationEvent, UtcTime


class OrderLine(BaseModel):
    """One line of an order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: str
    name: str
    quantity: int = Field(ge=1)
    unit_price: Amount


class OrderPlaced(IntegrationEvent):
    """A customer placed an order."""

    event_name: ClassVar[str] = "order.placed"
    event_version: ClassVar[int] = 1

    order_id: str
    customer_id: str
    total: Amount
    lines: list[OrderLine]
    occurred_at: UtcTime


class OrderCancelled(IntegrationEvent):
    """An order was cancelled before it shipped (by its customer, or because fulfilment
    could not complete it: ``reason`` says which)."""

    event_name: ClassVar[str] = "order.cancelled"
    event_version: ClassVar[int] = 1

    order_id: str
    customer_id: str
    total: Amount
    lines: list[OrderLine]
    reason: str
    occurred_at: UtcTime


class OrderShipped(IntegrationEvent):
    """An order was handed to the carrier."""

    event_name: ClassVar[str] = "order.shipped"
    event_version: ClassVar[int] = 1

    order_id: str
    customer_id: str
    total: Amount
    lines: list[OrderLine]
    tracking_number: str
    occurred_at: UtcTime


PUBLISHED: tuple[type[IntegrationEvent], ...] = (OrderPlaced, OrderCancelled, OrderShipped)
