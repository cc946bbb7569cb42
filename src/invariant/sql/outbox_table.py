"""invariant's outbox table as SQLAlchemy sees it, derived from its one definition
(:data:`invariant.sql.outbox.OUTBOX`): the state-stored repository and shop insert into it,
so that the one outbox relay publishes their messages with the events of event-sourced
aggregates.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, Table, Text
from sqlalchemy.types import TypeEngine

from invariant.sql import outbox
from invariant.sql.database import wake_after_commit
from invariant.sql.types import JsonDocument, MessageId, Moment


def _column(column: outbox.Column) -> Column[Any]:
    kinds: dict[str, TypeEngine[Any]] = {
        "key": BigInteger().with_variant(Integer(), "sqlite"), "uuid": MessageId(),
        "text": Text(), "integer": Integer(), "bigint": BigInteger(), "json": JsonDocument(),
        "moment": Moment(),
    }
    if column.kind == "key":
        return Column(column.name, kinds["key"], primary_key=True)
    return Column(column.name, kinds[column.kind], nullable=column.nullable)


def create_outbox(conn: Connection) -> None:
    """Create the outbox on ``conn`` if missing (the event store adapters' own DDL, tables
    in the search path)."""
    for statement in outbox.create_statements(conn.dialect.name):
        conn.exec_driver_sql(statement)


def outbox_table(metadata: MetaData) -> Table:
    """The outbox table in ``metadata`` (for inserts; creation goes through
    :func:`create_outbox`)."""
    name = outbox.OUTBOX.name
    if name in metadata.tables:
        return metadata.tables[name]
    return Table(name, metadata, *(_column(c) for c in outbox.OUTBOX.columns))


def outbox_written(conn: Connection) -> None:
    """Say that ``conn``'s transaction wrote outbox rows: once it commits (through
    :meth:`ReadModelDatabase.run <invariant.sql.database.ReadModelDatabase.run>`), the
    relays of this process look at once instead of at their next poll."""
    wake_after_commit(conn, outbox.COMMITTED)
