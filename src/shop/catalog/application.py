"""The catalog's use cases, and what it publishes to other contexts.

Published (other contexts may import these): the query :class:`GetProductForSale` and its
answer :class:`ProductForSale`, asked on the shared query bus by ordering when an item is
added to a cart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from invariant.domain import FieldError, Money, NotFoundError, ValidationError
from shop.catalog.contracts import ProductDetails
from shop.catalog.domain import Product, ProductNotForSale, ProductState
from shop.catalog.messages import GetProductForSale, ProductForSale
from shop.kernel import ProductId

ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
"""Product ids: lower-case letters, digits and inner dashes (slugs and UUIDs), 1-64 long."""
MAX_SEARCH_TERMS = 16
_WORD = re.compile(r"\w+")


# -- published ---------------------------------------------------------------------------


# -- read side ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ProductView:
    """A product as lists and pages show it."""

    product_id: str
    name: str
    description: str
    price: Money
    active: bool

    @classmethod
    def of(cls, product_id: str, details: ProductState) -> ProductView:
        return cls(product_id, details.name, details.description, details.price,
                   details.active)


class ProductCatalog(Protocol):
    """Where products are kept (the port; see ``infrastructure.SqlProductCatalog``)."""

    async def get(self, product_id: ProductId) -> Product:
        """The product, or NotFoundError."""
        ...

    async def add(self, product: Product) -> None:
        """Store a new product; UniquenessError when the id is taken."""
        ...

    async def revise(self, product_id: ProductId, change: Callable[[Product], None]
                     ) -> Product:
        """Load, change and store a product in one transaction (retried on conflicts)."""
        ...

    async def page(self, *, offset: int, limit: int, active_only: bool
                   ) -> tuple[list[ProductView], int]:
        """Products ordered by name, and how many there are in all."""
        ...

    async def search(self, terms: Sequence[str], *, offset: int, limit: int
                     ) -> tuple[list[ProductView], int]:
        """Active products whose name or description contain every term, best first."""
        ...


# -- use cases ---------------------------------------------------------------------------

class CatalogService:
    """Adds and revises products; answers lists, pages, searches and GetProductForSale."""

    def __init__(self, products: ProductCatalog) -> None:
        self.products = products

    async def add(self, data: Mapping[str, object], product_id: str | None = None
                  ) -> ProductView:
        """A new product from untrusted ``data`` (the contract's fields); ValidationError
        lists every problem, UniquenessError when ``product_id`` is taken."""
        id = parse_product_id(product_id) if product_id is not None else ProductId.new()
        product = Product.add(id, ProductDetails.create(data))
        await self.products.add(product)
        return ProductView.of(id.value, product.state)

    async def revise(self, product_id: str, changes: Mapping[str, object]) -> ProductView:
        """Apply ``changes`` (some of the contract's fields) to a product."""
        id = _known_id(product_id)

        def change(product: Product) -> None:
            current = product.state
            assert isinstance(current, ProductDetails)
            product.revise(current.replace(**changes))

        product = await self.products.revise(id, change)
        return ProductView.of(id.value, product.state)

    async def product(self, product_id: str, *, include_inactive: bool = False
                      ) -> ProductView:
        """One product; an inactive one is not found unless ``include_inactive``."""
        product = await self.products.get(_known_id(product_id))
        if not (include_inactive or product.state.active):
            raise ProductNotForSale(product_id)
        return ProductView.of(product.id.value, product.state)

    async def listing(self, *, offset: int, limit: int, include_inactive: bool = False
                      ) -> tuple[list[ProductView], int]:
        return await self.products.page(offset=offset, limit=limit,
                                        active_only=not include_inactive)

    async def search(self, text: str, *, offset: int, limit: int
                     ) -> tuple[list[ProductView], int]:
        """Products matching the words of ``text`` (any text: punctuation is ignored)."""
        terms = search_terms(text)
        if not terms:
            return [], 0
        return await self.products.search(terms, offset=offset, limit=limit)

    async def for_sale(self, query: GetProductForSale) -> ProductForSale:
        """The answer to :class:`GetProductForSale`."""
        try:
            product = await self.products.get(_known_id(query.product_id))
        except NotFoundError:
            raise ProductNotForSale(query.product_id) from None
        price = product.unit_price_for_sale()
        return ProductForSale(product.id.value, product.state.name, price)


def parse_product_id(text: str) -> ProductId:
    """A product id chosen by the caller, checked; ValidationError when malformed."""
    if not isinstance(text, str) or ID_PATTERN.fullmatch(text) is None:
        raise ValidationError([FieldError(
            "id", "must be 1-64 lower-case letters, digits or inner dashes (e.g. 'red-mug')",
            "invalid_id")], subject="Product")
    return ProductId(text)


def _known_id(text: str) -> ProductId:
    """An id to look up: a malformed one cannot name a product, so it is simply not found."""
    if not isinstance(text, str) or ID_PATTERN.fullmatch(text) is None:
        raise ProductNotForSale(str(text)[:80])
    return ProductId(text)


def search_terms(text: str) -> tuple[str, ...]:
    """The words of a search text, lower-cased (at most 16, each at most 64 characters);
    everything else (quotes, operators, punctuation, control characters) is dropped."""
    words = (w[:64] for w in _WORD.findall(text.lower()) if w.strip("_"))
    return tuple(dict.fromkeys(words))[:MAX_SEARCH_TERMS]
