"""The catalog's contract: one declaration gives the product's value object (validated, with
every problem listed as ``FieldError(field, message, code)``), its table
``catalog_products`` and its JSON Schema."""

from __future__ import annotations

from decimal import Decimal

from invariant.contracts import Contract, field, rule
from invariant.domain import Currency, Money, ValidationError

ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
"""Printable text on one line: no control characters (PostgreSQL refuses NUL in text)."""
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
"""Printable text; tabs and line breaks allowed."""


class ProductDetails(Contract, table="catalog_products", id_length=64):
    """What the catalog says about a product: its name, description, price and whether it
    is on sale. Stored one row per product in ``catalog_products``."""

    name: str = field(min_length=1, length=120, pattern=ONE_LINE,
                      description="What customers see and search for")
    description: str = field("", length=2000, pattern=TEXT)
    price_amount: Decimal = field(ge=0, lt=1_000_000,
                                  description="The unit price, in the currency's units")
    currency: str = field(length=3, pattern=r"^[A-Z]{3}$", description="ISO 4217 code")
    active: bool = field(True, index=True, description="On sale (listed and orderable)")

    @rule(field="name", code="blank", message="must not be blank")
    def _name_not_blank(self) -> bool:
        return bool(self.name.strip())

    @rule(field="currency", code="unknown_currency",
          message="is not an ISO 4217 currency shop knows (e.g. USD, EUR, GBP, JPY)")
    def _known_currency(self) -> bool:
        return _currency(self.currency) is not None

    @rule(field="price_amount", code="too_precise",
          message="has more decimal places than the currency allows (e.g. 12.50 for USD)")
    def _price_fits_currency(self) -> bool:
        currency = _currency(self.currency)
        if currency is None:
            return True  # reported by _known_currency
        try:
            Money.of(self.price_amount, currency)
        except ValidationError:
            return False
        return True

    @property
    def price(self) -> Money:
        """The unit price as Money (at the currency's scale)."""
        return Money.of(self.price_amount, self.currency)


def _currency(code: str) -> Currency | None:
    try:
        return Currency.of(code)
    except ValidationError:
        return None
