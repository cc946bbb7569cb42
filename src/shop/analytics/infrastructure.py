"""Analytics' report in SQL (the default adapter of
:class:`~shop.analytics.application.SalesReportStore`): rows in the read-model database,
fed by integration events through the inbox (each message applied once, in the inbox's
transaction): order counts, revenue per currency (charged and refunded, in minor units so
that SQL sums stay exact), and units per product (ordered, cancelled, shipped)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Executable,
    MetaData,
    String,
    Table,
    bindparam,
    select,
)

from invariant.messaging.consumer import Handler
from invariant.messaging.published_language import IntegrationEvent
from invariant.projections import ReadModelDatabase
from invariant.sql.database import dialect_insert
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
    dialect = conn.dialect.name
    for name in counted.orders:
        conn.execute(_adding(dialect, counters, "value"), {"key": name, "delta": 1})
    for column, product_id, quantity in counted.units:
        conn.execute(_adding(dialect, products, column), {"key": product_id, "delta": quantity})
    for column, currency, units in counted.money:
        conn.execute(_adding(dialect, revenue, column), {"key": currency, "delta": units})


consume = integration_consumer(_apply, *EVENTS)
"""The analytics consumer: one integration event into the counters."""


_ADDING: dict[tuple[str, str, str], Executable] = {}


def _adding(dialect: str, table: Table, column: str) -> Executable:
    """``INSERT`` a row of zeros keyed ``:key`` with ``:delta`` in ``column``, or add
    ``:delta`` to the row already there: one statement, built once per dialect, table and
    column (building a statement costs more than SQLite runs it)."""
    built = _ADDING.get((dialect, table.name, column))
    if built is None:
        key = table.primary_key.columns.values()[0]
        row: dict[str, Any] = {c.name: 0 for c in table.columns if c is not key}
        row[key.name] = bindparam("key")
        row[column] = bindparam("delta")
        insert = dialect_insert(dialect, table).values(row)
        built = _ADDING[(dialect, table.name, column)] = insert.on_conflict_do_update(
            index_elements=[key], set_={column: table.c[column] + insert.excluded[column]})
    return built


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
