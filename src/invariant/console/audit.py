"""Every action an operator takes, with who and when: a log record (logger
``invariant.console``) and a row of ``invariant_console_audit`` in the application's
database, which the console shows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from invariant.clock import from_micros, to_micros
from invariant.sql.database import ReadModelDatabase
from invariant.sql.locks import create_tables

log = logging.getLogger("invariant.console")
metadata = MetaData()
audit = Table(
    "invariant_console_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),  # microseconds since the epoch, UTC
    Column("operator", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", Text, nullable=False),
    Column("outcome", Text, nullable=False),
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One action: when, by whom, what, on what, and how it ended."""

    at: datetime
    operator: str
    action: str
    target: str
    outcome: str


async def create(database: ReadModelDatabase) -> None:
    """Create the audit table if missing (serialized with the other set-ups: concurrent
    CREATEs race on PostgreSQL)."""
    await database.run(lambda conn: create_tables(conn, database, metadata.create_all))


async def record(database: ReadModelDatabase, entry: AuditEntry) -> None:
    """Log ``entry`` and keep it."""
    log.info("console: %s %s by %s at %s: %s", entry.action, entry.target,
             entry.operator, entry.at.isoformat(), entry.outcome)

    def write(conn: Connection) -> None:
        conn.execute(audit.insert().values(
            at=to_micros(entry.at), operator=entry.operator, action=entry.action,
            target=entry.target, outcome=entry.outcome))

    await create(database)
    await database.run(write)


async def recent(database: ReadModelDatabase, limit: int = 20) -> list[AuditEntry]:
    """The latest actions, newest first."""
    def read(conn: Connection) -> list[AuditEntry]:
        rows = conn.execute(select(audit).order_by(audit.c.id.desc()).limit(limit))
        return [AuditEntry(from_micros(r.at), r.operator, r.action, r.target, r.outcome)
                for r in rows]

    await create(database)
    return await database.run(read, write=False)
