"""The anti-corruption layer in front of a payment provider we conform to: its camelCase
JSON with amounts in dollars (as strings) becomes our snake_case ``Payment`` with integer
cents, and back. Nothing of the provider's model passes this module."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from invariant.messaging.acl import camel_keys, cents_to_dollars, dollars_to_cents, snake_keys


@dataclass(frozen=True, slots=True)
class Payment:
    """Our model: an order's payment, in integer cents."""

    payment_id: str
    order_id: str
    amount_cents: int
    currency: str
    status: str


_STATUS = {"succeeded": "captured", "requires_capture": "authorized", "canceled": "voided"}


class PaymentProviderTranslator:
    """``{"paymentIntentId", "metadata": {"orderId"}, "amountDollars", ...}`` ↔ Payment."""

    def to_domain(self, outside: dict[str, Any]) -> Payment:
        """Our payment from the provider's payload."""
        p = snake_keys(outside)
        return Payment(
            payment_id=p["payment_intent_id"], order_id=p["metadata"]["order_id"],
            amount_cents=dollars_to_cents(Decimal(str(p["amount_dollars"]))),
            currency=p["currency"].upper(), status=_STATUS.get(p["status"], "unknown"))

    def from_domain(self, inside: Payment) -> dict[str, Any]:
        """The provider's payload for our payment (a capture request)."""
        return camel_keys({
            "payment_intent_id": inside.payment_id,
            "amount_dollars": str(cents_to_dollars(inside.amount_cents)),
            "currency": inside.currency.lower(),
            "metadata": {"order_id": inside.order_id},
        })
