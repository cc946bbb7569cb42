"""``order.placed`` v1, the seed's published language (example 79): ids, money as a decimal
value plus an ISO 4217 currency, ISO 8601 UTC times. Released: ``examples/integration/schemas/``."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from invariant.messaging.published_language import Amount, IntegrationEvent, UtcTime


class OrderLine(BaseModel):
    """One line of a placed order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: str
    quantity: int = Field(ge=1)
    unit_price: Amount


class OrderPlaced(IntegrationEvent):
    """A customer placed an order (published to warehouse, billing and notifications)."""

    event_name: ClassVar[str] = "order.placed"
    event_version: ClassVar[int] = 1

    order_id: str
    customer_id: str
    total: Amount
    items: list[OrderLine]
    placed_at: UtcTime


class OrderCancelled(IntegrationEvent):
    """An order was cancelled before it shipped."""

    event_name: ClassVar[str] = "order.cancelled"
    event_version: ClassVar[int] = 1

    order_id: str
    reason: str
    cancelled_at: UtcTime
