"""A repository for state-stored aggregates: one row per aggregate, optimistic locking, and
the aggregate's events written to the outbox in the same transaction.

Every statement is written once, as a *synchronous* function over a SQLAlchemy
``Connection``; the repository runs those functions in one transaction either on an async
engine (``await conn.run_sync(...)``) or on a :class:`Database` such as invariant's
``ReadModelDatabase`` (``await database.run(...)``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeVar
from uuid import uuid4

from sqlalchemy import Connection, MetaData, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from invariant.clock import Clock, utc_now
from invariant.contracts.contract import Contract
from invariant.contracts.sql import contracts_metadata, table_for
from invariant.domain.errors import (
    AggregateNotFoundError,
    ConcurrencyError,
    ConfigurationError,
    StoreError,
    UniquenessError,
)
from invariant.domain.events import DomainEvent
from invariant.domain.state_aggregate import StateAggregate
from invariant.sql.database import committed
from invariant.sql.engine import SQLITE_BEGIN
from invariant.sql.errors import is_serialization_failure, unique_violation
from invariant.sql.outbox_table import create_outbox, outbox_table, outbox_written
from invariant.store.codec import Codec

A = TypeVar("A", bound=StateAggregate[Any, Any])
T = TypeVar("T")
Isolation = Literal["SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"]
Change = Callable[[A], Awaitable[None] | None]


class Database(Protocol):
    """Runs a synchronous function in one transaction (what the repository needs of
    :class:`invariant.projections.ReadModelDatabase`, which is one)."""

    async def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """Run ``work`` in one transaction, committed when it returns, rolled back if it
        raises; ``write=False`` for reads."""
        ...


class _SerializationFailure(Exception):
    """The database aborted the transaction to keep it serializable; run it again."""


class _AlreadyStored(Exception):
    """A new aggregate's id is already stored (someone else created it first)."""


class _AwaitChange(Exception):
    """The change returned an awaitable: a database transaction never waits for the event
    loop, so the change runs between two transactions (see ``update``)."""

    def __init__(self, aggregate: Any, loaded: Any, outcome: Awaitable[None]) -> None:
        super().__init__("the change is asynchronous")
        self.aggregate = aggregate
        self.loaded = loaded
        self.outcome = outcome


