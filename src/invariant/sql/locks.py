"""Advisory locks on PostgreSQL: transactions that must not overlap (setups, claims).

SQLite needs none of this: its single writer lock already serializes every transaction
that writes (``ReadModelDatabase`` begins those with ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, text

from invariant.sql.database import ReadModelDatabase, lease_key


def serialize(conn: Connection, database: ReadModelDatabase, key: str) -> None:
    """Serialize the transactions that call this with ``key``, until they end: a
    transaction-level advisory lock on PostgreSQL (SQLite's writer lock already does)."""
    if database.dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                     {"k": lease_key(getattr(database, "schema", ""), key)})


def create_tables(conn: Connection, database: ReadModelDatabase,
                  *creates: Callable[[Connection], object]) -> None:
    """Run ``creates`` (each creates tables if missing) serialized with every other
    messaging setup: concurrent CREATEs race on PostgreSQL."""
    serialize(conn, database, "messaging:setup")
    for create in creates:
        create(conn)
