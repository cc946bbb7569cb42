"""Inventory's read model: one row per stocked product, fed by its stock events."""

from __future__ import annotations

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, select, update

from invariant.projections import Projection, ReadModelDatabase
from invariant.store import EventEnvelope
from shop.inventory.application import StockLevel
from shop.inventory.domain import StockLevelSet, UnitsAllocated, UnitsDeallocated, UnitsShipped
from shop.platform.paging import read_page


class StockLevels(Projection):
    """``inventory_levels_v1``: on hand and reserved per product (available derives)."""

    name = "inventory_levels"
    event_types = (StockLevelSet, UnitsAllocated, UnitsDeallocated, UnitsShipped)

    def define(self, metadata: MetaData) -> None:
        self.levels = Table(
            self.table_name("products"), metadata,
            Column("product_id", String(64), primary_key=True),
            Column("on_hand", Integer, nullable=False),
            Column("reserved", Integer, nullable=False),
        )

    def apply(self, envelope: EventEnvelope, conn: Connection) -> None:
        t, event = self.levels, envelope.event
        product = getattr(event, "product_id", "")
        if conn.execute(select(t.c.product_id).where(t.c.product_id == product)).first() is None:
            conn.execute(t.insert().values(product_id=product, on_hand=0, reserved=0))
        row = update(t).where(t.c.product_id == product)
        match event:
            case StockLevelSet(on_hand=on_hand):
                conn.execute(row.values(on_hand=on_hand))
            case UnitsAllocated(quantity=quantity):
                conn.execute(row.values(reserved=t.c.reserved + quantity))
            case UnitsDeallocated(quantity=quantity):
                conn.execute(row.values(reserved=t.c.reserved - quantity))
            case UnitsShipped(quantity=quantity):
                conn.execute(row.values(on_hand=t.c.on_hand - quantity,
                                        reserved=t.c.reserved - quantity))

    def page(self, conn: Connection, offset: int, limit: int) -> tuple[list[StockLevel], int]:
        """Stocked products by id, and how many there are."""
        t = self.levels
        rows, total = read_page(conn, t, order_by=(t.c.product_id,), offset=offset, limit=limit)
        return [StockLevel(r["product_id"], r["on_hand"], r["reserved"],
                           r["on_hand"] - r["reserved"]) for r in rows], total


async def stock_page(database: ReadModelDatabase, *, offset: int, limit: int
                     ) -> tuple[list[StockLevel], int]:
    """A page of the version of the read model that serves queries now."""
    return await database.run(
        lambda conn: StockLevels.serving(conn).page(conn, offset, limit), write=False)
