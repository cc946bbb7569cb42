"""What payments offers other contexts' process managers (fulfilment): the commands it
accepts and the events it answers with (in one process on the bus and the event log,
between services as messages through the broker).

* commands: :class:`ChargePayment`, :class:`RefundPayment`;
* events: :class:`PaymentCharged`, :class:`PaymentDeclined`, :class:`PaymentTimedOut`.
"""

from __future__ import annotations

from dataclasses import dataclass

from invariant.application import Command
from invariant.domain import Money, ValidationError
from shop.payments.domain import PaymentCharged, PaymentDeclined, PaymentTimedOut


def payment_sequence(order_id: str) -> str:
    """The sequence key one order's charges and refunds share, so the bus handles them one
    at a time: beside a charge waiting for the provider, a refund would close the payment
    under it, and the charge's retry would find it closed and keep the money taken."""
    return f"payment:{order_id}"


@dataclass(frozen=True, kw_only=True)
class ChargePayment(Command[str]):
    """Attempt number ``attempt`` to charge ``amount`` for an order; answered by one of
    PaymentCharged, PaymentDeclined or PaymentTimedOut (nothing if it was charged
    already)."""

    order_id: str
    customer_id: str
    amount: Money
    attempt: int

    def sequence_key(self) -> str:
        return payment_sequence(self.order_id)

    def validate(self) -> None:
        if self.attempt < 1:
            raise ValidationError.single("attempt", "attempts count from 1",
                                         "invalid_attempt", subject="ChargePayment")


@dataclass(frozen=True, kw_only=True)
class RefundPayment(Command[str]):
    """Give back what was charged for the order (once); with nothing charged, close the
    payment so that no late charge can go through."""

    order_id: str

    def sequence_key(self) -> str:
        return payment_sequence(self.order_id)


__all__ = [
    "ChargePayment", "PaymentCharged", "PaymentDeclined", "PaymentTimedOut", "RefundPayment",
]
