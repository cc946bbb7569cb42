"""One page of a table's rows, and how many rows there are in all (every list shop serves)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, RowMapping, Table, func, select, true


def read_page(conn: Connection, table: Table, *, order_by: Sequence[ColumnElement[object]],
              offset: int, limit: int, where: ColumnElement[bool] | None = None
              ) -> tuple[Sequence[RowMapping], int]:
    """The rows of ``table`` matching ``where`` in ``order_by`` order, at most ``limit`` from
    ``offset``, and how many match in all."""
    matching = true() if where is None else where
    total = int(conn.execute(select(func.count()).select_from(table).where(matching))
                .scalar_one())
    if offset >= total:  # also keeps huge offsets away from the database
        return [], total
    rows = conn.execute(select(table).where(matching).order_by(*order_by)
                        .offset(offset).limit(limit)).mappings().all()
    return rows, total
