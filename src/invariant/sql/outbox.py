"""invariant's outbox, defined once: the table as data, and every statement derived from it.

Events of event-sourced aggregates (written by the event store's adapters), messages of
state-stored aggregates and shop's own rows all wait in this one table for the outbox relay.
What is derived from :data:`OUTBOX`:

* the DDL of both adapters (:func:`create_statements`): SQLite stores message ids as 16-byte
  BLOBs, times as integer microseconds since the epoch and JSON as text; PostgreSQL uses
  uuid, timestamptz and jsonb;
* the SQLAlchemy table (:func:`invariant.sql.outbox_table.outbox_table`);
* the statements that read, insert and mark rows (:func:`select_pending`,
  :func:`insert_messages`, :func:`mark_published`), for the relay and the adapters alike.

Relays of this process wait on :data:`COMMITTED`, woken after every commit that wrote
outbox rows: by the event store's adapters after their commits, and by
:class:`~invariant.sql.database.ReadModelDatabase` after a transaction that said it wrote
some (:func:`invariant.sql.outbox_table.outbox_written`). Rows committed by another process
are found at the relay's next poll (or, on PostgreSQL, woken by the event store's NOTIFY).

Published rows: SQLite deletes them (the event log keeps the history, ``AUTOINCREMENT``
never reuses an id, so the pending rows are the table, in id order, and no index is
needed); PostgreSQL sets ``published_at`` (its pending rows have a partial index).

Standard library only: the event store's adapters use it without loading SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from invariant.wakeups import Wakeups

SQLITE, POSTGRESQL = "sqlite", "postgresql"

COMMITTED = Wakeups()
"""Woken after every commit in this process that wrote outbox rows: idle relays look at
once."""

_TYPES = {
    # kind:   (SQLite,    PostgreSQL)
    "key": ("INTEGER", "bigserial"),
    "uuid": ("BLOB", "uuid"),
    "text": ("TEXT", "text"),
    "integer": ("INTEGER", "integer"),
    "bigint": ("INTEGER", "bigint"),
    "json": ("TEXT", "jsonb"),
    "moment": ("INTEGER", "timestamptz"),
}
"""The type of each kind of column on each dialect."""

_KEY = {SQLITE: "PRIMARY KEY AUTOINCREMENT", POSTGRESQL: "PRIMARY KEY"}
_LAYOUT = {  # the widths of the name and type columns, the indents of lines and the ")"
    SQLITE: (16, 8, " " * 8, " " * 4),
    POSTGRESQL: (16, 12, " " * 12, " " * 8),
}


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its name, its kind (a key of the type table above), whether it may be
    NULL; the key column is the primary key."""

    name: str
    kind: str
    nullable: bool = False

    def type_on(self, dialect: str) -> str:
        """The column's SQL type on ``dialect``."""
        sqlite_type, postgres_type = _TYPES[self.kind]
        return sqlite_type if dialect == SQLITE else postgres_type

    def constraint_on(self, dialect: str) -> str:
        """``PRIMARY KEY ...``, ``NOT NULL`` or nothing."""
        if self.kind == "key":
            return _KEY[dialect]
        return "" if self.nullable else "NOT NULL"


@dataclass(frozen=True, slots=True)
class Index:
    """A partial index on ``column`` of the rows matching ``where``, on ``dialects`` only."""

    name: str
    column: str
    where: str
    dialects: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """The outbox as data: name, columns in order, indexes, and whether a published row is
    deleted (``True``) or kept with its ``published_at`` (``False``), per dialect."""

    name: str
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...]
    deletes_published: dict[str, bool]

    @property
    def column_names(self) -> tuple[str, ...]:
        """Every column's name, in order."""
        return tuple(c.name for c in self.columns)


