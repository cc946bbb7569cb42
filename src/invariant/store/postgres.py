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
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from invariant.domain.errors import (
    ConcurrencyError,
    ConfigurationError,
    DuplicateCommandError,
    DuplicateEventError,
    InvariantError,
    StoreError,
)
from invariant.store.clock import Clock, utc_now
from invariant.store.postgres_listen import CommitListener, notify_channel
from invariant.store.records import (
    AppendRequest,
    Commit,
    CommitResult,
    LogRow,
    OutboxRecord,
    RecordedEvent,
    SnapshotRecord,
    StoredCommand,
    StreamResult,
    StreamState,
    expected_number,
    validate_append,
)
from invariant.store.signal import wait_for_head

# Errors that mean "the driver or the connection failed", as opposed to a refused statement.
_CONNECTION_ERRORS = (OSError, asyncpg.InterfaceError, asyncpg.InternalClientError, TimeoutError)
_DRIVER_ERRORS = (*_CONNECTION_ERRORS, asyncpg.PostgresError)

_Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_WRONG_VERSION = "IV001"
_ANY_RETRIES = 10


def outbox_ddl(qualifier: str) -> list[str]:
    """The outbox table and its index; ``qualifier`` is ``"schema."`` or ``""`` (search
    path). Shared with the state-stored repository (invariant.state.outbox)."""
    prefix = qualifier
    return [
        f"""CREATE TABLE IF NOT EXISTS {prefix}invariant_outbox (
            id              bigserial   PRIMARY KEY,
            message_id      uuid        NOT NULL,
            stream_id       text        NOT NULL,
            message_type    text        NOT NULL,
            schema_version  integer     NOT NULL,
            position        bigint,
            data            jsonb,
            metadata        jsonb,
            created_at      timestamptz NOT NULL,
            published_at    timestamptz
        )""",
        f"""CREATE INDEX IF NOT EXISTS invariant_outbox_pending
            ON {prefix}invariant_outbox (id) WHERE published_at IS NULL""",
    ]


