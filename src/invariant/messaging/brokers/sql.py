"""A durable broker in the application's own database: the embedded mode's bus when messages
must survive a restart (SQLite, no broker server), and a small one on PostgreSQL.

Four tables, created by :func:`create` (or :meth:`SqlBroker.connect`):

* ``invariant_broker_groups(name)``: the declared consumer groups.
* ``invariant_broker_group_types(grp, message_type)``: the message types a group reads,
  when it declared them (a group without rows reads every type).
* ``invariant_broker_messages(id, message_id, stream_id, body, published_at)``: each
  published message once, ``id`` giving the publish order; ``message_id`` is unique, so a
  republished message (a relay that died between publishing and marking) is dropped. A
  message stays for de-duplication ``dedupe_window`` seconds after every group has
  acknowledged it, then it is pruned.
* ``invariant_broker_deliveries(grp, message, visible_at, deliveries)``: one row per
  (group, message), written in the publishing transaction for every group declared then,
  so a group sees every message published after it was declared. A fetch *claims* visible
  rows in publish order by pushing ``visible_at`` ``visibility`` seconds ahead: a delivery
  not acknowledged by then (a consumer that died) is delivered again. ``ack`` deletes the
  row, ``nack`` makes it visible at once.

Claiming is one transaction: SQLite's writer lock (``BEGIN IMMEDIATE``) serializes it; on
PostgreSQL the rows are selected ``FOR UPDATE SKIP LOCKED``, so concurrent fetchers of one
group never hold the same message at once. Publishing and declaring are serialized (the
writer lock; a transaction-level advisory lock on PostgreSQL), so publish order is commit
order. A fetch with nothing to deliver does not poll the database in a loop: publishes and
nacks through any :class:`SqlBroker` of this process on the same database wake it, and it
otherwise looks again every ``poll_interval`` seconds (publishes from other processes) or
when the next claimed row becomes visible, whichever comes first, until its timeout.

Per-stream order holds for one consumer per group (several consumers of one group share
its messages and may each hold messages of the same stream). Delivery is at least once;
the consumer's inbox makes effects exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from invariant.backlog import Waiting
from invariant.clock import to_micros, utc_now
from invariant.domain.errors import StoreError
from invariant.messaging.errors import BrokerError
from invariant.messaging.port import Delivery, Message, read_body
from invariant.sql.database import (
    PostgresReadModels,
    ReadModelDatabase,
    SQLiteReadModels,
    wake_after_commit,
)
from invariant.sql.locks import create_tables, serialize
from invariant.tasks import wait_briefly
from invariant.wakeups import Wakeups

T = TypeVar("T")

_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite: an alias of the rowid

metadata = MetaData()
groups = Table(
    "invariant_broker_groups", metadata,
    Column("name", String(100), primary_key=True),
    Column("declared_at", BigInteger, nullable=False),  # microseconds since the epoch, UTC
)
group_types = Table(
    "invariant_broker_group_types", metadata,
    Column("grp", String(100), primary_key=True),
    Column("message_type", String(200), primary_key=True),
)
messages = Table(
    "invariant_broker_messages", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("stream_id", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),  # Message.encode()
    Column("published_at", BigInteger, nullable=False, index=True),
    sqlite_autoincrement=True,  # ids never reused: publish order
)
deliveries = Table(
    "invariant_broker_deliveries", metadata,
    Column("grp", String(100), primary_key=True),
    Column("message", _ID, primary_key=True),  # invariant_broker_messages.id
    Column("visible_at", BigInteger, nullable=False),  # microseconds; 0: visible now
    Column("deliveries", Integer, nullable=False),  # how often it was handed out
    Index("ix_invariant_broker_deliveries_message", "message"),
)


def create(conn: Connection) -> None:
    """Create the broker's tables if missing."""
    metadata.create_all(conn)


# The statements of the per-message paths, built once: building a Core statement (and its
# cache key) per call costs more than SQLite takes to run it.
_GROUPS = select(groups.c.name)
_GROUP_TYPES = select(group_types.c.grp, group_types.c.message_type)
_STORED = select(messages.c.message_id).where(
    messages.c.message_id.in_(bindparam("ids", expanding=True)))
_INSERT_MESSAGE = messages.insert()
_IDS = select(messages.c.message_id, messages.c.id).where(
    messages.c.message_id.in_(bindparam("ids", expanding=True)))
_INSERT_DELIVERY = deliveries.insert()
_VISIBLE = (select(deliveries.c.message, deliveries.c.deliveries)
            .where(deliveries.c.grp == bindparam("grp"),
                   deliveries.c.visible_at <= bindparam("now"))
            .order_by(deliveries.c.message).limit(bindparam("n"))
            .with_for_update(skip_locked=True))  # PostgreSQL; SQLite: the writer lock
