"""PostgreSQL event storage (asyncpg).

* One round trip per single-stream append: a server-side function checks the expected
  version, inserts the events and their outbox rows, and returns versions and positions.
* Never skipping on the global log: positions come from a sequence, so a transaction can
  commit a lower position after a higher one became visible. Every append therefore takes a
  *shared* transaction-level advisory lock before it draws positions (appends never block
  each other), and a follower asks for a *safe head* by taking that lock *exclusively* for an
  instant: once it is granted, every transaction that drew a position has finished, so the
  highest committed position at that moment can never be preceded by a later commit.
  :meth:`PostgresStorage.read_all` only returns events up to the safe head.

Rooms: :mod:`~invariant.store.postgres.schema` (the tables and functions, as data),
:mod:`~invariant.store.postgres.writer` (group commit), :mod:`~invariant.store.postgres.reads`
(reads up to the safe head), :mod:`~invariant.store.postgres.listen` (LISTEN/NOTIFY),
:mod:`~invariant.store.postgres.connection` (the pool); this module holds the lifecycle.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

import asyncpg

from invariant.clock import Clock, utc_now
from invariant.domain.errors import ConfigurationError, StoreError
from invariant.sql import outbox
from invariant.store.postgres.catalog import PostgresCatalog
from invariant.store.postgres.connection import (
    DRIVER_ERRORS,
    Conn,
    init_connection,
    keep_session,
    lock_key_for,
    redact,
)
from invariant.store.postgres.listen import CommitListener
from invariant.store.postgres.reads import read_statements
from invariant.store.postgres.schema import schema_marker, schema_statements
from invariant.store.postgres.writer import PostgresWriter, append_statements
from invariant.store.records import Commit, CommitResult
from invariant.store.signal import wait_for_head

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresStorage(PostgresCatalog, PostgresWriter):
    """Event storage in PostgreSQL, in the tables of one schema.

    ``dsn`` is a libpq URL (``postgresql://user:password@host:5432/db``). ``schema`` names
    the PostgreSQL schema that holds invariant's tables and functions (events, outbox,
    snapshots, commands); :meth:`setup` creates it and them when missing. It must be a
    lower-case SQL identifier (``a-z``, ``0-9``, ``_``); ``public`` by default. Give each
    application (or test) its own schema to share one database; read models, processes
    and the relay find the same schema through ``ReadModelDatabase.for_url(dsn,
    schema=...)`` (``INVARIANT_POSTGRES_SCHEMA`` sets both). ``min_connections`` and
    ``max_connections`` size the connection pool.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        min_connections: int = 2,
        max_connections: int = 20,
        clock: Clock = utc_now,
        connect_timeout: float = 10.0,
        application_name: str = "invariant",
        group_commit: bool = True,
        max_batch: int = 256,
    ) -> None:
        if not _IDENTIFIER.match(schema):
            raise ConfigurationError(
                f"schema name {schema!r} must be a lower-case SQL identifier (a-z, 0-9, _)"
            )
        if not 1 <= min_connections <= max_connections:
            raise ConfigurationError("need 1 <= min_connections <= max_connections")
        self.dsn = dsn
        self.schema = schema
        self._min = min_connections
        self._max = max_connections
        self._clock = clock
        self._timeout = connect_timeout
        self._application_name = application_name
        self._group_commit = group_commit
        self._max_batch = max_batch
        self._pending: list[tuple[Commit, asyncio.Future[CommitResult]]] = []
        self._flushing = False
        self._flush_task: asyncio.Task[None] | None = None
        self._pool: asyncpg.Pool | None = None
        self._lock_key = lock_key_for(schema)
        self._safe_head = 0
        self._sql = append_statements(schema, self._lock_key)
        (self._sql_version, self._sql_read_log, self._sql_read_type_log,
         self._sql_stream_data, self._sql_snapshot_tail) = read_statements(schema)

    # -- lifecycle -------------------------------------------------------------------------

    async def setup(self) -> None:
        """Create the schema, or bring it to this version; nothing at all when it is there.

        The statements are idempotent but not harmless beside live writers: ``CREATE INDEX
        IF NOT EXISTS`` and ``ALTER SEQUENCE ... OWNED BY`` take locks on the events table
        that conflict with appends, and a process starting while others write (a second
        instance, a restart, a rebuild) deadlocked with them. So the table carries the
        version of the statements that made it (a comment) and a setup that finds it
        returns without DDL."""
        pool = await self._get_pool()
        statements = schema_statements(self.schema, self._lock_key)
        marker = schema_marker(statements)
        async with pool.acquire() as conn:
            if await self._marker(conn) == marker:
                return
            # Serialize concurrent setups (several workers starting at once).
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_key ^ 1)
                if await self._marker(conn) == marker:
                    return  # made meanwhile by another setup
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute(
                    f"COMMENT ON TABLE {self.schema}.invariant_events IS '{marker}'")

    async def _marker(self, conn: Conn) -> str | None:
        found = await conn.fetchval("SELECT obj_description(to_regclass($1), 'pg_class')",
                                    f"{self.schema}.invariant_events")
        return None if found is None else str(found)

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            try:
                self._pool = await asyncpg.create_pool(
                    self.dsn, min_size=self._min, max_size=self._max, init=init_connection,
                    timeout=self._timeout,
                    server_settings={"application_name": self._application_name},
                    reset=keep_session,
                )
            except DRIVER_ERRORS as exc:
                raise StoreError(
                    f"cannot connect to PostgreSQL at {redact(self.dsn)}: {exc}; is the server "
                    "running and the DSN (INVARIANT_POSTGRES_DSN) right?"
                ) from exc
        return self._pool

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        pool = await self._get_pool()
        try:
            return await pool.fetch(sql, *args)
        except DRIVER_ERRORS as exc:
            raise StoreError(f"PostgreSQL read failed: {exc}") from exc

    _listener: CommitListener | None = None
    # Missed notifications (a lost listening connection) are caught by this re-check.
    commit_recheck_seconds = 5.0

    async def wait_for_commit(self, after_position: int, timeout: float) -> None:  # noqa: ASYNC109
        """Return once an event after ``after_position`` is readable, or after ``timeout``."""
        if self._listener is None:
            self._listener = CommitListener(self.dsn, self.schema, self._timeout)
        recheck = self.commit_recheck_seconds
        try:
            await self._listener.ensure()
        except DRIVER_ERRORS:
            recheck = 1.0  # not listening: re-read the head more often until we are again
        await wait_for_head(self.head_position, self._listener.signal, after_position,
                            timeout, recheck)

    async def mark_published(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        pool = await self._get_pool()
        try:
            await pool.execute(
                outbox.mark_published(outbox.POSTGRESQL, f"{self.schema}.", ids="$1", now="$2"),
                list(ids), self._clock(),
            )
        except DRIVER_ERRORS as exc:
            raise StoreError(f"PostgreSQL write failed: {exc}") from exc


__all__ = ["PostgresStorage", "lock_key_for"]
