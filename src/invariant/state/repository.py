"""A repository for state-stored aggregates: one row per aggregate, optimistic locking, and
the aggregate's events written to the outbox in the same transaction."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import uuid4

from sqlalchemy import MetaData, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from invariant.contracts.contract import Contract
from invariant.contracts.engine import SQLITE_BEGIN
from invariant.contracts.sql import contracts_metadata, table_for
from invariant.domain.errors import (
    AggregateNotFoundError,
    ConcurrencyError,
    ConfigurationError,
    StoreError,
    UniquenessError,
)
from invariant.domain.events import DomainEvent
from invariant.domain.state import StateAggregate
from invariant.state.db_errors import is_serialization_failure, unique_violation
from invariant.state.outbox import outbox_ddl, outbox_table
from invariant.store.clock import Clock, utc_now
from invariant.store.codec import Codec

A = TypeVar("A", bound=StateAggregate[Any, Any])
T = TypeVar("T")
Isolation = Literal["SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"]
Change = Callable[[A], Awaitable[None] | None]


class _SerializationFailure(Exception):
    """The database aborted the transaction to keep it serializable; run it again."""


class _AlreadyStored(Exception):
    """A new aggregate's id is already stored (someone else created it first)."""


class StateStoredRepository(Generic[A]):
    """Loads and saves aggregates stored as rows of their contract's table.

    * ``save`` inserts a new aggregate (version 0) as version 1, or updates the row only if
      its version is still the one the aggregate was loaded at; otherwise it raises
      :class:`~invariant.domain.errors.ConcurrencyError` (stream ``"<table>-<id>"``), the
      same error the event store raises.
    * The aggregate's pending events go to ``invariant_outbox`` in the same transaction.
    * A value taken by another row (a unique column) raises
      :class:`~invariant.domain.errors.UniquenessError` naming the field.
    * ``isolation="SERIALIZABLE"`` (PostgreSQL) runs each transaction serializably and runs
      it again, up to ``retries`` times, when the database reports a serialization failure.
      On SQLite writers always take the write lock first, which is already serializable.
    * ``update(id, change)`` loads, changes and saves in one transaction and retries the
      whole command on conflicts.

    Create the engine with :func:`invariant.contracts.engine.create_engine`; create the
    table with the contract's migrations and the outbox with :meth:`setup`.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        aggregate_type: type[A],
        contract: type[Contract],
        *,
        id_type: Callable[[str], Any] = str,
        codec: Codec | None = None,
        isolation: Isolation | None = None,
        retries: int = 3,
        clock: Clock = utc_now,
    ) -> None:
        if retries < 0:
            raise ConfigurationError(f"retries must be >= 0, got {retries}")
        self._engine = engine
        self._type = aggregate_type
        self._contract = contract
        self._id_type = id_type
        self._codec = codec or Codec()
        self._isolation = isolation
        self._retries = retries
        self._clock = clock
        self.table = table_for(contract, contracts_metadata())
        self._outbox = outbox_table(MetaData())

    async def setup(self) -> None:
        """Create the outbox table when missing (the same DDL as the event store's)."""
        async with self._engine.begin() as conn:
            for statement in outbox_ddl(self._engine.dialect.name):
                await conn.exec_driver_sql(statement)

    async def get(self, id: object) -> A:
        """The aggregate stored under ``id``; AggregateNotFoundError when there is none."""
        async with self._engine.connect() as conn:
            return await self._load(conn, str(id))

    async def save(self, aggregate: A, *, metadata: Mapping[str, Any] | None = None) -> None:
        """Store the aggregate's state and publish its pending events, atomically."""
        self._check_state(aggregate)
        version = await self._run(
            lambda conn: self._write(conn, aggregate, metadata),
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
                return await self._in_transaction(functools.partial(
                    self._load_change_write, key=key, change=change, metadata=metadata,
                    read=read,
                ))
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
        async with self._engine.connect() as conn:
            return await self._stored_version(conn, str(id))

    # -- transactions -------------------------------------------------------------------

    async def _run(
        self, work: Callable[[AsyncConnection], Awaitable[T]], *, key: str, expected: int
    ) -> T:
        failure: _SerializationFailure | None = None
        for _ in range(self._retries + 1):
            try:
                return await self._in_transaction(work)
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

    async def _in_transaction(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        try:
            async with self._transaction() as conn:
                return await work(conn)
        except DBAPIError as exc:
            raise self._translate(exc) from exc

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn:
            if self._engine.dialect.name == "sqlite":
                await conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
            elif self._isolation is not None:
                await conn.execution_options(isolation_level=self._isolation)
            async with conn.begin():
                yield conn

    def _translate(self, exc: DBAPIError) -> Exception:
        if is_serialization_failure(exc):
            return _SerializationFailure()
        columns = unique_violation(exc, self.table)
        if columns == ("id",):
            return _AlreadyStored()
        if columns is not None:
            return UniquenessError(self._type.__name__, columns)
        return StoreError(
            f"saving {self._type.__name__} failed in the database: {exc.orig}; see the chained "
            "driver error"
        )

    # -- statements -----------------------------------------------------------------------

    async def _load(self, conn: AsyncConnection, key: str) -> A:
        result = await conn.execute(select(self.table).where(self.table.c.id == key))
        row = result.mappings().first()
        if row is None:
            raise AggregateNotFoundError(self._type.__name__, key)
        state = self._contract.from_row(dict(row))
        return self._type.restore(self._id_type(row["id"]), state, row["version"])

    async def _load_change_write(
        self, conn: AsyncConnection, key: str, change: Change[A],
        metadata: Mapping[str, Any] | None, read: list[int],
    ) -> A:
        aggregate = await self._load(conn, key)
        read.append(aggregate.version)
        outcome = change(aggregate)
        if inspect.isawaitable(outcome):
            await outcome
        self._check_state(aggregate)
        aggregate.mark_saved(await self._write(conn, aggregate, metadata))
        return aggregate

    async def _write(
        self, conn: AsyncConnection, aggregate: A, metadata: Mapping[str, Any] | None
    ) -> int:
        key, expected, now = str(aggregate.id), aggregate.version, self._clock()
        values = aggregate.state.to_row()
        if expected == 0:
            await conn.execute(insert(self.table).values(
                id=key, version=1, created_at=now, updated_at=now, **values))
        else:
            result = await conn.execute(
                update(self.table)
                .where(self.table.c.id == key, self.table.c.version == expected)
                .values(version=expected + 1, updated_at=now, **values)
            )
            if result.rowcount != 1:
                actual = await self._stored_version(conn, key)
                raise ConcurrencyError(self._stream(key), expected, actual)
        events = aggregate.pending_events
        if events:
            rows = [self._message(key, event, metadata, now) for event in events]
            await conn.execute(insert(self._outbox), rows)
        return expected + 1

    async def _stored_version(self, conn: AsyncConnection, key: str) -> int:
        result = await conn.execute(select(self.table.c.version).where(self.table.c.id == key))
        version = result.scalar()
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
