"""Payments' published language: ``payment.charged`` v1 and ``payment.refunded`` v1.

Money as an :class:`Amount` (decimal text + ISO 4217 code), times in ISO 8601 UTC.
"""

from __future__ import annotations

from typing import ClassVar

from invariant.messaging.published_language import Amount, IntegrationEvent, UtcTime


class PaymentCharged(IntegrationEvent):
    """The customer's payment for an order was taken."""

    event_name: ClassVar[str] = "payment.charged"
    event_version: ClassVar[int] = 1

    order_id: str
    customer_id: str
    charge_id: str
    attempt: int
    amount: Amount
    occurred_at: UtcTime


class PaymentRefunded(IntegrationEvent):
    """A payment taken for an order was given back."""

    event_name: ClassVar[str] = "payment.refunded"
    event_version: ClassVar[int] = 1

    order_id: str
    customer_id: str
    refund_id: str
    amount: Amount
    occurred_at: UtcTime


PUBLISHED: tuple[type[IntegrationEvent], ...] = (PaymentCharged, PaymentRefunded)