def _schema_sql(s: str, lock_key: int) -> list[str]:
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE SEQUENCE IF NOT EXISTS {s}.invariant_events_position_seq",
        f"""CREATE TABLE IF NOT EXISTS {s}.invariant_events (
            position        bigint      PRIMARY KEY
                            DEFAULT nextval('{s}.invariant_events_position_seq'),
            event_id        uuid        NOT NULL UNIQUE,
            stream_id       text        NOT NULL,
            category        text        NOT NULL,
            version         bigint      NOT NULL,
            event_type      text        NOT NULL,
            schema_version  integer     NOT NULL,
            data            jsonb       NOT NULL,
            metadata        jsonb       NOT NULL,
            recorded_at     timestamptz NOT NULL,
            CONSTRAINT invariant_events_stream_version UNIQUE (stream_id, version)
        )""",
        f"ALTER SEQUENCE {s}.invariant_events_position_seq OWNED BY {s}.invariant_events.position",
        f"""CREATE INDEX IF NOT EXISTS invariant_events_category
            ON {s}.invariant_events (category, position)""",
        f"""CREATE TABLE IF NOT EXISTS {s}.invariant_snapshots (
            stream_id       text        PRIMARY KEY,
            aggregate_type  text        NOT NULL,
            version         bigint      NOT NULL,
            schema_version  integer     NOT NULL,
            state           jsonb       NOT NULL,
            recorded_at     timestamptz NOT NULL
        )""",
        *outbox_ddl(f"{s}."),
        f"""CREATE TABLE IF NOT EXISTS {s}.invariant_commands (
            command_id      uuid        PRIMARY KEY,
            command_type    text        NOT NULL,
            value           jsonb,
            position        bigint      NOT NULL,
            versions        jsonb       NOT NULL,
            recorded_at     timestamptz NOT NULL
        )""",
        f"""CREATE OR REPLACE FUNCTION {s}.invariant_append(
                p_stream text, p_expected bigint, p_ids uuid[], p_types text[],
                p_schemas integer[], p_data jsonb[], p_meta jsonb[], p_recorded timestamptz)
            RETURNS TABLE (new_version bigint, first_position bigint, last_position bigint)
            LANGUAGE plpgsql AS $fn$
        DECLARE
            v_actual bigint;
        BEGIN
            -- Shared with every other append; exclusive only for a follower's safe head.
            PERFORM pg_advisory_xact_lock_shared({lock_key});
            IF p_expected < 0 THEN
                -- "any": queue behind other appends to this stream instead of colliding.
                PERFORM pg_advisory_xact_lock(hashtextextended(p_stream, {lock_key}));
            END IF;
            SELECT coalesce(max(e.version), 0) INTO v_actual
              FROM {s}.invariant_events e WHERE e.stream_id = p_stream;
            IF p_expected >= 0 AND v_actual <> p_expected THEN
                RAISE EXCEPTION USING ERRCODE = '{_WRONG_VERSION}',
                    MESSAGE = 'wrong expected version', DETAIL = v_actual::text;
            END IF;
            RETURN QUERY
            WITH ins AS (
                INSERT INTO {s}.invariant_events (event_id, stream_id, category, version,
                    event_type, schema_version, data, metadata, recorded_at)
                SELECT u.id, p_stream, split_part(p_stream, '-', 1), v_actual + u.ord,
                       u.t, u.sv, u.d, u.m, p_recorded
                  FROM unnest(p_ids, p_types, p_schemas, p_data, p_meta)
                       WITH ORDINALITY AS u(id, t, sv, d, m, ord)
                 ORDER BY u.ord
                RETURNING position, event_id, event_type, schema_version
            ), outbox AS (
                INSERT INTO {s}.invariant_outbox (message_id, stream_id, message_type,
                    schema_version, position, created_at)
                SELECT ins.event_id, p_stream, ins.event_type, ins.schema_version,
                       ins.position, p_recorded
                  FROM ins
            )
            SELECT v_actual + cardinality(p_ids), min(ins.position), max(ins.position)
              FROM ins;
            PERFORM pg_notify('{notify_channel(s)}', '');
        END
        $fn$""",
        f"""CREATE OR REPLACE FUNCTION {s}.invariant_append_batch(
                a_streams text[], a_expected bigint[], a_counts integer[],
                a_cmd_ids uuid[], a_cmd_types text[], a_cmd_values jsonb[],
                e_ids uuid[], e_types text[], e_schemas integer[], e_data jsonb[],
                e_meta jsonb[], p_recorded timestamptz)
            RETURNS TABLE (idx integer, status text, new_version bigint,
                           first_position bigint, last_position bigint)
            LANGUAGE plpgsql AS $fn$
        BEGIN
            -- Many commands, one set-based statement: each append is checked on its own
            -- and refused alone ('conflict', 'duplicate_command'); a second append to a
            -- stream already in the batch is sent back ('again') for the next batch.
            PERFORM pg_advisory_xact_lock_shared({lock_key});
            RETURN QUERY
            WITH a AS (
                SELECT u.i::integer AS i, u.stream, u.expected, u.n, u.cmd_id, u.cmd_type,
                       u.cmd_value,
                       coalesce(sum(u.n) OVER (ORDER BY u.i ROWS BETWEEN UNBOUNDED PRECEDING
                                               AND 1 PRECEDING), 0)::integer AS offs,
                       row_number() OVER (PARTITION BY u.stream ORDER BY u.i) AS nth
                  FROM unnest(a_streams, a_expected, a_counts, a_cmd_ids, a_cmd_types,
                              a_cmd_values)
                       WITH ORDINALITY AS u(stream, expected, n, cmd_id, cmd_type, cmd_value, i)
            ), cur AS (
                SELECT a.*,
                       coalesce((SELECT max(e.version) FROM {s}.invariant_events e
                                  WHERE e.stream_id = a.stream), 0) AS actual,
                       (a.cmd_id IS NOT NULL AND EXISTS (
                           SELECT 1 FROM {s}.invariant_commands c
                            WHERE c.command_id = a.cmd_id)) AS dup
                  FROM a
            ), ok AS (
                SELECT * FROM cur WHERE cur.nth = 1 AND cur.actual = cur.expected AND NOT cur.dup
            ), ins AS (
                INSERT INTO {s}.invariant_events (event_id, stream_id, category, version,
                    event_type, schema_version, data, metadata, recorded_at)
                SELECT e_ids[ok.offs + k], ok.stream, split_part(ok.stream, '-', 1),
                       ok.actual + k, e_types[ok.offs + k], e_schemas[ok.offs + k],
                       e_data[ok.offs + k], e_meta[ok.offs + k], p_recorded
                  FROM ok, generate_series(1, ok.n) AS k
                 ORDER BY ok.i, k
                RETURNING position, event_id, stream_id, event_type, schema_version
            ), outbox AS (
                INSERT INTO {s}.invariant_outbox (message_id, stream_id, message_type,
                    schema_version, position, created_at)
                SELECT ins.event_id, ins.stream_id, ins.event_type, ins.schema_version,
                       ins.position, p_recorded
                  FROM ins
            ), spans AS (
                SELECT ins.stream_id, min(ins.position) AS first_p, max(ins.position) AS last_p
                  FROM ins GROUP BY ins.stream_id
            ), commands AS (
                INSERT INTO {s}.invariant_commands (command_id, command_type, value, position,
                    versions, recorded_at)
                SELECT ok.cmd_id, ok.cmd_type, ok.cmd_value, spans.last_p,
                       jsonb_build_object(ok.stream, ok.actual + ok.n), p_recorded
                  FROM ok JOIN spans ON spans.stream_id = ok.stream
                 WHERE ok.cmd_id IS NOT NULL
            )
            SELECT cur.i,
                   CASE WHEN cur.nth > 1 THEN 'again'
                        WHEN cur.actual <> cur.expected THEN 'conflict'
                        WHEN cur.dup THEN 'duplicate_command'
                        ELSE 'ok' END,
                   CASE WHEN spans.last_p IS NOT NULL THEN cur.actual + cur.n
                        ELSE cur.actual END,
                   spans.first_p, spans.last_p
              FROM cur
              LEFT JOIN spans ON spans.stream_id = cur.stream AND cur.nth = 1
                             AND cur.actual = cur.expected AND NOT cur.dup
             ORDER BY cur.i;
            PERFORM pg_notify('{notify_channel(s)}', '');  -- wakes live followers on commit
        END
        $fn$""",
        f"""CREATE OR REPLACE FUNCTION {s}.invariant_safe_head() RETURNS bigint
            LANGUAGE plpgsql AS $fn$
        BEGIN
            -- Waits until no append that drew a position is still running.
            PERFORM pg_advisory_xact_lock({lock_key});
            -- Each statement of a volatile function takes a fresh snapshot: this one sees
            -- every append that finished while we waited, and none can still be running.
            RETURN (SELECT coalesce(max(position), 0) FROM {s}.invariant_events);
        END
        $fn$""",
    ]


