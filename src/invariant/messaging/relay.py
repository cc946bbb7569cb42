"""The outbox relay: publishes committed outbox rows to a broker, in order per stream, in
batches, marking them published. At least once: a relay that dies after publishing and
before marking publishes the rows again (brokers with de-duplication drop them, the
consumers' inboxes drop the rest).

Several relays may run against one database. Each batch is *claimed* first, in a short
transaction, in ``invariant_outbox_claims`` (a table the relay owns): a claimed row is not
taken by another relay until the claim expires (``lease`` seconds), so a dead relay's rows
are taken over, and a stream with a row claimed by another relay is skipped as a whole, so
each stream's rows are published in order. Claiming is serialized (SQLite's single writer;
a transaction-level advisory lock on PostgreSQL). Publishing happens outside any
transaction; marking published is done as the event store's adapters do it (SQLite deletes
the row, PostgreSQL sets ``published_at``).

When the broker keeps its messages in the outbox's own database (a
:class:`~invariant.messaging.port.PublishesInTransaction`: the
:class:`~invariant.messaging.brokers.sql.SqlBroker` on the same handle, as in the embedded
mode, also behind the host's ``BrokerWatch``), there is nothing to hand over: a batch is
selected, stored in the broker and marked published in one transaction, exactly once,
with no claim (three transactions and the claims' rows less per batch).

An idle relay does not poll the outbox in a loop: every commit of this process that writes
outbox rows (the event store's, and read-model transactions that say so with
:func:`~invariant.sql.outbox_table.outbox_written`) wakes it after the commit; rows of
other processes are found at its next look, every :data:`IDLE` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Executable,
    MetaData,
    String,
    Table,
    Text,
    TextClause,
    bindparam,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
from sqlalchemy.dialects.sqlite import Insert as SQLiteInsert
from sqlalchemy.exc import SQLAlchemyError

from invariant.backlog import Waiting
from invariant.clock import from_micros, to_micros, utc_now
from invariant.domain.errors import StoreError
from invariant.messaging.errors import BrokerError
from invariant.messaging.port import Broker, Message, PublishesInTransaction
from invariant.sql import outbox
from invariant.sql.database import PostgresReadModels, ReadModelDatabase, dialect_insert
from invariant.sql.handover import hand_over
from invariant.sql.locks import create_tables, serialize
from invariant.sql.outbox_table import create_outbox
from invariant.store.ids import uuid_from_bytes
from invariant.tasks import poll
from invariant.telemetry import messages as telemetry

if TYPE_CHECKING:
    from invariant.store.postgres.listen import CommitListener

metadata = MetaData()
claims = Table(
    "invariant_outbox_claims", metadata,
    Column("outbox_id", BigInteger, primary_key=True),
    Column("stream_id", Text, nullable=False),
    Column("claimed_by", String(64), nullable=False),
    Column("claimed_until", BigInteger, nullable=False),  # microseconds since the epoch, UTC
)

_UNCLAIMED = (
    "NOT EXISTS (SELECT 1 FROM invariant_outbox_claims c WHERE c.claimed_until > :now"
    " AND (c.outbox_id = o.id OR (c.stream_id = o.stream_id AND c.claimed_by <> :me)))"
)

_UNCLAIM = claims.delete().where(claims.c.outbox_id.in_(bindparam("ids", expanding=True)))
_RELEASE = claims.delete().where(claims.c.outbox_id.in_(bindparam("ids", expanding=True)),
                                 claims.c.claimed_by == bindparam("me"))


def _claim_statement(dialect: str) -> PostgresInsert | SQLiteInsert:
    """A claim row per outbox row, taking over an expired claim of the same row in the same
    statement (only an expired one is left: live claims of others keep their rows out of
    the batch)."""
    insert = dialect_insert(dialect, claims)
    return insert.on_conflict_do_update(index_elements=["outbox_id"], set_={
        "stream_id": insert.excluded.stream_id, "claimed_by": insert.excluded.claimed_by,
        "claimed_until": insert.excluded.claimed_until})

IDLE = 1.0
"""Seconds between looks at an empty outbox, for rows committed by other processes (those
of this process wake the relay)."""
LINGER = 0.02
"""Seconds a woken relay waits after its last empty look before it looks again: a commit
after a quiet while is relayed at once, a stream of commits in batches (at most 1/LINGER
empty-then-woken batches a second; a busy relay runs batches back to back anyway)."""


@dataclass(frozen=True, slots=True)
class RelayLag:
    """How far behind the relays are: unpublished rows and the oldest one's age."""

    pending: int
    oldest_age_seconds: float


