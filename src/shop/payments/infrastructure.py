"""The anti-corruption layer in front of the payment provider.

Shop's side speaks :class:`~invariant.domain.Money` and its own outcomes
(:class:`Approved`, :class:`Declined`, :class:`TimedOut`); the provider speaks snake_case
dicts, integer cents, lower-case currency codes and result codes. Nothing of the provider's
model passes this module. Idempotency keys are derived from the order and the attempt, so a
retried command never charges twice.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, Protocol

from invariant.domain import Currency, Money
from invariant.messaging.acl import cents_to_dollars, dollars_to_cents
from shop.payments.domain import Approved, ChargeOutcome, Declined, TimedOut

_DECLINE_REASONS = {"51": "insufficient funds", "05": "card declined",
                    "54": "card expired", "14": "unknown charge"}


class ProviderApi(Protocol):
    """The provider's API as shop calls it (see :mod:`shop.payments.provider`)."""

    async def create_charge(self, request: dict[str, Any]) -> dict[str, Any]: ...

    async def create_refund(self, request: dict[str, Any]) -> dict[str, Any]: ...


class ProviderUnavailable(Exception):
    """The provider did not answer a refund in time; the command is retried."""


class ProviderError(Exception):
    """The provider answered something this layer cannot make sense of."""


def to_minor(money: Money) -> int:
    """Whole minor units of ``money`` (cents for USD), exactly."""
    if money.currency.minor_units == 2:
        return dollars_to_cents(money.amount, exact=True)
    return int(money.amount.scaleb(money.currency.minor_units))


def from_minor(units: int, currency: str) -> Money:
    """The Money of ``units`` minor units of ``currency``."""
    code = Currency.of(currency.upper())
    if code.minor_units == 2:
        return Money.of(cents_to_dollars(units), code)
    return Money.of(Decimal(units).scaleb(-code.minor_units), code)


class PaymentGateway:
    """Charges and refunds through the provider, waiting at most ``timeout`` seconds."""

    def __init__(self, provider: ProviderApi, timeout: float) -> None:
        self.provider = provider
        self.timeout = timeout

    async def charge(self, order_id: str, customer_id: str, attempt: int, amount: Money
                     ) -> ChargeOutcome:
        request = {"idempotency_key": f"charge:{order_id}:{attempt}",
                   "amount_cents": to_minor(amount),
                   "currency_code": amount.currency.code.lower(),
                   "merchant_reference": order_id, "payer_ref": customer_id}
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self.provider.create_charge(request)
        except TimeoutError:
            return TimedOut()
        if answer.get("result_code") == "00":
            charged = from_minor(int(answer["amount_cents"]), str(answer["currency_code"]))
            if charged != amount:
                raise ProviderError(f"the provider charged {charged} for order {order_id}, "
                                    f"not {amount}")
            return Approved(str(answer["charge_ref"]))
        code = str(answer.get("result_code"))
        return Declined(_DECLINE_REASONS.get(code, f"declined by the provider (code {code})"))

    async def refund(self, order_id: str, charge_id: str) -> str:
        """The provider's refund reference; one refund per charge, however often asked."""
        request = {"idempotency_key": f"refund:{order_id}", "charge_ref": charge_id}
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self.provider.create_refund(request)
        except TimeoutError:
            raise ProviderUnavailable(
                f"the payment provider did not answer the refund of order {order_id} within "
                f"{self.timeout} s; it will be retried") from None
        if answer.get("result_code") != "00":
            raise ProviderError(f"the provider refused the refund of order {order_id}: "
                                f"{answer.get('result_text')}")
        return str(answer["refund_ref"])