_NEXT_VISIBLE = select(func.min(deliveries.c.visible_at)).where(
    deliveries.c.grp == bindparam("grp"))
_CLAIM = update(deliveries).where(
    deliveries.c.grp == bindparam("group"),
    deliveries.c.message.in_(bindparam("rows", expanding=True))).values(
    visible_at=bindparam("until"), deliveries=deliveries.c.deliveries + 1)
_BODIES = select(messages.c.id, messages.c.body).where(
    messages.c.id.in_(bindparam("rows", expanding=True)))
_ACK = delete(deliveries).where(deliveries.c.grp == bindparam("group"),
                                deliveries.c.message.in_(bindparam("rows", expanding=True)))


def _readers(conn: Connection) -> dict[str, set[str] | None]:
    """Every declared group and the message types it reads (None: all)."""
    readers: dict[str, set[str] | None] = {
        name: None for name in conn.execute(_GROUPS).scalars()}
    for group, message_type in conn.execute(_GROUP_TYPES):
        if group in readers:
            types = readers[group]
            if types is None:
                types = readers[group] = set()
            types.add(message_type)
    return readers


_WAKEUPS: dict[str, Wakeups] = {}


def _database_key(database: ReadModelDatabase) -> str:
    if isinstance(database, SQLiteReadModels):
        return f"sqlite:{database.path.resolve()}"
    if isinstance(database, PostgresReadModels):
        return f"postgresql:{database.dsn}#{database.schema}"
    return f"object:{id(database)}"


class _SqlDelivery:
    __slots__ = ("_broker", "_count", "_group", "_message", "_row")

    def __init__(self, broker: SqlBroker, group: str, row: int, count: int,
                 message: Message) -> None:
        self._broker, self._group, self._row = broker, group, row
        self._count, self._message = count, message

    @property
    def message(self) -> Message:
        return self._message

    @property
    def redelivered(self) -> bool:
        return self._count > 1

    async def ack(self) -> None:
        await self._broker._ack(self._group, self._row)

    async def nack(self) -> None:
        await self._broker._nack(self._group, self._row, self._count)


class _Acks:
    """The acknowledgements of one loop turn (rows by group) and their outcome."""

    __slots__ = ("done", "rows")

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.rows: dict[str, list[int]] = {}


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark ``future``'s outcome as seen (the acknowledging callers got it)."""
    if not future.cancelled():
        future.exception()


