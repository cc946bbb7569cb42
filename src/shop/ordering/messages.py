"""What ordering offers other contexts' process managers (fulfilment): the commands it
accepts, the events it answers with, and the question it asks fulfilment (in one process
on the buses and the event log; between services as messages through the broker, and the
question over HTTP).

* commands: :class:`CancelOrder`, :class:`MarkOrderShipped`;
* events: :class:`OrderPlaced`, :class:`OrderCancelled`, :class:`OrderShipped`;
* asked of fulfilment: :class:`GetFulfilmentStatus`, answered with :class:`FulfilmentStatus`.
"""

from __future__ import annotations

from dataclasses import dataclass

from invariant.application import Command, Query
from invariant.domain import ValidationError
from shop.kernel import TEXT_LINE
from shop.ordering.domain import OrderCancelled, OrderPlaced, OrderShipped

MAX_REASON = 200


@dataclass(frozen=True, kw_only=True)
class CancelOrder(Command[None]):
    """Cancel an order before it ships. ``customer_id`` set: the customer asks (only their
    own order); unset: fulfilment gives up on the order."""

    order_id: str
    reason: str
    customer_id: str | None = None

    def validate(self) -> None:
        if TEXT_LINE.fullmatch(self.reason) is None or len(self.reason) > MAX_REASON:
            raise ValidationError.single(
                "reason", f"must be one line of 1 to {MAX_REASON} characters, not blank",
                "invalid_reason", subject="CancelOrder")


@dataclass(frozen=True, kw_only=True)
class MarkOrderShipped(Command[None]):
    """Fulfilment: the order's parcel has left (no-op unless the order is placed)."""

    order_id: str
    tracking_number: str


@dataclass(frozen=True)
class GetFulfilmentStatus(Query):
    """How far fulfilment got with an order (answered by the fulfilment context)."""

    order_id: str


@dataclass(frozen=True, slots=True)
class FulfilmentStatus:
    """Fulfilment's view of one order."""

    phase: str
    payment_attempts: int
    tracking_number: str | None
    reason: str | None


__all__ = [
    "MAX_REASON", "CancelOrder", "FulfilmentStatus", "GetFulfilmentStatus",
    "MarkOrderShipped", "OrderCancelled", "OrderPlaced", "OrderShipped",
]