class OutboxRelay:
    """Moves outbox rows of ``database`` (the event store's) to ``broker``."""

    def __init__(self, database: ReadModelDatabase, broker: Broker, *, batch_size: int = 500,
                 lease: float = 30.0, relay_id: str | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.database = database
        self.broker = broker
        self.batch_size = batch_size
        self.lease = lease
        self.relay_id = relay_id or f"relay-{uuid.uuid4().hex[:12]}"
        self.clock = clock
        self.published = 0
        self.failures = 0
        self.last_error: str | None = None
        self._select: TextClause | None = None
        self._in_database = _in_database(broker, database)
        """The broker, when it stores its messages in ``database``: see the module."""
        # built once: building a statement per call costs more than running it
        dialect = database.dialect
        marking = outbox.mark_published(dialect, "", ids=":ids", now="now()")
        self._marks: tuple[Executable, ...]
        if outbox.OUTBOX.deletes_published[dialect]:
            self._marks = (text(marking).bindparams(bindparam("ids", expanding=True)), _UNCLAIM)
        else:
            # PostgreSQL: the rows marked and their claims dropped in one statement.
            self._marks = (text(f"WITH marked AS ({marking}) DELETE FROM"
                                f" {claims.name} WHERE outbox_id = ANY(:ids)"),)
        self._claim_rows = _claim_statement(dialect)

    async def setup(self) -> None:
        """Create the outbox (if the event store has not) and the claims table."""
        def create(conn: Connection) -> str:
            create_tables(conn, self.database, create_outbox, metadata.create_all)
            with_events = inspect(conn).has_table("invariant_events")
            return outbox.select_pending(with_events=with_events, unclaimed=_UNCLAIMED
                                         ) + " LIMIT :n"
        self._select = text(await self.database.run(create))

    async def run_once(self) -> int:
        """Claim, publish and mark one batch (or move it, see the module); the number of
        rows published."""
        if self._select is None:
            await self.setup()
        now = to_micros(self.clock())
        target = self._in_database
        if target is not None:
            await target.ensure_ready()
            published = await self.database.run(lambda conn: self._move(conn, target, now))
            self.published += published
            return published
        published = await hand_over(
            self.database, lambda conn: self._claim(conn, now),
            lambda batch: telemetry.published(self.broker.publish, [m for _, m in batch]),
            release=lambda conn, batch: self._release(conn, [i for i, _ in batch]),
            settle=lambda batch: self._settle([i for i, _ in batch]))
        self.published += published
        return published

    async def run(self, *, stop: asyncio.Event, idle: float = IDLE,
                  linger: float = LINGER, retry: float = 0.5, listen: bool = False) -> None:
        """Relay until ``stop`` is set: batches back to back; once the outbox is empty,
        woken by the next commit of this process that writes outbox rows
        (:data:`invariant.sql.outbox.COMMITTED`), no sooner than ``linger`` seconds after
        it found the outbox empty (the commits of that while go in one batch), and
        otherwise looking again every ``idle`` seconds (rows committed by other
        processes); ``retry`` seconds after a broker or database failure (the batch is
        retried; ``failures`` and ``last_error`` show it).

        ``listen``: on PostgreSQL, also woken by the event store's NOTIFY, at the commits
        of every process (for a relay in a process of its own; in the application's
        process its own commits would wake it twice). Elsewhere it changes nothing.
        """
        listener = self._listener() if listen else None
        step = self.run_once
        if listener is not None:
            from invariant.store.postgres.connection import DRIVER_ERRORS

            async def step() -> int:
                with contextlib.suppress(*DRIVER_ERRORS):  # not listening: polling
                    await listener.ensure()  # (again, after the connection was lost)
                return await self.run_once()
        try:
            await poll(self, step, stop=stop, idle=idle, retry=retry,
                       errors=(BrokerError, StoreError, SQLAlchemyError),
                       wake=outbox.COMMITTED, linger=linger)
        finally:
            if listener is not None:
                await listener.close()

    def _listener(self) -> CommitListener | None:
        if not isinstance(self.database, PostgresReadModels):
            return None
        from invariant.store.postgres.listen import CommitListener

        return CommitListener(self.database.dsn, self.database.schema, timeout=10.0,
                              on_commit=outbox.COMMITTED.wake)

    async def lag(self) -> RelayLag:
        """Unpublished rows and the age of the oldest (for dashboards and alerts)."""
        def read(conn: Connection) -> tuple[int, Any]:
            row = conn.execute(text(outbox.pending_count())).one()
            return int(row[0]), row[1]
        pending, oldest = await self.database.run(read, write=False)
        if oldest is None:
            return RelayLag(0, 0.0)
        moment = oldest if isinstance(oldest, datetime) else from_micros(int(oldest))
        return RelayLag(pending, max((self.clock() - moment).total_seconds(), 0.0))

    async def waiting(self) -> Waiting:
        """The unpublished rows and how long the oldest has waited: a measure of
        :class:`~invariant.backlog.Backlog`."""
        lag = await self.lag()
        return Waiting(lag.pending, lag.oldest_age_seconds)

    def _next_batch(self, conn: Connection, now: int) -> Sequence[Any]:
        """The next batch's outbox rows none of the other relays holds, in order, with the
        relays' claims serialized for the rest of the transaction."""
        serialize(conn, self.database, "messaging:outbox-claims")
        assert self._select is not None
        return conn.execute(self._select,
                            {"now": now, "me": self.relay_id, "n": self.batch_size}).all()

    def _claim(self, conn: Connection, now: int) -> list[tuple[int, Message]]:
        rows = self._next_batch(conn, now)
        if not rows:
            return []
        until = now + int(self.lease * 1_000_000)
        conn.execute(self._claim_rows, [
            {"outbox_id": r[0], "stream_id": r[2], "claimed_by": self.relay_id,
             "claimed_until": until} for r in rows])
        return [(r[0], _message(r)) for r in rows]

    def _move(self, conn: Connection, target: PublishesInTransaction, now: int) -> int:
        rows = self._next_batch(conn, now)
        if not rows:
            return 0
        ids = [r[0] for r in rows]
        with telemetry.publishing([_message(r) for r in rows]) as batch:
            target.publish_in(conn, batch)
        self._mark_published(conn, ids)  # and drops expired claims of a relay now gone
        return len(rows)

    def _release(self, conn: Connection, ids: Sequence[int]) -> None:
        conn.execute(_RELEASE, {"ids": list(ids), "me": self.relay_id})

    def _mark_published(self, conn: Connection, ids: Sequence[int]) -> None:
        for statement in self._marks:
            conn.execute(statement, {"ids": list(ids)})

    async def _settle(self, ids: Sequence[int]) -> None:
        """Mark published rows and drop their claims: one statement on its own where it is
        one (PostgreSQL), else a transaction."""
        if len(self._marks) == 1:
            await self.database.execute(self._marks[0], {"ids": list(ids)})
        else:
            await self.database.run(lambda conn: self._mark_published(conn, ids))


def _in_database(broker: Broker, database: ReadModelDatabase
                 ) -> PublishesInTransaction | None:
    if isinstance(broker, PublishesInTransaction) and broker.stores_in(database):
        return broker
    return None


def _json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return value if value is not None else {}


def _message(r: Any) -> Message:
    raw_id = r[1]
    message_id = uuid_from_bytes(raw_id) if isinstance(raw_id, bytes) else UUID(str(raw_id))
    created = r[8] if isinstance(r[8], datetime) else from_micros(int(r[8]))
    return Message(str(message_id), r[3], r[2], int(r[4]), _json(r[6]), _json(r[7]),
                   r[5], created)
