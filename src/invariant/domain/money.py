"""Money and Currency on Decimal: exact, currency-safe, never a float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import ClassVar

from invariant.domain.errors import (
    CurrencyMismatchError,
    FieldError,
    NegativeAmountError,
    ValidationError,
)
from invariant.domain.values import ValueObject

# ISO 4217 minor units for the currencies we know; register more with Currency.register.
_MINOR_UNITS: dict[str, int] = {
    "AED": 2, "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2, "CZK": 2,
    "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2,
    "ISK": 0, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "NOK": 2, "NZD": 2, "PLN": 2,
    "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TRY": 2, "TWD": 2, "USD": 2, "ZAR": 2,
    "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3,
}


@dataclass(frozen=True, slots=True)
class Currency(ValueObject):
    """An ISO 4217 currency, e.g. ``Currency("USD")``."""

    code: str

    def validate(self) -> None:
        if self.code not in _MINOR_UNITS:
            raise ValidationError.single(
                "currency",
                f"unknown ISO 4217 currency code {self.code!r} "
                "(use an upper-case code such as 'USD', or Currency.register it)",
                "unknown_currency",
                subject="Currency",
            )

    @classmethod
    def of(cls, code: str) -> Currency:
        """The (cached) currency for an ISO 4217 code."""
        cached = _CACHE.get(code)
        if cached is None:
            cached = cls(code)
            _CACHE[code] = cached
        return cached

    @property
    def minor_units(self) -> int:
        """Digits after the decimal point (2 for USD, 0 for JPY, 3 for KWD)."""
        return _MINOR_UNITS[self.code]

    @staticmethod
    def known() -> dict[str, int]:
        """Every code known now, with its minor units (a copy: see :meth:`register`)."""
        return dict(_MINOR_UNITS)

    @staticmethod
    def register(code: str, minor_units: int) -> None:
        """Teach invariant a currency it does not know yet (known ones cannot change)."""
        if not isinstance(code, str) or len(code) != 3 or not code.isalpha() \
                or not code.isupper():
            raise ValidationError.single(
                "currency", f"{code!r} is not a three-letter upper-case code", "invalid_currency"
            )
        if not isinstance(minor_units, int) or isinstance(minor_units, bool) \
                or not 0 <= minor_units <= 4:
            raise ValidationError.single(
                "minor_units", f"must be an int from 0 to 4, got {minor_units!r}",
                "invalid_minor_units",
            )
        known = _MINOR_UNITS.get(code)
        if known is not None and known != minor_units:
            raise ValidationError.single(
                "currency", f"{code} is already known with {known} minor units",
                "currency_redefined",
            )
        _MINOR_UNITS[code] = minor_units

    def __str__(self) -> str:
        return self.code


_CACHE: dict[str, Currency] = {}

# Amounts stay below 10**18 so that every sum and difference of two amounts is exact within
# Decimal's default 28 significant digits (18 integer digits + at most 4 decimals + a carry).
MAX_AMOUNT = Decimal(10) ** 18
_WIDE = Context(prec=80)
"""Products are computed in this context, wide enough that only the final rounding
happens (one context for all: making a local one per product cost most of it)."""
_QUANTA: dict[int, Decimal] = {}

AmountLike = Decimal | int | str


@dataclass(frozen=True, slots=True)
class Money(ValueObject):
    """A non-negative amount of one currency, exact to the currency's minor unit.

    Build it with :meth:`of` (``Money.of("12.50", "USD")``). Floats are refused: they cannot
    represent most prices exactly. Arithmetic never mixes currencies and never goes below zero.
    """

    amount: Decimal
    currency: Currency

    _ROUNDING: ClassVar[str] = ROUND_HALF_EVEN

    def validate(self) -> None:
        amount = self.amount
        if not isinstance(amount, Decimal) or not amount.is_finite():
            raise ValidationError.single(
                "amount", f"must be a finite Decimal, got {amount!r}", "invalid_amount",
                subject="Money",
            )
        if amount < 0:
            raise NegativeAmountError(
                [FieldError("amount", f"must not be negative, got {amount}", "negative_amount")],
                subject="Money",
            )
        if amount >= MAX_AMOUNT:
            raise _too_large(amount)
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > self.currency.minor_units:
            raise ValidationError.single(
                "amount",
                f"{amount} has more decimal places than {self.currency.code} allows "
                f"({self.currency.minor_units})",
                "too_precise",
                subject="Money",
            )

    @classmethod
    def of(cls, amount: AmountLike, currency: Currency | str) -> Money:
        """``Money.of("10.50", "USD")``; accepts Decimal, int or a decimal string.

        The amount is kept at the currency's scale (``Money.of(5, "USD")`` is 5.00 USD); an
        amount finer than the currency's minor unit is refused, never rounded.
        """
        cur = currency if isinstance(currency, Currency) else Currency.of(currency)
        value = _to_decimal(amount)
        if value.is_zero():
            value = value.copy_abs()  # no "-0.00"
        if value.is_finite() and value >= 0:
            if value >= MAX_AMOUNT:
                raise _too_large(value)
            exponent = value.as_tuple().exponent
            if isinstance(exponent, int) and -exponent != cur.minor_units:
                scaled = value.quantize(Decimal(1).scaleb(-cur.minor_units))
                if scaled == value:  # "5.000" is 5.00 exactly; "5.001" is refused below
                    value = scaled
        return cls(value, cur)

    @classmethod
    def _trusted(cls, amount: Decimal, currency: Currency) -> Money:
        # For results that are valid by construction (sums of valid amounts).
        money = object.__new__(cls)
        _set_amount(money, amount)
        _set_currency(money, currency)
        return money

    @classmethod
    def zero(cls, currency: Currency | str) -> Money:
        return cls.of(0, currency)

    @classmethod
    def from_stored(cls, amount: str, currency: str) -> Money:
        """Rebuild from stored text (``str(amount)``) with cheap but complete checks.

        Values are interned: the same stored amount and currency give the same (immutable)
        instance, which makes loading long histories of repeated amounts cheap.
        """
        by_amount = _INTERNED.get(currency)
        if by_amount is not None:
            money = by_amount.get(amount)
            if money is not None:
                return money
        units = _MINOR_UNITS.get(currency)
        cur = Currency.of(currency) if units is None else _CACHE.get(currency) or \
            Currency.of(currency)
        try:
            value = Decimal(amount)
        except (InvalidOperation, TypeError, ValueError):
            raise ValidationError.single(
                "amount", f"{amount!r} is not a decimal number", "invalid_amount",
                subject="Money",
            ) from None
        dot = amount.find(".")
        if (
            not value.is_finite() or not 0 <= value < MAX_AMOUNT or "E" in amount
            or "e" in amount or (dot >= 0 and len(amount) - dot - 1 > cur.minor_units)
        ):
            money = cls(value, cur)  # the full validation names the problem
        else:
            money = cls._trusted(value, cur)
        if by_amount is None:
            by_amount = _INTERNED.setdefault(cur.code, {})
        elif len(by_amount) >= _INTERN_LIMIT:
            by_amount.clear()
        by_amount[amount] = money
        return money

    def add(self, other: Money) -> Money:
        currency = self.currency
        if currency is not other.currency and currency != other.currency:
            raise CurrencyMismatchError(currency.code, other.currency.code)
        total = self.amount + other.amount
        if total >= MAX_AMOUNT:
            raise _too_large(total)
        money = _new(Money)
        _set_amount(money, total)
        _set_currency(money, currency)
        return money

    def subtract(self, other: Money) -> Money:
        """The difference; raises :class:`NegativeAmountError` when it would go below zero."""
        self._same_currency(other)
        difference = self.amount - other.amount
        if difference < 0:
            raise NegativeAmountError(
                [FieldError("amount", f"{self} - {other} would be negative", "negative_amount")],
                subject="Money",
            )
        return Money._trusted(difference, self.currency)

    def multiply(self, factor: Decimal | int) -> Money:
        """The product, rounded half-even to the currency's minor unit."""
        if isinstance(factor, float | bool):
            raise ValidationError.single(
                "factor", "use a Decimal or an int, never a float", "invalid_factor",
                subject="Money",
            )
        minor_units = self.currency.minor_units
        quantum = _QUANTA.get(minor_units)
        if quantum is None:
            quantum = _QUANTA[minor_units] = Decimal(1).scaleb(-minor_units)
        try:
            product = _WIDE.multiply(self.amount, Decimal(factor)).quantize(
                quantum, rounding=self._ROUNDING, context=_WIDE)
        except InvalidOperation:
            raise _too_large(self.amount) from None
        if 0 <= product < MAX_AMOUNT:  # at the currency's scale: valid by construction
            return Money._trusted(product, self.currency)
        return Money(product, self.currency)  # refused: negative, or too large

    def is_zero(self) -> bool:
        return self.amount == 0

    __add__ = add

    def __sub__(self, other: Money) -> Money:
        return self.subtract(other)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount >= other.amount

    def _same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatchError(self.currency.code, other.currency.code)

    def __str__(self) -> str:
        return f"{self.amount:.{self.currency.minor_units}f} {self.currency.code}"


_new = object.__new__
_set_amount = Money.__dict__["amount"].__set__  # slot setters: bypass frozen __setattr__
_set_currency = Money.__dict__["currency"].__set__
_INTERNED: dict[str, dict[str, Money]] = {}  # currency code -> stored amount -> Money
_INTERN_LIMIT = 4096


def _too_large(amount: Decimal) -> ValidationError:
    return ValidationError.single(
        "amount", f"{amount} is too large (amounts must be below 10^18)", "amount_too_large",
        subject="Money",
    )


def _to_decimal(amount: AmountLike) -> Decimal:
    if isinstance(amount, bool | float):
        raise ValidationError.single(
            "amount",
            f"use a Decimal, an int or a decimal string, never a float ({amount!r})",
            "invalid_amount",
            subject="Money",
        )
    try:
        return amount if isinstance(amount, Decimal) else Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError.single(
            "amount", f"{amount!r} is not a decimal number", "invalid_amount", subject="Money"
        ) from None
