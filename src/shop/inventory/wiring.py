"""How the inventory context is put together for the platform: :func:`module`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shop.inventory.api import router
from shop.inventory.application import (
    HANDLERS,
    GetStockLevel,
    SeedStock,
    StockLevel,
)
from shop.inventory.domain import EVENTS, Stock
from shop.inventory.infrastructure import StockLevels, stock_page
from shop.inventory.messages import CommitStock, ReleaseStock, ReserveStock
from shop.inventory.sample import SAMPLE_STOCK
from shop.kernel import ProductId
from shop.platform.module import Module

if TYPE_CHECKING:
    from invariant.hosting import Host
    from shop.platform.context import ShopContext


def module(shop: ShopContext) -> Module:
    """Inventory on the shop's event store; its admin list is a projection."""
    levels = StockLevels()

    async def stock_level(query: GetStockLevel) -> StockLevel:
        stock = await shop.app.aggregates.repository(Stock).find(ProductId(query.product_id))
        return StockLevel.of(stock if stock is not None else Stock(ProductId(query.product_id)))

    async def page(offset: int, limit: int) -> tuple[list[StockLevel], int]:
        return await stock_page(shop.read_models, offset=offset, limit=limit)

    async def setup(host: Host) -> None:
        if shop.settings.sample_catalog:
            for product, units in SAMPLE_STOCK.items():
                await shop.commands.dispatch(SeedStock(product_id=product, on_hand=units))

    return Module(name="inventory", events=EVENTS, commands=HANDLERS,
                  accepts=(ReserveStock, ReleaseStock, CommitStock),
                  queries={GetStockLevel: stock_level}, projections=[levels],
                  router=router(page, levels.name), setup=setup)
