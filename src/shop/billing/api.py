"""Billing over HTTP: a customer's invoices."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from shop.billing.application import Invoice, InvoicePage, ListInvoices
from shop.platform.auth import CurrentUser
from shop.platform.routing import MoneyOut, Page, Paging, ShopDep


class InvoiceLineOut(BaseModel):
    product_id: str
    name: str
    quantity: int
    unit_price: MoneyOut


class InvoiceOut(BaseModel):
    invoice_id: str
    order_id: str
    status: str = Field(description="open (placed, unpaid), paid, void (cancelled unpaid) "
                                    "or refunded")
    total: MoneyOut | None
    paid: MoneyOut | None
    refunded: MoneyOut | None
    lines: list[InvoiceLineOut]
    issued_at: datetime | None
    paid_at: datetime | None


def _out(invoice: Invoice) -> InvoiceOut:
    currency = invoice.currency or ""

    def amount(value: Decimal | None) -> MoneyOut | None:
        return None if value is None else MoneyOut(amount=str(value), currency=currency)

    return InvoiceOut(
        invoice_id=invoice.invoice_id, order_id=invoice.order_id, status=invoice.status,
        total=amount(invoice.total), paid=amount(invoice.paid),
        refunded=amount(invoice.refunded),
        lines=[InvoiceLineOut(product_id=x.product_id, name=x.name, quantity=x.quantity,
                              unit_price=MoneyOut(amount=str(x.unit_price),
                                                   currency=currency))
               for x in invoice.lines],
        issued_at=invoice.issued_at, paid_at=invoice.paid_at)


def router() -> APIRouter:
    api = APIRouter(prefix="/billing", tags=["billing"])

    @api.get("/invoices")
    async def list_invoices(shop: ShopDep, user: CurrentUser, paging: Paging
                            ) -> Page[InvoiceOut]:
        """Your invoices, newest first (updated within moments of each payment)."""
        found: InvoicePage = await shop.queries.ask(
            ListInvoices(user.user_id, paging.offset, paging.limit))
        return paging.page([_out(i) for i in found.items], found.total)

    return api
