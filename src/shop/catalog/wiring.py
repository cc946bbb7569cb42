"""How the catalog context is put together for the platform: :func:`module`."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from invariant.domain import UniquenessError
from shop.catalog.api import router
from shop.catalog.application import CatalogService
from shop.catalog.infrastructure import SqlProductCatalog
from shop.catalog.messages import GetProductForSale
from shop.catalog.sample import SAMPLE_PRODUCTS
from shop.platform.module import Module

if TYPE_CHECKING:
    from invariant.hosting import Host
    from shop.platform.context import ShopContext


def module(shop: ShopContext) -> Module:
    """The catalog, in the shop's database (opened when the shop starts)."""
    products = SqlProductCatalog(lambda: shop.read_models, clock=shop.clock)
    catalog = CatalogService(products)

    async def setup(host: Host) -> None:
        await products.setup()
        if shop.settings.sample_catalog and await products.count() == 0:
            for sample in SAMPLE_PRODUCTS:
                with contextlib.suppress(UniquenessError):  # another process was first
                    await catalog.add(sample.details(), sample.id)

    return Module(name="catalog", queries={GetProductForSale: catalog.for_sale},
                  router=router(catalog), tables=products.table.metadata, setup=setup)

