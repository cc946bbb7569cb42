"""Billing's queries and DTOs: a customer's invoices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from invariant.application import Query


@dataclass(frozen=True)
class ListInvoices(Query):
    """A customer's invoices, newest first."""

    customer_id: str
    offset: int = 0
    limit: int = 20


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    product_id: str
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class Invoice:
    """One order's invoice: what was ordered, paid and refunded (in ``currency``)."""

    invoice_id: str
    order_id: str
    status: str
    currency: str | None
    total: Decimal | None
    paid: Decimal | None
    refunded: Decimal | None
    lines: list[InvoiceLine]
    issued_at: datetime | None
    paid_at: datetime | None


@dataclass(frozen=True, slots=True)
class InvoicePage:
    items: list[Invoice]
    total: int
