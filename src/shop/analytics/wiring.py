"""How the analytics context is put together for the platform: :func:`module`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from shop.analytics.api import router
from shop.analytics.application import GetSalesReport, SalesReport, SalesReportStore
from shop.analytics.infrastructure import CONSUMER, SqlSalesReports, metadata
from shop.platform.module import Module

if TYPE_CHECKING:
    from invariant.hosting import Host
    from shop.platform.context import ShopContext


def module(shop: ShopContext) -> Module:
    """Analytics' part of the shop."""
    settings = shop.settings
    store: SalesReportStore
    lifespan = None
    if settings.analytics_redis_url:
        from shop.analytics.redis_store import RedisSalesReports

        redis = RedisSalesReports(settings.analytics_redis_url,
                                  prefix=settings.analytics_redis_prefix)

        @contextlib.asynccontextmanager
        async def connected(host: Host) -> AsyncIterator[None]:
            async with redis.connected():
                yield

        store, lifespan = redis, connected
    else:
        store = SqlSalesReports(lambda: shop.read_models)

    async def sales_report(query: GetSalesReport) -> SalesReport:
        return await store.report()

    return Module(name="analytics", consumers={CONSUMER: store.consumer},
                  queries={GetSalesReport: sales_report}, router=router(), tables=metadata,
                  lifespan=lifespan)
