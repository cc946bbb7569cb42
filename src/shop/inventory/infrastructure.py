"""Inventory's read model: one row per stocked product, fed by its stock events."""

from __future__ import annotations

from sqlalchemy import (
    BindParameter,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    select,
    update,
)

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
        # the statements of apply, built once per table (its name has the version)
        levels = self.levels.c
        product: BindParameter[str] = bindparam("product")
        self._find = select(levels.product_id).where(levels.product_id == product)
        self._add = self.levels.insert().values(product_id=product, on_hand=0, reserved=0)
        changed = update(self.levels).where(levels.product_id == product)
        self._set = changed.values(on_hand=bindparam("units"))
        self._reserve = changed.values(reserved=levels.reserved + bindparam("units"))
        self._release = changed.values(reserved=levels.reserved - bindparam("units"))
        self._ship = changed.values(on_hand=levels.on_hand - bindparam("units"),
                                    reserved=levels.reserved - bindparam("units"))

    def apply(self, envelope: EventEnvelope, conn: Connection) -> None:
        event = envelope.event
        product = {"product": getattr(event, "product_id", "")}
        if conn.execute(self._find, product).first() is None:
            conn.execute(self._add, product)
        match event:
            case StockLevelSet(on_hand=on_hand):
                conn.execute(self._set, {**product, "units": on_hand})
            case UnitsAllocated(quantity=quantity):
                conn.execute(self._reserve, {**product, "units": quantity})
            case UnitsDeallocated(quantity=quantity):
                conn.execute(self._release, {**product, "units": quantity})
            case UnitsShipped(quantity=quantity):
                conn.execute(self._ship, {**product, "units": quantity})

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