class SqlBroker:
    """A broker whose messages live in ``database`` (see the module docstring).

    ``visibility``: seconds a fetched message stays with its consumer before it is
    delivered again unless acknowledged. ``dedupe_window``: seconds a message id is
    remembered after every group acknowledged it. ``poll_interval``: how often a waiting
    fetch looks for messages published by other processes.
    """

    name = "sql"

    def __init__(self, database: ReadModelDatabase, *, visibility: float = 30.0,
                 dedupe_window: float = 600.0, poll_interval: float = 1.0,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.database = database
        self.visibility = visibility
        self.dedupe_window = dedupe_window
        self.poll_interval = poll_interval
        self.clock = clock
        self._wakeups = _WAKEUPS.setdefault(_database_key(database), Wakeups())
        self._ready = False
        self._closed = False
        self._declared: set[str] = set()
        self._pruned_at: float | None = None
        self._acks: _Acks | None = None

    async def connect(self) -> None:
        """Create the tables (idempotent); the broker does not own ``database``."""
        self._closed = False
        await self.setup()

    async def setup(self) -> None:
        """Create the broker's tables if missing."""
        await self._run(lambda conn: create_tables(conn, self.database, create))
        self._ready = True

    async def close(self) -> None:
        """Stop: waiting fetches return, later calls raise :class:`BrokerError`. The
        database stays open (its owner closes it)."""
        self._closed = True
        self._ready = False
        self._declared.clear()
        self._wakeups.wake()

    async def declare(self, group: str, *, types: Collection[str] | None = None) -> None:
        """Create group ``group``: it gets every message published from now on, of
        ``types`` only when given (declaring again replaces them; None: every type)."""
        await self.ensure_ready()
        now = self._now()
        wanted = None if types is None else sorted(set(types))
        if wanted == []:
            raise BrokerError(f"group {group!r} declared with no message type: name the "
                              "types it reads, or pass types=None for all of them")

        def work(conn: Connection) -> None:
            serialize(conn, self.database, "messaging:broker-publish")
            if conn.execute(select(groups.c.name).where(groups.c.name == group)).first() is None:
                conn.execute(groups.insert().values(name=group, declared_at=now))
            conn.execute(delete(group_types).where(group_types.c.grp == group))
            if wanted is not None:
                conn.execute(group_types.insert(), [{"grp": group, "message_type": t}
                                                    for t in wanted])
        await self._run(work)
        self._declared.add(group)

    async def publish(self, batch: Sequence[Message]) -> None:
        """Store ``batch`` (one transaction: all of it or nothing) for every declared
        group; message ids already stored are dropped. Returns once committed."""
        if not batch:
            return
        await self.ensure_ready()
        now = self._now()
        prune = self._prune_due()
        added = await self._run(lambda conn: self._publish(conn, batch, now, prune))
        if prune:
            self._pruned_at = time.monotonic()
        if added:
            self._wakeups.wake()

    def publish_in(self, conn: Connection, batch: Sequence[Message]) -> int:
        """Store ``batch`` as :meth:`publish` does, but in the caller's transaction on this
        broker's own database (see :meth:`stores_in`): the outbox relay's, whose rows then
        leave the outbox in the transaction that brings them here. The fetches waiting
        are woken once that transaction commits. How many messages were new."""
        if self._closed or not self._ready:
            raise BrokerError("the SQL broker is not connected: connect() it first")
        prune = self._prune_due()
        added = self._publish(conn, batch, self._now(), prune)
        if prune:
            self._pruned_at = time.monotonic()
        if added:
            wake_after_commit(conn, self._wakeups)
        return added

    def stores_in(self, database: ReadModelDatabase) -> bool:
        """Whether this broker's messages live in ``database`` (the same handle), so that
        :meth:`publish_in` can run in one of its transactions."""
        return database is self.database

    def _prune_due(self) -> bool:
        return self._pruned_at is None or time.monotonic() - self._pruned_at >= min(
            60.0, self.dedupe_window / 2)

    async def fetch(self, group: str, *, max_messages: int, timeout: float  # noqa: ASYNC109
                    ) -> list[Delivery]:
        """Up to ``max_messages`` of ``group``'s visible messages in publish order, claimed
        for ``visibility`` seconds; waits at most ``timeout`` seconds for the first."""
        if max_messages <= 0:
            return []
        if group not in self._declared:
            await self.declare(group)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        event = asyncio.Event()
        waiter = (loop, event)
        self._wakeups.add(waiter)
        try:
            while True:
                event.clear()  # before looking: a publish committed meanwhile sets it
                claimed, next_visible = await self._run(
                    lambda conn: self._claim(conn, group, max_messages))
                if claimed:
                    return [_SqlDelivery(self, group, row, count,
                                         read_body(body, f"sql:{row}"))
                            for row, count, body in claimed]
                remaining = deadline - loop.time()
                if remaining <= 0 or self._closed:
                    return []
                wait = min(remaining, self.poll_interval)
                if next_visible is not None:  # <= 0: held by another fetcher's open
                    # transaction (SKIP LOCKED)
                    wait = min(wait, next_visible + 0.005 if next_visible > 0 else 0.05)
                await wait_briefly(event.wait(), wait)
                if self._closed:  # closed while waiting
                    return []
        finally:
            self._wakeups.discard(waiter)

    async def pending(self, group: str) -> int:
        """Messages of ``group`` not yet acknowledged (visible or held by a consumer)."""
        await self.ensure_ready()
        return await self._run(lambda conn: int(conn.execute(
            select(func.count()).select_from(deliveries).where(deliveries.c.grp == group)
        ).scalar_one()), write=False)

    async def backlog(self) -> int:
        """Deliveries not acknowledged yet by the groups declared through this broker: the
        work waiting for its consumers (a group nobody consumes any more, still declared
        in the database, is not work anyone here will do)."""
        await self.ensure_ready()
        groups = sorted(self._declared)
        if not groups:
            return 0
        return await self._run(lambda conn: int(conn.execute(
            select(func.count()).select_from(deliveries).where(
                deliveries.c.grp.in_(groups))).scalar_one()), write=False)

    async def waiting(self) -> Waiting:
        """:meth:`backlog`, and how long the oldest of those deliveries has waited since
        its message was published."""
        await self.ensure_ready()
        groups = sorted(self._declared)
        if not groups:
            return Waiting(0)
        now = to_micros(self.clock())
        count, first = await self._run(lambda conn: conn.execute(
            select(func.count(), func.min(messages.c.published_at)).select_from(
                deliveries.join(messages, messages.c.id == deliveries.c.message)).where(
                deliveries.c.grp.in_(groups))).one(), write=False)
        return Waiting(int(count), 0.0 if first is None else max(now - int(first), 0) / 1e6)

    # -- in one transaction each ------------------------------------------------------

    def _publish(self, conn: Connection, batch: Sequence[Message], now: int,
                 prune: bool) -> int:
        serialize(conn, self.database, "messaging:broker-publish")
        unique: dict[str, Message] = {}
        for m in batch:
            unique.setdefault(m.message_id, m)
        stored = set(conn.execute(_STORED, {"ids": list(unique)}).scalars())
        new = [m for key, m in unique.items() if key not in stored]
        if new:
            # one row at a time, in batch order: ids follow the publish order
            conn.execute(_INSERT_MESSAGE, [
                {"message_id": m.message_id, "stream_id": m.stream_id, "body": m.encode(),
                 "published_at": now} for m in new])
            ids: dict[str, int] = {key: int(row_id) for key, row_id in conn.execute(
                _IDS, {"ids": [m.message_id for m in new]})}
            rows = [{"grp": g, "message": ids[m.message_id], "visible_at": 0,
                     "deliveries": 0}
                    for g, reads in _readers(conn).items() for m in new
                    if reads is None or m.message_type in reads]
            if rows:
                conn.execute(_INSERT_DELIVERY, rows)
        if prune:
            cutoff = now - int(self.dedupe_window * 1_000_000)
            conn.execute(delete(messages).where(
                messages.c.published_at < cutoff,
                ~exists().where(deliveries.c.message == messages.c.id)))
        return len(new)

    def _claim(self, conn: Connection, group: str, n: int
               ) -> tuple[list[tuple[int, int, bytes]], float | None]:
        """Claimed (row, delivery count, body); else the seconds until a held row of the
        group becomes visible again (None: the group has none)."""
        now = self._now()
        rows = conn.execute(_VISIBLE, {"grp": group, "now": now, "n": n}).all()
        if not rows:
            next_visible = conn.execute(_NEXT_VISIBLE, {"grp": group}).scalar()
            return [], None if next_visible is None else (int(next_visible) - now) / 1e6
        ids = [int(r[0]) for r in rows]
        conn.execute(_CLAIM, {"group": group, "rows": ids,
                              "until": now + int(self.visibility * 1_000_000)})
        bodies: dict[int, bytes] = {int(row_id): bytes(body) for row_id, body in conn.execute(
            _BODIES, {"rows": ids})}
        return [(int(r[0]), int(r[1]) + 1, bodies[int(r[0])]) for r in rows], None

    async def _ack(self, group: str, row: int) -> None:
        # Acknowledgements asked for in one turn of the loop are deleted in one statement
        # per group, in one transaction. Also after the claim expired: the message was
        # handled, the group is done with it.
        loop = asyncio.get_running_loop()
        acks = self._acks
        if acks is None:
            acks = self._acks = _Acks(loop.create_future())
            loop.call_soon(self._delete_acks, acks)
        acks.rows.setdefault(group, []).append(row)
        await asyncio.shield(acks.done)

    def _delete_acks(self, acks: _Acks) -> None:
        if self._acks is acks:
            self._acks = None

        def work(conn: Connection) -> None:
            for group, rows in acks.rows.items():
                conn.execute(_ACK, {"group": group, "rows": rows})

        async def delete_them() -> None:
            try:
                await self._run(work)
            except asyncio.CancelledError:
                acks.done.cancel()
                raise
            except Exception as exc:
                acks.done.set_exception(exc)
            else:
                acks.done.set_result(None)

        task = asyncio.ensure_future(delete_them())
        task.add_done_callback(_retrieve)

    async def _nack(self, group: str, row: int, count: int) -> None:
        def work(conn: Connection) -> int:
            return conn.execute(update(deliveries).where(
                deliveries.c.grp == group, deliveries.c.message == row,
                deliveries.c.deliveries == count,  # still ours, not claimed again since
            ).values(visible_at=0)).rowcount
        if await self._run(work):
            self._wakeups.wake()

    # -- plumbing -----------------------------------------------------------------------

    def _now(self) -> int:
        return to_micros(self.clock())

    async def ensure_ready(self) -> None:
        """Create the tables if this broker has not yet (its calls do it themselves);
        BrokerError once it is closed."""
        if not self._ready:
            await self.setup()

    async def _run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        if self._closed:
            raise BrokerError("the SQL broker is closed: connect() it again")
        try:
            return await self.database.run(work, write=write)
        except (SQLAlchemyError, StoreError, OSError) as exc:
            raise BrokerError(f"the broker's database failed: {type(exc).__name__}: {exc}"
                              ) from exc
