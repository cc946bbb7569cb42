"""The dead-letter store: messages a consumer could not handle, with the error, to list and
replay (``invariant deadletters list|replay``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from invariant.clock import from_micros, to_micros
from invariant.messaging.port import Message

metadata = MetaData()
dead_letters = Table(
    "invariant_dead_letters", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer", String(100), nullable=False, index=True),
    Column("message_id", String(64), nullable=False),
    Column("message_type", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("parked_at", BigInteger, nullable=False),  # microseconds since the epoch, UTC
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A parked message and why it was parked."""

    id: int
    consumer: str
    message: Message
    error: str
    attempts: int
    parked_at: datetime


def create(conn: Connection) -> None:
    """Create the dead-letter table if missing."""
    metadata.create_all(conn)


def park(conn: Connection, consumer: str, message: Message, error: str, attempts: int,
         now: datetime) -> int:
    """Store ``message`` as dead for ``consumer``; its id."""
    result = conn.execute(dead_letters.insert().values(
        consumer=consumer, message_id=message.message_id, message_type=message.message_type,
        body=message.encode(), error=error, attempts=attempts, parked_at=to_micros(now)))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def list_parked(conn: Connection, consumer: str | None = None) -> list[DeadLetter]:
    """Parked messages, oldest first (of one consumer, or all)."""
    query = select(dead_letters).order_by(dead_letters.c.id)
    if consumer is not None:
        query = query.where(dead_letters.c.consumer == consumer)
    return [_letter(r) for r in conn.execute(query)]


def get(conn: Connection, letter_id: int) -> DeadLetter | None:
    """One parked message."""
    row = conn.execute(select(dead_letters).where(dead_letters.c.id == letter_id)).first()
    return None if row is None else _letter(row)


def remove(conn: Connection, letter_id: int) -> None:
    """Forget a parked message (after a successful replay)."""
    conn.execute(dead_letters.delete().where(dead_letters.c.id == letter_id))


def _letter(row: object) -> DeadLetter:
    r = row._mapping  # type: ignore[attr-defined]
    return DeadLetter(r["id"], r["consumer"], Message.decode(r["body"]), r["error"],
                      r["attempts"], from_micros(r["parked_at"]))
