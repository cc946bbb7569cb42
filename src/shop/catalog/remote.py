"""Catalog's published query, :class:`GetProductForSale`, answered by catalog's service
over its published HTTP API (``GET /catalog/products/{id}``) through the resilient client.

A service of another context (ordering) registers :meth:`RemoteProductsForSale.for_sale`
for the query in place of catalog's in-process handler: the same question, the same
answers (a product, or ProductNotForSale), and an UnavailableError (503) when catalog
does not answer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from invariant.domain import Money
from invariant.domain.errors import InvariantError
from invariant.http import HttpService
from invariant.resilience import DependencyFailedError
from shop.catalog.messages import GetProductForSale, ProductForSale, ProductNotForSale

SERVICE = "catalog"


class RemoteProductsForSale:
    """Asks catalog's service which products are on sale, and at what price."""

    def __init__(self, client: HttpService) -> None:
        self._client = client

    async def for_sale(self, query: GetProductForSale) -> ProductForSale:
        """The answer to :class:`GetProductForSale`, from catalog's service."""
        response = await self._client.request(
            "GET", f"/catalog/products/{quote(query.product_id, safe='')}")
        if response.status_code in (404, 422):  # unknown, withdrawn, or not an id at all
            raise ProductNotForSale(query.product_id[:80])
        if response.status_code != 200:
            raise DependencyFailedError(
                SERVICE, f"it answered {response.status_code} to a product lookup")
        return _product(response.json(), query.product_id)


def _product(body: Any, product_id: str) -> ProductForSale:
    try:
        if not body["active"]:
            raise ProductNotForSale(product_id)
        price = Money.of(body["price"]["amount"], body["price"]["currency"])
        return ProductForSale(str(body["id"]), str(body["name"]), price)
    except ProductNotForSale:
        raise
    except (KeyError, TypeError, ValueError, InvariantError) as exc:
        raise DependencyFailedError(
            SERVICE, f"its product answer is not catalog's published shape ({exc!r})") from exc
