"""The shared kernel of ordering and billing (and every context that names them): typed
identities and Money. Changing anything here is a decision for every context that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from invariant.domain import Currency, Identity, Money


@dataclass(frozen=True, slots=True)
class CustomerId(Identity):
    """A registered customer: the identity context's user id."""


@dataclass(frozen=True, slots=True)
class OrderId(Identity):
    """An order, from its draft to its fulfilment."""


@dataclass(frozen=True, slots=True)
class ProductId(Identity):
    """A product of the catalog (also the stock-keeping unit of inventory)."""


__all__ = ["Currency", "CustomerId", "Money", "OrderId", "ProductId"]