OUTBOX = Table(
    name="invariant_outbox",
    columns=(
        Column("id", "key"),
        Column("message_id", "uuid"),
        Column("stream_id", "text"),
        Column("message_type", "text"),
        Column("schema_version", "integer"),
        Column("position", "bigint", nullable=True),  # the event's, for events
        Column("data", "json", nullable=True),  # NULL for events: read from the event
        Column("metadata", "json", nullable=True),
        Column("created_at", "moment"),
        Column("published_at", "moment", nullable=True),
    ),
    indexes=(Index("invariant_outbox_pending", "id", "published_at IS NULL", (POSTGRESQL,)),),
    deletes_published={SQLITE: True, POSTGRESQL: False},
)
"""invariant's outbox table."""

MESSAGE_COLUMNS = ("message_id", "stream_id", "message_type", "schema_version", "data",
                   "metadata", "created_at")
"""The columns a message written by the application (not an event) fills in."""


def create_statements(dialect: str, qualifier: str = "") -> tuple[str, ...]:
    """The statements creating the outbox and its indexes if missing, on ``dialect``
    (``sqlite`` or ``postgresql``); ``qualifier`` is ``"schema."`` or ``""`` (the search
    path, PostgreSQL only)."""
    name_width, type_width, indent, closing = _LAYOUT[dialect]
    lines = [f"{c.name:<{name_width}}{c.type_on(dialect):<{type_width}}{c.constraint_on(dialect)}"
             .rstrip() for c in OUTBOX.columns]
    table = (f"CREATE TABLE IF NOT EXISTS {qualifier}{OUTBOX.name} (\n{indent}"
             + f",\n{indent}".join(lines) + f"\n{closing})")
    indexes = tuple(
        f"CREATE INDEX IF NOT EXISTS {index.name}\n{indent}ON {qualifier}{OUTBOX.name}"
        f" ({index.column}) WHERE {index.where}"
        for index in OUTBOX.indexes if dialect in index.dialects)
    return (table, *indexes)


def select_pending(qualifier: str = "", *, with_events: bool = True, unclaimed: str = ""
                   ) -> str:
    """The unpublished rows, oldest first: ``id, message_id, stream_id, message_type,
    schema_version, position, data, metadata, created_at``; an event's data and metadata
    come from ``invariant_events`` when ``with_events``. ``unclaimed`` adds a condition on
    ``o``; the caller appends ``LIMIT`` in its driver's parameter style."""
    data, meta, join = "o.data", "o.metadata", ""
    if with_events:
        data, meta = "coalesce(o.data, e.data)", "coalesce(o.metadata, e.metadata)"
        join = f" LEFT JOIN {qualifier}invariant_events e ON e.position = o.position"
    condition = f" AND {unclaimed}" if unclaimed else ""
    return ("SELECT o.id, o.message_id, o.stream_id, o.message_type, o.schema_version,"
            f" o.position, {data}, {meta}, o.created_at FROM {qualifier}{OUTBOX.name} o{join}"
            f" WHERE o.published_at IS NULL{condition} ORDER BY o.id")


def insert_messages(qualifier: str, parameters: Sequence[str]) -> str:
    """An ``INSERT`` of one message (:data:`MESSAGE_COLUMNS`), with ``parameters`` in the
    driver's style (``?`` or ``$1`` ...)."""
    return (f"INSERT INTO {qualifier}{OUTBOX.name} ({', '.join(MESSAGE_COLUMNS)})"
            f" VALUES ({', '.join(parameters)})")


def pending_count(qualifier: str = "") -> str:
    """How many rows are unpublished, and the oldest one's ``created_at``."""
    return (f"SELECT count(*), min(created_at) FROM {qualifier}{OUTBOX.name}"
            " WHERE published_at IS NULL")


def mark_published(dialect: str, qualifier: str, *, ids: str, now: str) -> str:
    """The statement marking the rows of ``ids`` published at ``now`` (both parameters in
    the driver's style: ``ids`` a list on PostgreSQL, ``(?)`` or an expanding parameter on
    SQLite): a ``DELETE`` where published rows are deleted, else an ``UPDATE``."""
    if OUTBOX.deletes_published[dialect]:
        return f"DELETE FROM {qualifier}{OUTBOX.name} WHERE id IN {ids}"
    return f"UPDATE {qualifier}{OUTBOX.name} SET published_at = {now} WHERE id = ANY({ids})"