class StateStoredRepository(Generic[A]):
    """Loads and saves aggregates stored as rows of their contract's table.

    * ``save`` inserts a new aggregate (version 0) as version 1, or updates the row only if
      its version is still the one the aggregate was loaded at; otherwise it raises
      :class:`~invariant.domain.errors.ConcurrencyError` (stream ``"<table>-<id>"``), the
      same error the event store raises.
    * The aggregate's pending events go to ``invariant_outbox`` in the same transaction.
    * A value taken by another row (a unique column) raises
      :class:`~invariant.domain.errors.UniquenessError` naming the field.
    * ``isolation="SERIALIZABLE"`` (PostgreSQL) runs each write transaction serializably and
      runs it again, up to ``retries`` times, when the database reports a serialization
      failure. On SQLite writers always take the write lock first, which is already
      serializable.
    * ``update(id, change)`` loads, changes and saves in one transaction and retries the
      whole command on conflicts. A change that records no event and leaves the state as it
      was writes nothing (the aggregate keeps its version). ``lock_rows=True`` loads the row
      ``FOR UPDATE`` on PostgreSQL, so that concurrent updates of one aggregate queue for it
      instead of failing the version check and running again.

    **Where the transactions run** (the first argument):

    * a :class:`Database`, i.e. the application's
      :class:`~invariant.projections.ReadModelDatabase` (``app.read_models``, or
      :func:`invariant.bootstrap.open_read_models` for the event store's database): each
      transaction is one synchronous function, run on the event loop's thread on SQLite
      (like the event store's writer) and through asyncpg on PostgreSQL. **Use this one
      whenever the SQLite file is also written by invariant's event store, projections,
      relay or jobs in the same process.** A ``change`` passed to ``update`` that is a
      coroutine then runs between two transactions (load, await the change, save checked
      against the loaded version), never inside one.
    * an ``AsyncEngine`` from :func:`invariant.sql.engine.create_engine`: for a
      database only state-stored aggregates write, or PostgreSQL.

    .. warning::
       Never use an async SQLite engine (aiosqlite) on a file that the process's
       ``SQLiteStorage`` or ``ReadModelDatabase`` also writes. Such a transaction holds the
       SQLite write lock across ``await`` points; the event store's writer, which commits
       synchronously on the loop's thread, then blocks the loop waiting for that lock while
       the transaction waits for the loop to finish: the process hangs for the busy timeout
       (10 s), then fails with "database is locked". Pass ``app.read_models`` instead.

    Create the table with the contract's migrations and the outbox with :meth:`setup`.
    """

    def __init__(
        self,
        engine: AsyncEngine | Database,
        aggregate_type: type[A],
        contract: type[Contract],
        *,
        id_type: Callable[[str], Any] = str,
        codec: Codec | None = None,
        isolation: Isolation | None = None,
        retries: int = 3,
        clock: Clock = utc_now,
        lock_rows: bool = False,
    ) -> None:
        if retries < 0:
            raise ConfigurationError(f"retries must be >= 0, got {retries}")
        self._engine: AsyncEngine | None = None
        self._database: Database | None = None
        if isinstance(engine, AsyncEngine):
            self._engine = engine
        elif callable(getattr(engine, "run", None)):
            self._database = engine
        else:
            raise ConfigurationError(
                f"StateStoredRepository runs on an AsyncEngine or a ReadModelDatabase, "
                f"not a {type(engine).__name__}"
            )
        self._type = aggregate_type
        self._contract = contract
        self._id_type = id_type
        self._codec = codec or Codec()
        self._isolation = isolation
        self._retries = retries
        self._clock = clock
        self._lock_rows = lock_rows
        self.table = table_for(contract, contracts_metadata())
        self._outbox = outbox_table(MetaData())
        # The statements built once: building one (and its cache key) per call costs more
        # than running it.
        table = self.table
        by_id = select(table).where(table.c.id == bindparam("_key"))
        self._by_id = {False: by_id, True: by_id.with_for_update()}
        self._version_of = select(table.c.version).where(table.c.id == bindparam("_key"))
        self._insert = insert(table)
        self._update = update(table).where(table.c.id == bindparam("_key"),
                                           table.c.version == bindparam("_expected"))
        self._insert_outbox = insert(self._outbox)

    async def setup(self) -> None:
        """Create the outbox table when missing (the same DDL as the event store's)."""
        await self._transact(create_outbox)

    async def get(self, id: object) -> A:
        """The aggregate stored under ``id``; AggregateNotFoundError when there is none."""
        aggregate, _ = await self._transact(
            functools.partial(self._load, key=str(id), lock=False), write=False)
        return aggregate

    async def save(self, aggregate: A, *, metadata: Mapping[str, Any] | None = None) -> None:
        """Store the aggregate's state and publish its pending events, atomically."""
        self._check_state(aggregate)
        version = await self._run(
            functools.partial(self._write, aggregate=aggregate, metadata=metadata),
            key=str(aggregate.id), expected=aggregate.version,
        )
        aggregate.mark_saved(version)

    async def update(
        self, id: object, change: Change[A], *, metadata: Mapping[str, Any] | None = None
    ) -> A:
        """Load, ``change`` and save in one transaction; on a conflict run it all again
        (up to ``retries`` times), then raise ConcurrencyError."""
        key = str(id)
        for attempt in range(self._retries + 1):
            read: list[int] = []
            try:
                return await self._update_once(key, change, metadata, read)
            except ConcurrencyError:
                if attempt == self._retries:
                    raise
            except _SerializationFailure as failure:
                if attempt == self._retries:
                    actual = await self.version_of(key)
                    raise ConcurrencyError(
                        self._stream(key), read[0] if read else 0, actual
                    ) from failure.__cause__
        raise AssertionError("unreachable")  # pragma: no cover

    async def version_of(self, id: object) -> int:
        """The stored version of ``id`` (0 when there is no such row)."""
        return await self._transact(
            functools.partial(self._stored_version, key=str(id)), write=False)

    # -- transactions -------------------------------------------------------------------

    async def _update_once(
        self, key: str, change: Change[A], metadata: Mapping[str, Any] | None,
        read: list[int],
    ) -> A:
        if self._engine is not None:
            # One transaction of the async connection; an async change is awaited inside.
            try:
                async with self._engine_transaction(write=True) as conn:
                    aggregate, loaded = await conn.run_sync(
                        self._load, key=key, lock=self._lock_rows, isolate=True)
                    read.append(aggregate.version)
                    outcome = change(aggregate)
                    if inspect.isawaitable(outcome):
                        await outcome
                    await conn.run_sync(self._store_change, aggregate=aggregate,
                                        loaded=loaded, metadata=metadata)
                    return aggregate
            except DBAPIError as exc:
                raise self._translate(exc) from exc
        if inspect.iscoroutinefunction(change):
            deferred = await self._transact(functools.partial(
                self._load_for_async_change, key=key, change=change), write=False)
        else:
            try:
                return await self._transact(functools.partial(
                    self._load_change_store, key=key, change=change, metadata=metadata,
                    read=read))
            except _AwaitChange as signal:  # a lambda or callable returned an awaitable
                deferred = signal
        # A database transaction never waits for the loop: the change is awaited between
        # the load and a save checked against the loaded version.
        changed: A = deferred.aggregate
        if not read:
            read.append(changed.version)
        await deferred.outcome
        await self._transact(functools.partial(
            self._store_change, aggregate=changed, loaded=deferred.loaded,
            metadata=metadata))
        return changed

    async def _run(self, work: Callable[[Connection], T], *, key: str, expected: int) -> T:
        failure: _SerializationFailure | None = None
        for _ in range(self._retries + 1):
            try:
                return await self._transact(work)
            except _SerializationFailure as exc:
                failure = exc
            except _AlreadyStored as exc:
                failure = None
                cause: BaseException | None = exc.__cause__
                break
        else:
            cause = failure.__cause__ if failure else None
        actual = await self.version_of(key)
        raise ConcurrencyError(self._stream(key), expected, actual) from cause

    async def _transact(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """Run the synchronous ``work`` in one transaction, on whichever path."""
        step = functools.partial(self._isolated, work=work) if write else work
        try:
            if self._database is not None:
                return await self._database.run(step, write=write)
            async with self._engine_transaction(write=write) as conn:
                return await conn.run_sync(step)
        except DBAPIError as exc:
            raise self._translate(exc) from exc

    @contextlib.asynccontextmanager
    async def _engine_transaction(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        assert self._engine is not None
        async with self._engine.connect() as conn:
            if write and self._engine.dialect.name == "sqlite":
                await conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
            async with conn.begin():
                yield conn
            await conn.run_sync(committed)  # wakes the relays if it wrote outbox rows

    def _isolated(self, conn: Connection, work: Callable[[Connection], T]) -> T:
        self._isolate(conn)
        return work(conn)

    def _isolate(self, conn: Connection) -> None:
        # The transaction's first statement, on either path (SQLite writers take the write
        # lock at BEGIN instead).
        if self._isolation is not None and conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SET TRANSACTION ISOLATION LEVEL {self._isolation}")

    def _translate(self, exc: DBAPIError) -> Exception:
        if is_serialization_failure(exc):
            return _SerializationFailure()
        columns = unique_violation(exc, self.table)
        if columns == ("id",):
            return _AlreadyStored()
        if columns is not None:
            return UniquenessError(self._type.__name__, columns)
        return StoreError(
            f"storing or loading {self._type.__name__} failed in the database: {exc.orig}; "
            "see the chained driver error"
        )

    # -- statements (synchronous, one implementation for both paths) ------------------------

    def _load(
        self, conn: Connection, key: str, *, lock: bool, isolate: bool = False
    ) -> tuple[A, Any]:
        """The aggregate and the state it was loaded with."""
        if isolate:
            self._isolate(conn)
        # SQLite: the writer holds the write lock
        query = self._by_id[lock and conn.dialect.name == "postgresql"]
        row = conn.execute(query, {"_key": key}).mappings().first()
        if row is None:
            raise AggregateNotFoundError(self._type.__name__, key)
        state = self._contract.from_row(dict(row))
        return self._type.restore(self._id_type(row["id"]), state, row["version"]), state

    def _load_change_store(
        self, conn: Connection, key: str, change: Change[A],
        metadata: Mapping[str, Any] | None, read: list[int],
    ) -> A:
        aggregate, loaded = self._load(conn, key, lock=self._lock_rows)
        read.append(aggregate.version)
        outcome = change(aggregate)
        if inspect.isawaitable(outcome):
            raise _AwaitChange(aggregate, loaded, outcome)  # rolls this transaction back
        self._store_change(conn, aggregate, loaded, metadata)
        return aggregate

    def _load_for_async_change(
        self, conn: Connection, key: str, change: Change[A]
    ) -> _AwaitChange:
        aggregate, loaded = self._load(conn, key, lock=False)
        outcome = change(aggregate)
        assert inspect.isawaitable(outcome)
        return _AwaitChange(aggregate, loaded, outcome)

    def _store_change(
        self, conn: Connection, aggregate: A, loaded: Any, metadata: Mapping[str, Any] | None
    ) -> None:
        """Save a loaded and changed aggregate, unless the change changed nothing."""
        if not aggregate.pending_events and aggregate.state == loaded:
            return
        self._check_state(aggregate)
        aggregate.mark_saved(self._write(conn, aggregate, metadata))

    def _write(
        self, conn: Connection, aggregate: A, metadata: Mapping[str, Any] | None
    ) -> int:
        key, expected, now = str(aggregate.id), aggregate.version, self._clock()
        values = aggregate.state.to_row()
        if expected == 0:
            conn.execute(self._insert, {
                **values, "id": key, "version": 1, "created_at": now, "updated_at": now})
        else:
            result = conn.execute(self._update, {
                **values, "version": expected + 1, "updated_at": now, "_key": key,
                "_expected": expected})
            if result.rowcount != 1:
                actual = self._stored_version(conn, key)
                raise ConcurrencyError(self._stream(key), expected, actual)
        events = aggregate.pending_events
        if events:
            rows = [self._message(key, event, metadata, now) for event in events]
            conn.execute(self._insert_outbox, rows)
            outbox_written(conn)
        return expected + 1

    def _stored_version(self, conn: Connection, key: str) -> int:
        version = conn.execute(self._version_of, {"_key": key}).scalar()
        return int(version) if version is not None else 0

    def _message(
        self, key: str, event: DomainEvent, metadata: Mapping[str, Any] | None, now: datetime
    ) -> dict[str, Any]:
        return {
            "message_id": uuid4(),
            "stream_id": self._stream(key),
            "message_type": event.event_type,
            "schema_version": event.schema_version,
            "position": None,
            "data": self._codec.encode(event),
            "metadata": dict(metadata or {}),
            "created_at": now,
            "published_at": None,
        }

    def _stream(self, id: object) -> str:
        return f"{self.table.name}-{id}"

    def _check_state(self, aggregate: A) -> None:
        if not isinstance(aggregate.state, self._contract):
            raise ConfigurationError(
                f"{type(aggregate).__name__}.state is a {type(aggregate.state).__name__}, "
                f"but this repository stores {self._contract.__name__} values"
            )
