"""The catalog's model: a product on (or off) sale, kept as its current state.

The state is a validated value (``shop.catalog.contracts.ProductDetails``); the domain sees
it through :class:`ProductState`, so this module stays free of persistence and pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from invariant.domain import DomainEvent, Money, NotFoundError, StateAggregate
from shop.kernel import ProductId


class ProductState(Protocol):
    """What the domain needs of a product's details (an immutable, validated value)."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def price(self) -> Money: ...

    @property
    def active(self) -> bool: ...


@dataclass(frozen=True)
class ProductAdded(DomainEvent):
    """A product was added to the catalog."""

    event_type = "catalog.ProductAdded"

    product_id: str
    name: str
    price: Money
    active: bool


@dataclass(frozen=True)
class ProductRevised(DomainEvent):
    """A product's name, description, price or availability changed."""

    event_type = "catalog.ProductRevised"

    product_id: str
    name: str
    price: Money
    active: bool


class ProductNotForSale(NotFoundError):
    """The product is unknown or withdrawn from sale: it cannot be ordered."""

    def __init__(self, product_id: str) -> None:
        self.product_id = product_id
        super().__init__(f"product {product_id!r} is not for sale (unknown or inactive)")


class Product(StateAggregate[ProductId, ProductState]):
    """A product of the catalog."""

    @classmethod
    def add(cls, id: ProductId, details: ProductState) -> Product:
        """A new product with validated ``details``."""
        product = cls(id, details)
        product.record(ProductAdded(id.value, details.name, details.price, details.active))
        return product

    def revise(self, details: ProductState) -> None:
        """Replace the details; records nothing when they are unchanged."""
        if details == self.state:
            return
        self.change(details, ProductRevised(self.id.value, details.name, details.price,
                                            details.active))

    def unit_price_for_sale(self) -> Money:
        """The price an order pays, or ProductNotForSale when withdrawn."""
        if not self.state.active:
            raise ProductNotForSale(self.id.value)
        return self.state.price
