"""How the ordering context is put together for the platform: :func:`module`."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from shop.ordering.api import router
from shop.ordering.application import (
    GetOrder,
    ListOrders,
    OrderingHandlers,
    OrderList,
    OrderView,
    PricedProduct,
)
from shop.ordering.domain import EVENTS
from shop.ordering.infrastructure import CustomerOrders, OrderQueries
from shop.ordering.messages import CancelOrder, MarkOrderShipped
from shop.ordering.published import PUBLISHED
from shop.platform.module import Module

if TYPE_CHECKING:
    from shop.platform.context import ShopContext


def module(shop: ShopContext) -> Module:
    """Ordering's part of the shop; prices come from catalog's ``GetProductForSale``."""
    from shop.catalog.messages import GetProductForSale

    async def price_of(product_id: str) -> PricedProduct:
        product = await shop.queries.ask(GetProductForSale(product_id))
        return PricedProduct(product.name, product.unit_price)

    @functools.cache
    def queries() -> OrderQueries:
        # Built on first use: the shop's store and database exist once it is assembled.
        return OrderQueries(shop.app.aggregates, shop.read_models)

    async def get_order(query: GetOrder) -> OrderView:
        return await queries().get_order(query)

    async def list_orders(query: ListOrders) -> OrderList:
        return await queries().list_orders(query)

    return Module(
        name="ordering",
        events=EVENTS,
        commands=OrderingHandlers(price_of, shop.clock).handlers(),
        accepts=(CancelOrder, MarkOrderShipped),
        queries={GetOrder: get_order, ListOrders: list_orders},
        projections=[CustomerOrders()],
        integration_events=PUBLISHED,
        router=router(),
    )
