"""Billing's read model: one invoice per placed order, fed by integration events
(``order.placed``, ``order.cancelled``, ``payment.charged``, ``payment.refunded``) through
the inbox (each message applied once).

Messages of different streams may arrive in any order, so every handler creates the
invoice row if it is missing and fills in what its message knows; the status is derived
from the row each time: ``refunded`` > ``paid`` > ``void`` (cancelled unpaid) > ``open``.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    MetaData,
    String,
    Table,
    Text,
    Update,
    bindparam,
    select,
    update,
)

from invariant.messaging.published_language import IntegrationEvent
from shop.billing.application import Invoice, InvoiceLine, InvoicePage
from shop.ordering.published import OrderCancelled, OrderPlaced
from shop.payments.published import PaymentCharged, PaymentRefunded
from shop.platform.consumers import integration_consumer
from shop.platform.paging import read_page

CONSUMER = "billing"
metadata = MetaData()
invoices = Table(
    "billing_invoices", metadata,
    Column("order_id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=True),
    Column("total", String(40), nullable=True),
    Column("paid", String(40), nullable=True),
    Column("refunded", String(40), nullable=True),
    Column("cancelled", Boolean, nullable=False),
    Column("lines", Text, nullable=False),
    Column("issued_at", String(40), nullable=True),
    Column("paid_at", String(40), nullable=True),
    Column("updated_at", String(40), nullable=False),
)


def _apply(conn: Connection, event: IntegrationEvent) -> None:
    match event:
        case OrderPlaced():
            lines = [{"product_id": x.product_id, "name": x.name, "quantity": x.quantity,
                      "unit_price": str(x.unit_price.value)} for x in event.lines]
            _update(conn, event.order_id, event.customer_id, event.occurred_at,
                    currency=event.total.currency, total=str(event.total.value),
                    lines=json.dumps(lines), issued_at=event.occurred_at.isoformat())
        case OrderCancelled():
            _update(conn, event.order_id, event.customer_id, event.occurred_at,
                    cancelled=True)
        case PaymentCharged():
            _update(conn, event.order_id, event.customer_id, event.occurred_at,
                    currency=event.amount.currency, paid=str(event.amount.value),
                    paid_at=event.occurred_at.isoformat())
        case PaymentRefunded():
            _update(conn, event.order_id, event.customer_id, event.occurred_at,
                    refunded=str(event.amount.value))


consume = integration_consumer(_apply, OrderPlaced, OrderCancelled, PaymentCharged,
                               PaymentRefunded)
"""The billing consumer: applies one integration event to the invoices."""


_INVOICE = select(invoices).where(invoices.c.order_id == bindparam("order"))
_OPEN = invoices.insert()
_CHANGES: dict[tuple[str, ...], Update] = {}
"""Built once (per set of columns changed): building a statement per message cost more
than SQLite takes to run it."""


def _changing(columns: tuple[str, ...]) -> Update:
    built = _CHANGES.get(columns)
    if built is None:
        built = _CHANGES[columns] = update(invoices).where(
            invoices.c.order_id == bindparam("order")).values(
            {name: bindparam(f"new_{name}") for name in columns})
    return built


def _update(conn: Connection, order_id: str, customer_id: str, at: datetime,
            **values: Any) -> None:
    row = conn.execute(_INVOICE, {"order": order_id}).first()
    if row is None:
        opened = {"order_id": order_id, "customer_id": customer_id, "status": "open",
                  "currency": None, "total": None, "paid": None, "refunded": None,
                  "cancelled": False, "lines": "[]", "issued_at": None, "paid_at": None,
                  "updated_at": at.isoformat()}
        conn.execute(_OPEN, opened)
        merged = {**opened, **values}
    else:
        merged = {**row._mapping, **values}
    changes = {**values, "status": _status(merged), "updated_at": at.isoformat()}
    conn.execute(_changing(tuple(sorted(changes))),
                 {"order": order_id, **{f"new_{k}": v for k, v in changes.items()}})


def _status(row: dict[str, Any]) -> str:
    if row["refunded"] is not None:
        return "refunded"
    if row["paid"] is not None:
        return "paid"
    if row["cancelled"]:
        return "void"
    return "open"


def customer_invoices(conn: Connection, customer_id: str, offset: int, limit: int
                      ) -> InvoicePage:
    """A customer's invoices, newest first."""
    t = invoices
    rows, total = read_page(conn, t, where=t.c.customer_id == customer_id,
                            order_by=(t.c.issued_at.desc(), t.c.order_id),
                            offset=offset, limit=limit)
    return InvoicePage([_invoice(r) for r in rows], total)


def _invoice(r: Any) -> Invoice:
    def money(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    lines = [InvoiceLine(x["product_id"], x["name"], int(x["quantity"]),
                         Decimal(x["unit_price"])) for x in json.loads(r["lines"])]
    return Invoice(
        invoice_id=f"INV-{r['order_id']}", order_id=r["order_id"], status=r["status"],
        currency=r["currency"], total=money(r["total"]), paid=money(r["paid"]),
        refunded=money(r["refunded"]), lines=lines,
        issued_at=None if r["issued_at"] is None else datetime.fromisoformat(r["issued_at"]),
        paid_at=None if r["paid_at"] is None else datetime.fromisoformat(r["paid_at"]))
