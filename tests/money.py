"""Money in US dollars, the currency most tests use."""

from __future__ import annotations

from decimal import Decimal

from invariant.domain import Money


def usd(amount: Decimal | int | str) -> Money:
    return Money.of(amount, "USD")
