"""What catalog answers other contexts (ordering prices its lines with it): the published
query :class:`GetProductForSale`, answered with a :class:`ProductForSale` or
:class:`ProductNotForSale`. In one process it is asked on the query bus; a service of
another context asks catalog's service over HTTP (:mod:`shop.catalog.remote`). Other
contexts import this module, never catalog's application or infrastructure.
"""

from __future__ import annotations

from dataclasses import dataclass

from invariant.application import Query
from invariant.domain import Money
from shop.catalog.domain import ProductNotForSale


@dataclass(frozen=True)
class GetProductForSale(Query):
    """The name and unit price of a product on sale; NotFoundError when it is unknown or
    inactive."""

    product_id: str


@dataclass(frozen=True, slots=True)
class ProductForSale:
    """A product an order may contain, at today's price."""

    product_id: str
    name: str
    unit_price: Money


__all__ = ["GetProductForSale", "ProductForSale", "ProductNotForSale"]