_EVENT_COLUMNS = (
    "event_id, stream_id, version, position, event_type, schema_version, data, metadata,"
    " recorded_at"
)


def _jsonb_encode(value: Any) -> bytes:
    return b"\x01" + orjson.dumps(value)


def _jsonb_decode(value: bytes) -> Any:
    return orjson.loads(memoryview(value)[1:])


async def _keep_session(conn: asyncpg.Connection) -> None:
    # Pooled connections hold no session state (locks are transaction-scoped, nothing is
    # LISTENed on them), so the default reset round trip on every release is skipped.
    return None


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog",
        format="binary",
    )


def _row_to_event(r: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])


def _redact(dsn: str) -> str:
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", dsn)


def lock_key_for(schema: str) -> int:
    """The advisory lock key that orders appends against safe-head probes in ``schema``."""
    digest = hashlib.blake2b(f"invariant-events:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresStorage:
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
        s = schema
        self._sql_append = f"SELECT * FROM {s}.invariant_append($1, $2, $3, $4, $5, $6, $7, $8)"
        # One event, an exact expectation: a plain statement (cheaper than the plpgsql
        # call). The shared lock is taken first by data dependency: the INSERT reads `cur`,
        # which reads `locked`, so no position is drawn before the lock is held.
        self._sql_append_one = f"""
            WITH locked AS (SELECT pg_advisory_xact_lock_shared({self._lock_key}) AS held),
            cur AS (
                SELECT coalesce((SELECT max(version) FROM {s}.invariant_events
                                  WHERE stream_id = $1), 0) AS v
                  FROM locked
            ), ins AS (
                INSERT INTO {s}.invariant_events (event_id, stream_id, category, version,
                    event_type, schema_version, data, metadata, recorded_at)
                SELECT $3, $1, split_part($1, '-', 1), cur.v + 1, $4, $5, $6, $7, $8
                  FROM cur WHERE cur.v = $2
                RETURNING position, event_id, event_type, schema_version
            ), outbox AS (
                INSERT INTO {s}.invariant_outbox (message_id, stream_id, message_type,
                    schema_version, position, created_at)
                SELECT ins.event_id, $1, ins.event_type, ins.schema_version, ins.position, $8
                  FROM ins
            ), notified AS (
                SELECT pg_notify('{notify_channel(s)}', '') FROM ins
            )
            SELECT cur.v, (SELECT ins.position FROM ins), (SELECT count(*) FROM notified)
              FROM cur"""
        self._sql_batch = (
            f"SELECT * FROM {s}.invariant_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9,"
            " $10, $11, $12)"
        )
        self._sql_version = (
            f"SELECT coalesce(max(version), 0) FROM {s}.invariant_events WHERE stream_id = $1"
        )
        self._sql_read_log = (
            "SELECT position, stream_id, event_type, schema_version, data::text"
            f" FROM {s}.invariant_events WHERE position > $1 AND position <= $2"
            " AND ($3::text[] IS NULL OR event_type = ANY($3)) ORDER BY position LIMIT $4"
        )
        self._sql_stream_data = (
            f"SELECT event_type, schema_version, data::text FROM {s}.invariant_events"
            " WHERE stream_id = $1 AND version > $2 AND ($3::bigint IS NULL OR version <= $3)"
            " ORDER BY version"
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def setup(self) -> None:
        pool = await self._get_pool()
        # Serialize concurrent setups (several workers starting at once).
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_key ^ 1)
            for statement in _schema_sql(self.schema, self._lock_key):
                await conn.execute(statement)

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
                    self.dsn, min_size=self._min, max_size=self._max, init=_init_connection,
                    timeout=self._timeout,
                    server_settings={"application_name": self._application_name},
                    reset=_keep_session,
                )
            except _DRIVER_ERRORS as exc:
                raise StoreError(
                    f"cannot connect to PostgreSQL at {_redact(self.dsn)}: {exc}; is the server "
                    "running and the DSN (INVARIANT_POSTGRES_DSN) right?"
                ) from exc
        return self._pool

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        pool = await self._get_pool()
        try:
            return await pool.fetch(sql, *args)
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"PostgreSQL read failed: {exc}") from exc

    # -- writing ---------------------------------------------------------------------------

    async def commit(self, commit: Commit) -> CommitResult:
        for request in commit.appends:
            validate_append(request)
        if self._group_commit and _batchable(commit):
            loop = asyncio.get_running_loop()
            if self._flushing:
                # A commit is on its way to the server: queue behind it, to go in a batch.
                future: asyncio.Future[CommitResult] = loop.create_future()
                self._pending.append((commit, future))
                return await future
            self._flushing = True
            try:
                return await self._commit_direct(commit)  # nothing in flight: go at once
            finally:
                if self._pending:
                    # Keep a reference: the loop holds tasks only weakly.
                    self._flush_task = loop.create_task(self._flush_pending())
                else:
                    self._flushing = False
        return await self._commit_direct(commit)

    async def _flush_pending(self) -> None:
        """Send queued commits in batches, one batch in flight at a time: commits arriving
        while a batch is on the server form the next one."""
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    await self._commit_batch(batch)
                except BaseException as exc:
                    # Never leave a command waiting forever, whatever went wrong here.
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(StoreError(
                                f"PostgreSQL commit failed unexpectedly: {exc!r}"))
                    raise
        finally:
            self._flushing = False
            for _, future in self._pending:  # the loop stopped early: fail, don't strand
                if not future.done():
                    future.set_exception(StoreError("the commit batcher stopped"))
            self._pending.clear()

    async def _commit_batch(self, batch: list[tuple[Commit, asyncio.Future[CommitResult]]]
                            ) -> None:
        if len(batch) == 1:
            await _settle(batch[0][1], self._commit_direct(batch[0][0]))
            return
        now = self._clock()
        requests = [c.appends[0] for c, _ in batch]
        commands = [c.command for c, _ in batch]
        events = [e for r in requests for e in r.events]
        try:
            pool = await self._get_pool()
            rows = await pool.fetch(
                self._sql_batch,
                [r.stream_id for r in requests],
                [0 if r.expected_version is StreamState.NO_STREAM else r.expected_version
                 for r in requests],
                [len(r.events) for r in requests],
                [c.command_id if c else None for c in commands],
                [c.command_type if c else None for c in commands],
                [c.value if c else None for c in commands],
                [e.event_id for e in events], [e.event_type for e in events],
                [e.schema_version for e in events], [e.data for e in events],
                [e.metadata for e in events], now,
            )
        except _CONNECTION_ERRORS as exc:
            error = StoreError(
                f"PostgreSQL connection failed during commit: {exc}; the commit may or may "
                "not have been applied (check the stream version before retrying)"
            )
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        except Exception:
            # A duplicate event id or a race with another process aborted the whole batch:
            # commit each on its own so that each gets its own outcome.
            for commit, future in batch:
                await _settle(future, self._commit_direct(commit))
            return
        again: list[tuple[Commit, asyncio.Future[CommitResult]]] = []
        for row, (commit, future), request in zip(rows, batch, requests, strict=True):
            if future.done():
                continue
            status = row[1]
            if status == "again":
                again.append((commit, future))
            elif status == "ok":
                future.set_result(CommitResult(
                    (StreamResult(request.stream_id, row[2], row[3], row[4]),)
                ))
            elif status == "conflict":
                future.set_exception(ConcurrencyError(
                    request.stream_id, expected_number(request.expected_version), row[2]
                ))
            else:
                assert commit.command is not None
                future.set_exception(DuplicateCommandError(str(commit.command.command_id)))
        # Later appends to a stream that this batch already wrote go in the next batch.
        self._pending[:0] = again

    async def _commit_direct(self, commit: Commit) -> CommitResult:
        pool = await self._get_pool()
        now = self._clock()
        simple = (len(commit.appends) == 1 and not commit.snapshots and not commit.messages
                  and commit.command is None)
        attempt = 0
        while True:
            try:
                async with pool.acquire() as conn:
                    if simple:
                        # One statement, one implicit transaction, one round trip.
                        result = await self._append(conn, commit.appends[0], now)
                        return CommitResult((result,))
                    async with conn.transaction():
                        return await self._commit_in_transaction(conn, commit, now)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == "invariant_commands_pkey" and commit.command:
                    raise DuplicateCommandError(str(commit.command.command_id)) from exc
                if exc.constraint_name != "invariant_events_stream_version":
                    raise DuplicateEventError(await self._stored_ids(commit)) from exc
                # A concurrent append took the version between our check and our insert.
                racing = _racing_request(commit, exc)
                if racing is not None and racing.expected_version is StreamState.ANY \
                        and attempt < _ANY_RETRIES:
                    attempt += 1
                    continue
                stream = racing.stream_id if racing is not None else "?"
                actual = await self.stream_version(stream) if racing is not None else -1
                expected = expected_number(racing.expected_version) if racing is not None else None
                raise ConcurrencyError(stream, expected, actual) from exc
            except asyncpg.PostgresError as exc:
                if exc.sqlstate == _WRONG_VERSION:
                    raise _wrong_version(commit, exc) from exc
                if not str(exc.sqlstate).startswith(("08", "57")):
                    raise StoreError(f"PostgreSQL refused the commit: {exc}") from exc
                raise StoreError(
                    f"PostgreSQL connection failed during commit: {exc}; the commit may or may "
                    "not have been applied (check the stream version before retrying)"
                ) from exc
            except _CONNECTION_ERRORS as exc:
                raise StoreError(
                    f"PostgreSQL connection failed during commit: {exc}; the commit may or may "
                    "not have been applied (check the stream version before retrying)"
                ) from exc

    async def _append(self, conn: _Conn, request: AppendRequest, now: datetime
                      ) -> StreamResult:
        exp = request.expected_version
        expected = -1 if exp is StreamState.ANY else 0 if exp is StreamState.NO_STREAM else exp
        events = request.events
        if expected >= 0 and len(events) == 1:
            e = events[0]
            row = await conn.fetchrow(
                self._sql_append_one, request.stream_id, expected, e.event_id, e.event_type,
                e.schema_version, e.data, e.metadata, now,
            )
            assert row is not None
            if row[1] is None:
                raise ConcurrencyError(request.stream_id, expected_number(exp), row[0])
            return StreamResult(request.stream_id, expected + 1, row[1], row[1])
        row = await conn.fetchrow(
            self._sql_append, request.stream_id, expected,
            [e.event_id for e in events], [e.event_type for e in events],
            [e.schema_version for e in events], [e.data for e in events],
            [e.metadata for e in events], now,
        )
        assert row is not None
        return StreamResult(request.stream_id, row[0], row[1], row[2])

    async def _commit_in_transaction(self, conn: _Conn, commit: Commit,
                                     now: datetime) -> CommitResult:
        s = self.schema
        anys = sorted(
            {r.stream_id for r in commit.appends if r.expected_version is StreamState.ANY}
        )
        if len(commit.appends) > 1:
            # Take the per-stream locks of "any" appends up front, in one global order, so
            # that two multi-stream commits cannot deadlock on them.
            for stream in anys:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, $2))", stream,
                    self._lock_key,
                )
        results = [await self._append(conn, r, now) for r in commit.appends]
        if commit.snapshots:
            await conn.executemany(
                f"INSERT INTO {s}.invariant_snapshots (stream_id, aggregate_type, version,"
                " schema_version, state, recorded_at) VALUES ($1, $2, $3, $4, $5, $6)"
                " ON CONFLICT (stream_id) DO UPDATE SET aggregate_type = excluded.aggregate_type,"
                " version = excluded.version, schema_version = excluded.schema_version,"
                " state = excluded.state, recorded_at = excluded.recorded_at",
                [(x.stream_id, x.aggregate_type, x.version, x.schema_version, x.state, now)
                 for x in commit.snapshots],
            )
        if commit.messages:
            await conn.executemany(
                f"INSERT INTO {s}.invariant_outbox (message_id, stream_id, message_type,"
                " schema_version, data, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [(m.message_id, m.stream_id, m.message_type, m.schema_version, m.data,
                  m.metadata, now) for m in commit.messages],
            )
        result = CommitResult(tuple(results))
        if commit.command is not None:
            c = commit.command
            await conn.execute(
                f"INSERT INTO {s}.invariant_commands (command_id, command_type, value, position,"
                " versions, recorded_at) VALUES ($1, $2, $3, $4, $5, $6)",
                c.command_id, c.command_type, c.value, result.position, result.versions, now,
            )
        return result

    async def _stored_ids(self, commit: Commit) -> list[str]:
        ids = [e.event_id for r in commit.appends for e in r.events]
        rows = await self._fetch(
            f"SELECT event_id FROM {self.schema}.invariant_events WHERE event_id = ANY($1)", ids
        )
        return [str(r[0]) for r in rows] or ["(unknown)"]

    # -- reading ---------------------------------------------------------------------------

    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        recorded_from: datetime | None = None,
        recorded_until: datetime | None = None,
    ) -> list[RecordedEvent]:
        rows = await self._fetch(
            f"SELECT {_EVENT_COLUMNS} FROM {self.schema}.invariant_events"
            " WHERE stream_id = $1 AND version >= $2 AND ($3::bigint IS NULL OR version <= $3)"
            " AND ($4::timestamptz IS NULL OR recorded_at >= $4)"
            " AND ($5::timestamptz IS NULL OR recorded_at <= $5)"
            f" ORDER BY version {'DESC' if backwards else 'ASC'} LIMIT $6",
            stream_id, max(from_version, 1), to_version, recorded_from, recorded_until, limit,
        )
        return [_row_to_event(r) for r in rows]

    async def read_stream_data(
        self, stream_id: str, *, after_version: int = 0, to_version: int | None = None
    ) -> list[tuple[str, int, dict[str, Any] | str | bytes]]:
        rows = await self._fetch(self._sql_stream_data, stream_id, after_version, to_version)
        return [(r[0], r[1], r[2]) for r in rows]

    async def head_position(self) -> int:
        pool = await self._get_pool()
        try:
            head = await pool.fetchval(f"SELECT {self.schema}.invariant_safe_head()")
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"PostgreSQL read failed: {exc}") from exc
        self._safe_head = max(self._safe_head, int(head))
        return self._safe_head

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
        except _DRIVER_ERRORS:
            recheck = 1.0  # not listening: re-read the head more often until we are again
        await wait_for_head(self.head_position, self._listener.signal, after_position,
                            timeout, recheck)

    async def read_all(
        self,
        *,
        after_position: int = 0,
        limit: int = 1000,
        event_types: Sequence[str] | None = None,
        category: str | None = None,
    ) -> list[RecordedEvent]:
        types = list(event_types) if event_types is not None else None
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM {self.schema}.invariant_events"
            " WHERE position > $1 AND position <= $2"
            " AND ($3::text[] IS NULL OR event_type = ANY($3))"
            " AND ($4::text IS NULL OR category = $4)"
            " ORDER BY position LIMIT $5"
        )
        rows = await self._up_to_safe_head(
            after_position, limit,
            lambda after, head, n: self._fetch(sql, after, head, types, category, n),
        )
        return [_row_to_event(r) for r in rows]

    async def read_log(
        self, *, after_position: int = 0, limit: int = 1000,
        event_types: Sequence[str] | None = None,
    ) -> list[LogRow]:
        types = list(event_types) if event_types is not None else None
        # asyncpg records index like tuples; data comes as JSON text, parsed by the caller.
        rows: list[Any] = await self._up_to_safe_head(
            after_position, limit,
            lambda after, head, n: self._fetch(self._sql_read_log, after, head, types, n),
        )
        return rows

    async def _up_to_safe_head(
        self, after_position: int, limit: int,
        fetch: Callable[[int, int, int], Awaitable[list[asyncpg.Record]]],
    ) -> list[asyncpg.Record]:
        """Rows after ``after_position`` up to the safe head, at most ``limit``.

        A full page needs no fresh head (there is more to read anyway); a short one ending
        at a head read earlier is continued up to the head as it is now, so that a reader
        sees what was committed before it asked (its own commits, say)."""
        if limit <= 0:
            return []
        head = self._safe_head
        fresh = after_position >= head
        if fresh:
            head = await self.head_position()
            if after_position >= head:
                return []
        rows = await fetch(after_position, head, limit)
        if len(rows) < limit and not fresh:
            # Every event up to ``head`` is in ``rows``: go on from there.
            newer = await self.head_position()
            if newer > head:
                rows = [*rows, *await fetch(head, newer, limit - len(rows))]
        return rows

    async def stream_version(self, stream_id: str) -> int:
        rows = await self._fetch(self._sql_version, stream_id)
        return int(rows[0][0])

    async def read_snapshot(self, stream_id: str) -> SnapshotRecord | None:
        rows = await self._fetch(
            f"SELECT aggregate_type, version, schema_version, state, recorded_at"
            f" FROM {self.schema}.invariant_snapshots WHERE stream_id = $1",
            stream_id,
        )
        if not rows:
            return None
        r = rows[0]
        return SnapshotRecord(stream_id, r[0], r[1], r[2], r[3], r[4])

    async def read_command(self, command_id: UUID) -> StoredCommand | None:
        rows = await self._fetch(
            f"SELECT command_type, value, position, versions, recorded_at"
            f" FROM {self.schema}.invariant_commands WHERE command_id = $1",
            command_id,
        )
        if not rows:
            return None
        r = rows[0]
        return StoredCommand(command_id, r[0], r[1], r[2], r[3], r[4])

    async def read_outbox(self, *, limit: int = 100) -> list[OutboxRecord]:
        s = self.schema
        rows = await self._fetch(
            "SELECT o.id, o.message_id, o.stream_id, o.message_type, o.schema_version,"
            " o.position, coalesce(o.data, e.data), coalesce(o.metadata, e.metadata),"
            f" o.created_at FROM {s}.invariant_outbox o"
            f" LEFT JOIN {s}.invariant_events e ON e.position = o.position"
            " WHERE o.published_at IS NULL ORDER BY o.id LIMIT $1",
            limit,
        )
        return [OutboxRecord(*r) for r in rows]

    async def mark_published(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        pool = await self._get_pool()
        try:
            await pool.execute(
                f"UPDATE {self.schema}.invariant_outbox SET published_at = $2"
                " WHERE id = ANY($1)",
                list(ids), self._clock(),
            )
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"PostgreSQL write failed: {exc}") from exc


