"""How the fulfilment context is put together for the platform: :func:`module`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shop.fulfilment.api import router
from shop.fulfilment.application import OrderFulfilment
from shop.fulfilment.infrastructure import FulfilmentQueries
from shop.ordering.messages import FulfilmentStatus, GetFulfilmentStatus
from shop.platform.module import Module

if TYPE_CHECKING:
    from shop.platform.context import ShopContext


def module(shop: ShopContext) -> Module:
    """Fulfilment's part of the shop; its deadlines come from the settings."""

    async def status(query: GetFulfilmentStatus) -> FulfilmentStatus:
        return await FulfilmentQueries(shop.read_models).status(query)

    return Module(
        name="fulfilment",
        processes=[OrderFulfilment(reservation_timeout=shop.settings.reservation_timeout,
                                   payment_timeout=shop.settings.payment_timeout)],
        queries={GetFulfilmentStatus: status},
        router=router(),
    )
