"""The billing view of orders: per customer, what was ordered, charged, refunded and is due.

It reads two other contexts' events from the shared log: ordering's ``OrderPlaced`` and
``OrderCancelled`` and payments' ``PaymentCharged`` and ``PaymentRefunded``. Payment events
name only the order, so the view keeps its own order -> customer table, filled from
``OrderPlaced``: billing never queries another context's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Boolean, Column, Connection, MetaData, String, Table, select

from examples.orders.domain import OrderCancelled, OrderPlaced, PaymentCharged, PaymentRefunded
from invariant.projections import Projection, ReadModelDatabase
from invariant.store import EventEnvelope


class CustomerBilling(Projection):
    """Per customer: orders placed and cancelled, cents charged, refunded and outstanding."""

    name = "customer_billing"
    event_types = (OrderPlaced, OrderCancelled, PaymentCharged, PaymentRefunded)

    def define(self, metadata: MetaData) -> None:
        self.orders = Table(
            self.table_name("orders"), metadata,
            Column("order_id", String(64), primary_key=True),
            Column("customer_id", String(64), nullable=False),
            Column("amount", BigInteger, nullable=False),
            Column("cancelled", Boolean, nullable=False),
        )
        self.customers = Table(
            self.table_name("customers"), metadata,
            Column("customer_id", String(64), primary_key=True),
            Column("orders", BigInteger, nullable=False),
            Column("cancelled", BigInteger, nullable=False),
            Column("ordered", BigInteger, nullable=False),
            Column("charged", BigInteger, nullable=False),
            Column("refunded", BigInteger, nullable=False),
        )

    def apply(self, envelope: EventEnvelope, conn: Connection) -> None:
        event = envelope.event
        if isinstance(event, OrderPlaced):
            conn.execute(self.orders.insert().values(
                order_id=event.order_id, customer_id=event.customer_id, amount=event.amount,
                cancelled=False,
            ))
            self._add(conn, event.customer_id, orders=1, ordered=event.amount)
            return
        order = conn.execute(select(self.orders).where(
            self.orders.c.order_id == event.order_id)).first()  # type: ignore[attr-defined]
        if order is None:
            return  # an order placed before billing existed: nothing to bill against
        customer = order.customer_id
        if isinstance(event, PaymentCharged):
            self._add(conn, customer, charged=event.amount)
        elif isinstance(event, PaymentRefunded):
            self._add(conn, customer, refunded=event.amount)
        elif isinstance(event, OrderCancelled) and not order.cancelled:
            conn.execute(self.orders.update().where(self.orders.c.order_id == order.order_id)
                         .values(cancelled=True))
            self._add(conn, customer, cancelled=1, ordered=-order.amount)

    def _add(self, conn: Connection, customer: str, **deltas: int) -> None:
        t = self.customers
        if conn.execute(select(t.c.customer_id).where(t.c.customer_id == customer)).first() \
                is None:
            conn.execute(t.insert().values(customer_id=customer, orders=0, cancelled=0,
                                           ordered=0, charged=0, refunded=0))
        conn.execute(t.update().where(t.c.customer_id == customer).values(
            {getattr(t.c, k): getattr(t.c, k) + v for k, v in deltas.items()}
        ))


@dataclass(frozen=True)
class CustomerStatement:
    """What billing tells a customer (amounts in cents)."""

    customer_id: str
    orders: int
    cancelled: int
    ordered: int
    charged: int
    refunded: int

    @property
    def outstanding(self) -> int:
        """Ordered and not cancelled, minus what was charged net of refunds."""
        return self.ordered - (self.charged - self.refunded)


async def statement(database: ReadModelDatabase, customer_id: str) -> CustomerStatement | None:
    """The billing statement of one customer, from the active version of the view."""

    def query(conn: Connection) -> CustomerStatement | None:
        t = CustomerBilling.serving(conn).customers
        row = conn.execute(select(t).where(t.c.customer_id == customer_id)).first()
        if row is None:
            return None
        r = row._mapping
        return CustomerStatement(customer_id, r["orders"], r["cancelled"], r["ordered"],
                                 r["charged"], r["refunded"])

    return await database.run(query, write=False)


def billing_projections() -> Sequence[Projection]:
    return [CustomerBilling()]