def _batchable(commit: Commit) -> bool:
    """Single-stream appends with an exact expectation can share a batch transaction."""
    return (len(commit.appends) == 1 and not commit.snapshots and not commit.messages
            and commit.appends[0].expected_version is not StreamState.ANY)


async def _settle(future: asyncio.Future[CommitResult], work: Awaitable[CommitResult]) -> None:
    try:
        result = await work
    except Exception as exc:
        if not future.done():
            future.set_exception(exc)
    else:
        if not future.done():
            future.set_result(result)


def _racing_request(commit: Commit, exc: asyncpg.UniqueViolationError) -> AppendRequest | None:
    detail = getattr(exc, "detail", "") or ""
    for request in commit.appends:
        if f"({request.stream_id}," in detail:
            return request
    return commit.appends[0] if len(commit.appends) == 1 else None


def _wrong_version(commit: Commit, exc: asyncpg.PostgresError) -> InvariantError:
    actual = int(getattr(exc, "detail", "-1") or -1)
    # The function raises for the first mismatching append; find it by its actual version.
    for request in commit.appends:
        exp = request.expected_version
        want = 0 if exp is StreamState.NO_STREAM else exp
        if exp is not StreamState.ANY and want != actual:
            return ConcurrencyError(request.stream_id, expected_number(exp), actual)
    return StoreError(f"unexpected version error: {exc}")


__all__ = ["PostgresStorage", "lock_key_for"]
