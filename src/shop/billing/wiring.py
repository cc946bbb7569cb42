"""How the billing context is put together for the platform: :func:`module`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection

from shop.billing.api import router
from shop.billing.application import InvoicePage, ListInvoices
from shop.billing.infrastructure import CONSUMER, consume, customer_invoices, metadata
from shop.platform.module import Module

if TYPE_CHECKING:
    from shop.platform.context import ShopContext


def module(shop: ShopContext) -> Module:
    """Billing's part of the shop."""

    async def list_invoices(query: ListInvoices) -> InvoicePage:
        def read(conn: Connection) -> InvoicePage:
            return customer_invoices(conn, query.customer_id, query.offset, query.limit)
        return await shop.read_models.run(read, write=False)

    return Module(name="billing", consumers={CONSUMER: consume},
                  queries={ListInvoices: list_invoices}, router=router(), tables=metadata)
