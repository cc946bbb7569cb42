"""The inbox: which messages a consumer has handled, written in the same transaction as
the handler's effects, so a redelivered message changes nothing.

``invariant_inbox(consumer, message_id)`` lives in the consumer's database (the one its
effects go to). :func:`record` inserts the row and says whether the message is new.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, select

from invariant.clock import to_micros, utc_now
from invariant.sql.database import dialect_insert

metadata = MetaData()
inbox = Table(
    "invariant_inbox", metadata,
    Column("consumer", String(100), primary_key=True),
    Column("message_id", String(64), primary_key=True),
    Column("handled_at", BigInteger, nullable=False),  # microseconds since the epoch, UTC
)


def create(conn: Connection) -> None:
    """Create the inbox table if missing."""
    metadata.create_all(conn)


def seen(conn: Connection, consumer: str, message_id: str) -> bool:
    """True when ``consumer`` has handled (or parked) ``message_id``."""
    return conn.execute(select(inbox.c.message_id).where(
        inbox.c.consumer == consumer, inbox.c.message_id == message_id)).first() is not None


_RECORD = {dialect: dialect_insert(dialect, inbox).on_conflict_do_nothing()
           for dialect in ("sqlite", "postgresql")}


_RECORD_MANY = {dialect: statement.returning(inbox.c.message_id)
                for dialect, statement in _RECORD.items()}


def record_many(conn: Connection, consumer: str, message_ids: Sequence[str]) -> set[str]:
    """Record the messages in this transaction, in one statement where the database can
    say which rows it inserted; the ids that were not recorded before (each once, however
    often it is in ``message_ids``)."""
    unique = list(dict.fromkeys(message_ids))
    statement = _RECORD_MANY.get(conn.dialect.name)
    if statement is None or len(unique) < 2:
        return {m for m in unique if record(conn, consumer, m)}
    now = to_micros(utc_now())
    rows = [{"consumer": consumer, "message_id": m, "handled_at": now} for m in unique]
    return {str(r[0]) for r in conn.execute(statement, rows)}


def record(conn: Connection, consumer: str, message_id: str) -> bool:
    """Record the message in this transaction; False when it was already recorded.

    One ``INSERT ... ON CONFLICT DO NOTHING`` inside the effect transaction: on SQLite the
    write lock is held from BEGIN IMMEDIATE; on PostgreSQL a concurrent duplicate waits for
    the first transaction and, once it committed, inserts nothing (a duplicate).
    """
    statement = _RECORD.get(conn.dialect.name)
    row = {"consumer": consumer, "message_id": message_id, "handled_at": to_micros(utc_now())}
    if statement is None:  # another database: check, then insert
        if seen(conn, consumer, message_id):
            return False
        conn.execute(inbox.insert(), row)
        return True
    return conn.execute(statement, row).rowcount == 1
