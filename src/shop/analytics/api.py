"""Analytics over HTTP: the sales report (admins only)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from shop.analytics.application import GetSalesReport, SalesReport
from shop.platform.auth import AdminUser
from shop.platform.routing import ShopDep


class OrdersOut(BaseModel):
    placed: int
    cancelled: int
    shipped: int


class RevenueOut(BaseModel):
    """Per currency, as decimal strings: charged, refunded, net (charged - refunded)."""

    currency: str
    charged: str = Field(examples=["89.00"])
    refunded: str
    net: str


class ProductUnitsOut(BaseModel):
    product_id: str
    ordered: int
    cancelled: int
    shipped: int


class ReportOut(BaseModel):
    orders: OrdersOut
    revenue: list[RevenueOut]
    products: list[ProductUnitsOut]


def router() -> APIRouter:
    api = APIRouter(prefix="/admin/analytics", tags=["analytics"])

    @api.get("")
    async def sales_report(shop: ShopDep, admin: AdminUser) -> ReportOut:
        """Orders placed, cancelled and shipped; revenue per currency; units per product
        (from integration events: updated within moments)."""
        r: SalesReport = await shop.queries.ask(GetSalesReport())
        return ReportOut(
            orders=OrdersOut(placed=r.orders_placed, cancelled=r.orders_cancelled,
                             shipped=r.orders_shipped),
            revenue=[RevenueOut(currency=x.currency, charged=str(x.charged),
                                refunded=str(x.refunded), net=str(x.net)) for x in r.revenue],
            products=[ProductUnitsOut(product_id=p.product_id, ordered=p.ordered,
                                      cancelled=p.cancelled, shipped=p.shipped)
                      for p in r.products])

    return api
