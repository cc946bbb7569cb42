"""Analytics' read model, fed by integration events through the inbox (each message
applied once): order counts, revenue per currency (charged and refunded, in minor units so
that SQL sums stay exact), and units per product (ordered, cancelled, shipped)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, select

from invariant.domain import Currency
from invariant.messaging.published_language import Amount, IntegrationEvent
from shop.analytics.application import ProductUnits, Revenue, SalesReport
from shop.ordering.published import OrderCancelled, OrderLine, OrderPlaced, OrderShipped
from shop.payments.published import PaymentCharged, PaymentRefunded
from shop.platform.consumers import integration_consumer

CONSUMER = "analytics"
metadata = MetaData()
counters = Table(
    "analytics_counters", metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
revenue = Table(
    "analytics_revenue", metadata,
    Column("currency", String(3), primary_key=True),
    Column("charged", BigInteger, nullable=False),
    Column("refunded", BigInteger, nullable=False),
)
products = Table(
    "analytics_products", metadata,
    Column("product_id", String(64), primary_key=True),
    Column("ordered", BigInteger, nullable=False),
    Column("cancelled", BigInteger, nullable=False),
    Column("shipped", BigInteger, nullable=False),
)
COUNTERS = ("orders_placed", "orders_cancelled", "orders_shipped")


def _apply(conn: Connection, event: IntegrationEvent) -> None:
    match event:
        case OrderPlaced(lines=lines):
            _count(conn, "orders_placed")
            _units(conn, lines, "ordered")
        case OrderCancelled(lines=lines):
            _count(conn, "orders_cancelled")
            _units(conn, lines, "cancelled")
        case OrderShipped(lines=lines):
            _count(conn, "orders_shipped")
            _units(conn, lines, "shipped")
        case PaymentCharged(amount=amount):
            _money(conn, amount, "charged")
        case PaymentRefunded(amount=amount):
            _money(conn, amount, "refunded")


consume = integration_consumer(_apply, OrderPlaced, OrderCancelled, OrderShipped,
                               PaymentCharged, PaymentRefunded)
"""The analytics consumer: one integration event into the counters."""


def _add(conn: Connection, table: Table, key: str, keyed: str, column: str, delta: int,
         blank: dict[str, int]) -> None:
    where = table.c[key] == keyed
    if conn.execute(select(table.c[key]).where(where)).first() is None:
        conn.execute(table.insert().values({key: keyed, **blank}))
    conn.execute(table.update().where(where).values({column: table.c[column] + delta}))


def _count(conn: Connection, name: str) -> None:
    _add(conn, counters, "name", name, "value", 1, {"value": 0})


def _units(conn: Connection, lines: list[OrderLine], column: str) -> None:
    for line in lines:
        _add(conn, products, "product_id", line.product_id, column, line.quantity,
             {"ordered": 0, "cancelled": 0, "shipped": 0})


def _money(conn: Connection, amount: Amount, column: str) -> None:
    units = int(amount.value.scaleb(Currency.of(amount.currency).minor_units))
    _add(conn, revenue, "currency", amount.currency, column, units,
         {"charged": 0, "refunded": 0})


def report(conn: Connection) -> SalesReport:
    """Everything counted so far."""
    counts = {r.name: int(r.value) for r in conn.execute(select(counters)).all()}
    money = [Revenue(r.currency, _major(r.charged, r.currency), _major(r.refunded, r.currency))
             for r in conn.execute(select(revenue).order_by(revenue.c.currency)).all()]
    units = [ProductUnits(r.product_id, int(r.ordered), int(r.cancelled), int(r.shipped))
             for r in conn.execute(select(products).order_by(products.c.product_id)).all()]
    return SalesReport(counts.get(COUNTERS[0], 0), counts.get(COUNTERS[1], 0),
                       counts.get(COUNTERS[2], 0), money, units)


def _major(units: int, currency: str) -> Decimal:
    digits = Currency.of(currency).minor_units
    return (Decimal(units).scaleb(-digits)).quantize(Decimal(1).scaleb(-digits))
