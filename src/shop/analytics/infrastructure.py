"""Analytics' report in SQL (the default adapter of
:class:`~shop.analytics.application.SalesReportStore`): rows in the read-model database,
fed by integration events through the inbox (each message applied once, in the inbox's
transaction): order counts, revenue per currency (charged and refunded, in minor units so
that SQL sums stay exact), and units per product (ordered, cancelled, shipped)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, select

from invariant.messaging.consumer import Handler
from invariant.messaging.published_language import IntegrationEvent
from invariant.projections import ReadModelDatabase
from shop.analytics.application import (
    ProductUnits,
    Revenue,
    SalesReport,
    major,
    tally,
)
from shop.ordering.published import OrderCancelled, OrderPlaced, OrderShipped
from shop.payments.published import PaymentCharged, PaymentRefunded
from shop.platform.consumers import integration_consumer

CONSUMER = "analytics"
EVENTS = (OrderPlaced, OrderCancelled, OrderShipped, PaymentCharged, PaymentRefunded)
"""The integration events analytics counts."""
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


def _apply(conn: Connection, event: IntegrationEvent) -> None:
    counted = tally(event)
    for name in counted.orders:
        _add(conn, counters, "name", name, "value", 1, {"value": 0})
    for column, product_id, quantity in counted.units:
        _add(conn, products, "product_id", product_id, column, quantity,
             {"ordered": 0, "cancelled": 0, "shipped": 0})
    for column, currency, units in counted.money:
        _add(conn, revenue, "currency", currency, column, units, {"charged": 0, "refunded": 0})


consume = integration_consumer(_apply, *EVENTS)
"""The analytics consumer: one integration event into the counters."""


def _add(conn: Connection, table: Table, key: str, keyed: str, column: str, delta: int,
         blank: dict[str, int]) -> None:
    where = table.c[key] == keyed
    if conn.execute(select(table.c[key]).where(where)).first() is None:
        conn.execute(table.insert().values({key: keyed, **blank}))
    conn.execute(table.update().where(where).values({column: table.c[column] + delta}))


def report(conn: Connection) -> SalesReport:
    """Everything counted so far."""
    counts = {r.name: int(r.value) for r in conn.execute(select(counters)).all()}
    money = [Revenue(r.currency, major(r.charged, r.currency), major(r.refunded, r.currency))
             for r in conn.execute(select(revenue).order_by(revenue.c.currency)).all()]
    units = [ProductUnits(r.product_id, int(r.ordered), int(r.cancelled), int(r.shipped))
             for r in conn.execute(select(products).order_by(products.c.product_id)).all()]
    return SalesReport.of(counts, money, units)


class SqlSalesReports:
    """The report in the read-model database ``database()`` gives (asked when used: the
    host that makes it is built after the module)."""

    def __init__(self, database: Callable[[], ReadModelDatabase]) -> None:
        self._database = database

    @property
    def consumer(self) -> Handler:
        return consume

    async def report(self) -> SalesReport:
        return await self._database().run(report, write=False)
