"""Ordering's read side: the list of each customer's orders (a projection of the order
events) and the query handlers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Column,
    Connection,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    Update,
    bindparam,
    delete,
    select,
    update,
)

from invariant.application import Aggregates
from invariant.domain import DomainEvent, Money
from invariant.projections import Projection, ReadModelDatabase
from invariant.store import EventEnvelope
from shop.kernel import OrderId
from shop.ordering.application import (
    GetOrder,
    ListOrders,
    OrderList,
    OrderSummary,
    OrderView,
    order_view,
    owned,
)
from shop.ordering.domain import (
    CANCELLED,
    DRAFT,
    PLACED,
    SHIPPED,
    ItemAdded,
    ItemQuantityChanged,
    ItemRemoved,
    Order,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    OrderStarted,
)
from shop.platform.paging import read_page


class CustomerOrders(Projection):
    """Per order: its customer, status, number of items and total, for the order lists."""

    name = "ordering_orders"
    event_types = (OrderStarted, ItemAdded, ItemQuantityChanged, ItemRemoved, OrderPlaced,
                   OrderCancelled, OrderShipped)

    def define(self, metadata: MetaData) -> None:
        self.orders = Table(
            self.table_name("orders"), metadata,
            Column("order_id", String(64), primary_key=True),
            Column("customer_id", String(64), nullable=False, index=True),
            Column("status", String(16), nullable=False),
            Column("items", Integer, nullable=False),
            Column("total", String(40), nullable=True),
            Column("currency", String(3), nullable=True),
            Column("started_at", String(40), nullable=False),
            Column("position", BigInteger, nullable=False),
        )
        self.lines = Table(
            self.table_name("lines"), metadata,
            Column("order_id", String(64), primary_key=True),
            Column("product_id", String(64), primary_key=True),
            Column("quantity", Integer, nullable=False),
            Column("unit_price", String(40), nullable=False),
            Column("currency", String(3), nullable=False),
        )

        # the statements of apply, built once per table (its name has the version)
        orders, lines = self.orders.c, self.lines.c
        order: BindParameter[str] = bindparam("order")
        product: BindParameter[str] = bindparam("product")
        self._start = self.orders.insert()
        self._add_line = self.lines.insert()
        self._change_quantity = update(self.lines).where(
            lines.order_id == order, lines.product_id == product).values(
            quantity=bindparam("units"))
        self._remove_line = delete(self.lines).where(lines.order_id == order,
                                                     lines.product_id == product)
        self._lines_of = select(self.lines).where(lines.order_id == order)
        self._order = orders.order_id == order
        self._changes: dict[tuple[str, ...], Update] = {}

    def apply(self, envelope: EventEnvelope, conn: Connection) -> None:
        event = envelope.event
        if isinstance(event, OrderStarted):
            conn.execute(self._start, {
                "order_id": event.order_id, "customer_id": event.customer_id,
                "status": DRAFT, "items": 0, "total": None, "currency": None,
                "started_at": event.started_at.isoformat(), "position": envelope.position})
            return
        status = _status(event)
        if status is not None:
            self._set(conn, event, status=status)
            return
        self._change_lines(conn, event)
        self._retotal(conn, getattr(event, "order_id", ""))

    def _change_lines(self, conn: Connection, event: DomainEvent) -> None:
        match event:
            case ItemAdded(order_id=order_id, line=line):
                conn.execute(self._add_line, {
                    "order_id": order_id, "product_id": line.product_id,
                    "quantity": line.quantity, "unit_price": str(line.unit_price.amount),
                    "currency": line.unit_price.currency.code})
            case ItemQuantityChanged(order_id=order_id, product_id=product_id,
                                     quantity=quantity):
                conn.execute(self._change_quantity,
                             {"order": order_id, "product": product_id, "units": quantity})
            case ItemRemoved(order_id=order_id, product_id=product_id):
                conn.execute(self._remove_line, {"order": order_id, "product": product_id})

    def _retotal(self, conn: Connection, order_id: str) -> None:
        rows = conn.execute(self._lines_of, {"order": order_id}).all()
        if not rows:
            self._set(conn, order_id, items=0, total=None, currency=None)
            return
        total = Money.zero(rows[0].currency)
        for row in rows:
            total = total + Money.of(row.unit_price, row.currency).multiply(row.quantity)
        self._set(conn, order_id, items=sum(r.quantity for r in rows),
                  total=str(total.amount), currency=total.currency.code)

    def _set(self, conn: Connection, order: DomainEvent | str, **values: object) -> None:
        order_id = order if isinstance(order, str) else getattr(order, "order_id", "")
        columns = tuple(sorted(values))
        statement = self._changes.get(columns)
        if statement is None:
            statement = self._changes[columns] = update(self.orders).where(
                self._order).values({c: bindparam(f"new_{c}") for c in columns})
        conn.execute(statement, {"order": order_id,
                                 **{f"new_{c}": v for c, v in values.items()}})


def _status(event: DomainEvent) -> str | None:
    match event:
        case OrderPlaced():
            return PLACED
        case OrderCancelled():
            return CANCELLED
        case OrderShipped():
            return SHIPPED
    return None


class OrderQueries:
    """Answers ordering's queries: one order from its stream (always current), the lists
    from the ``ordering_orders`` read model."""

    def __init__(self, aggregates: Aggregates, database: ReadModelDatabase) -> None:
        self.aggregates = aggregates
        self.database = database

    async def get_order(self, query: GetOrder) -> OrderView:
        order = await self.aggregates.repository(Order).find(OrderId(query.order_id))
        return order_view(owned(order, query.order_id, query.customer_id))

    async def list_orders(self, query: ListOrders) -> OrderList:
        def read(conn: Connection) -> OrderList:
            t = CustomerOrders.serving(conn).orders
            rows, total = read_page(conn, t, where=t.c.customer_id == query.customer_id,
                                    order_by=(t.c.position.desc(),),
                                    offset=query.offset, limit=query.limit)
            return OrderList([_summary(r) for r in rows], total)

        return await self.database.run(read, write=False)


def _summary(m: RowMapping) -> OrderSummary:
    total = None if m["total"] is None else Money.of(m["total"], m["currency"])
    return OrderSummary(m["order_id"], m["status"], m["items"], total,
                        datetime.fromisoformat(m["started_at"]))


__all__ = ["CustomerOrders", "OrderLine", "OrderQueries"]
