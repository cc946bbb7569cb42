"""How the analytics context is put together for the platform: :func:`module`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shop.analytics.api import router
from shop.analytics.application import GetSalesReport, SalesReport
from shop.analytics.infrastructure import CONSUMER, consume, metadata, report
from shop.platform.module import Module

if TYPE_CHECKING:
    from shop.platform.context import ShopContext


def module(shop: ShopContext) -> Module:
    """Analytics' part of the shop."""

    async def sales_report(query: GetSalesReport) -> SalesReport:
        return await shop.read_models.run(report, write=False)

    return Module(name="analytics", consumers={CONSUMER: consume},
                  queries={GetSalesReport: sales_report}, router=router(), tables=metadata)
