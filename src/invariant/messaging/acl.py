"""Anti-corruption layer helpers: translate at a context boundary so that an upstream
model (a payment provider we conform to, say) never leaks into ours.

* :func:`snake_keys` / :func:`camel_keys`: the provider's ``camelCase`` keys ↔ ours.
* :func:`dollars_to_cents` / :func:`cents_to_dollars`: exact, with ``Decimal`` only;
  floats are refused (they cannot hold most amounts exactly), and fractions of a cent are
  rounded half-even (banker's rounding) unless ``exact=True`` refuses them.
* :class:`Translator`: the protocol of a two-way translator, one per external model.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Protocol, TypeVar

from invariant.domain.errors import FieldError, ValidationError

Inside = TypeVar("Inside")
Outside = TypeVar("Outside")

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_CENT = Decimal("0.01")


class Translator(Protocol[Inside, Outside]):
    """Translates one external model to ours and back."""

    def to_domain(self, outside: Outside) -> Inside:
        """Our model of what the other context sent."""

    def from_domain(self, inside: Inside) -> Outside:
        """The other context's model of ours."""


def to_snake(name: str) -> str:
    """``paymentIntentId`` → ``payment_intent_id`` (``HTTPStatus`` → ``http_status``)."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def to_camel(name: str) -> str:
    """``payment_intent_id`` → ``paymentIntentId``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake_keys(value: Any) -> Any:
    """``value`` with every mapping key, at any depth, in snake_case."""
    if isinstance(value, dict):
        return {to_snake(k): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


def camel_keys(value: Any) -> Any:
    """``value`` with every mapping key, at any depth, in camelCase."""
    if isinstance(value, dict):
        return {to_camel(k): camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


def dollars_to_cents(dollars: Decimal | str | int, *, exact: bool = False) -> int:
    """Whole cents of a dollar amount, exactly (half-even below a cent, or refused)."""
    amount = _decimal(dollars, "amount")
    cents = amount.quantize(_CENT, rounding=ROUND_HALF_EVEN)
    if exact and cents != amount:
        raise ValidationError([FieldError(
            "amount", f"{dollars} has a fraction of a cent", "too_precise")])
    return int(cents * 100)


def cents_to_dollars(cents: int) -> Decimal:
    """The dollar amount of whole ``cents`` (``1999`` → ``Decimal('19.99')``)."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise ValidationError([FieldError("amount", f"cents must be an int, got {cents!r}",
                                          "invalid_type")])
    return (Decimal(cents) / 100).quantize(_CENT)


def _decimal(value: Decimal | str | int, field: str) -> Decimal:
    if isinstance(value, float | bool):
        raise ValidationError([FieldError(
            field, f"{value!r} is a {type(value).__name__}: pass a Decimal or a string",
            "invalid_type")])
    try:
        result = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError([FieldError(field, f"{value!r} is not a number",
                                          "invalid_type")]) from None
    if not result.is_finite():
        raise ValidationError([FieldError(field, f"{value!r} is not finite",
                                          "invalid_type")])
    return result
