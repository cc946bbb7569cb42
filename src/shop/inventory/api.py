"""Inventory's HTTP API: public availability and the admin's stock counts."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from invariant.domain import ProjectionError
from shop.inventory.application import GetStockLevel, SetStock, StockLevel
from shop.inventory.domain import MAX_UNITS
from shop.platform.auth import AdminUser
from shop.platform.routing import ID_PATTERN, Body, Integer, Page, Paging, ShopDep

ProductIdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=64,
                                    description="A product id, e.g. 'keyboard'")]
StockPage = Callable[[int, int], Awaitable[tuple[list[StockLevel], int]]]


class Availability(BaseModel):
    """How many units of a product a new order can get now."""

    product_id: str
    available: int
    in_stock: bool


class StockOut(BaseModel):
    """A product's stock: on hand, held by orders, available."""

    product_id: str
    on_hand: int
    reserved: int
    available: int

    @classmethod
    def of(cls, level: StockLevel) -> StockOut:
        return cls(product_id=level.product_id, on_hand=level.on_hand,
                   reserved=level.reserved, available=level.available)


class StockCount(Body):
    """The units on hand after a count (at least what orders hold)."""

    on_hand: Integer = Field(ge=0, le=MAX_UNITS)


def router(stock_page: StockPage, levels_projection: str) -> APIRouter:
    api = APIRouter(tags=["inventory"])

    @api.get("/inventory/{product_id}", summary="Units available to order")
    async def availability(shop: ShopDep, product_id: ProductIdPath) -> Availability:
        level: StockLevel = await shop.queries.ask(GetStockLevel(product_id))
        return Availability(product_id=product_id, available=level.available,
                            in_stock=level.available > 0)

    @api.put("/admin/inventory/{product_id}", summary="Set the units on hand")
    async def set_stock(shop: ShopDep, admin: AdminUser, product_id: ProductIdPath,
                        body: StockCount) -> StockOut:
        result = await shop.commands.dispatch(SetStock(product_id=product_id,
                                                       on_hand=body.on_hand))
        if shop.app.projections is not None and result.position:
            # read-your-writes for the admin list; the count itself is already stored
            with contextlib.suppress(ProjectionError):
                await shop.app.projections.wait_until(levels_projection, result.position, 5.0)
        level: StockLevel = await shop.queries.ask(GetStockLevel(product_id))
        return StockOut.of(level)

    @api.get("/admin/inventory", summary="Stock of every stocked product")
    async def list_stock(admin: AdminUser, paging: Paging) -> Page[StockOut]:
        levels, total = await stock_page(paging.offset, paging.limit)
        return paging.page([StockOut.of(level) for level in levels], total)

    return api
