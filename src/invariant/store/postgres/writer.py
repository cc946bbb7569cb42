"""Writing to PostgreSQL: group commit. An append goes at once as one statement when no
commit is in flight; appends arriving meanwhile go to the server together, as one call of a
set-based function, each checked and refused on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from invariant.clock import Clock
from invariant.domain.errors import (
    ConcurrencyError,
    DuplicateCommandError,
    DuplicateEventError,
    InvariantError,
    StoreError,
)
from invariant.sql import outbox
from invariant.store.postgres.connection import CONNECTION_ERRORS, Conn
from invariant.store.postgres.listen import notify_channel
from invariant.store.postgres.schema import WRONG_VERSION
from invariant.store.records import (
    AppendRequest,
    Commit,
    CommitResult,
    StreamResult,
    StreamState,
    expected_number,
    validate_append,
)

_ANY_RETRIES = 10


class AppendStatements(NamedTuple):
    """The statements of the writer on one schema."""

    append: str
    """Any append (the plpgsql function)."""
    append_one: str
    """One event, an exact expectation."""
    batch: str
    """A batch of single-stream appends, each checked alone (group commit)."""
    commit_one: str
    """A whole commit of one append with an exact expectation, its messages and command."""
    commit_many: str
    """A whole commit of appends to several streams, its messages and command."""


def append_statements(s: str, lock_key: int) -> AppendStatements:
    """The statements of an append to schema ``s`` (see :class:`AppendStatements` and
    :func:`_one_statement`)."""
    sql_append = f"SELECT * FROM {s}.invariant_append($1, $2, $3, $4, $5, $6, $7, $8)"
    # The version of stream $1, read under the appends' shared lock. The lock is taken
    # first by data dependency: an INSERT that reads `cur`, which reads `locked`, draws no
    # position before the lock is held.
    one_stream = f"""
            WITH locked AS (SELECT pg_advisory_xact_lock_shared({lock_key}) AS held),
            cur AS (
                SELECT coalesce((SELECT max(version) FROM {s}.invariant_events
                                  WHERE stream_id = $1), 0) AS v
                  FROM locked
            )"""
    # One event, an exact expectation: a plain statement (cheaper than the plpgsql call).
    sql_append_one = f"""{one_stream}, ins AS (
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
    sql_batch = (
        f"SELECT * FROM {s}.invariant_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        " $10, $11, $12)"
    )
    # A whole commit (:func:`_one_statement`): nothing is written unless every expectation
    # holds. The outbox rows of the events, then of the messages, go in one INSERT in that
    # order: two INSERTs into one table in one statement run in no defined order, and the
    # relay publishes a stream's rows in the order of their ids. A duplicate event or command
    # id fails the whole statement, as it fails a transaction. One append has a statement of
    # its own: PostgreSQL plans it once for every set of values (a generic plan), where the
    # statement for several streams is planned again at each call (half a millisecond).
    sql_commit_one = f"""{one_stream}, ins AS (
                INSERT INTO {s}.invariant_events (event_id, stream_id, category, version,
                    event_type, schema_version, data, metadata, recorded_at)
                SELECT u.id, $1, split_part($1, '-', 1), cur.v + u.ord, u.t, u.sv, u.d, u.m, $8
                  FROM cur, unnest($3::uuid[], $4::text[], $5::integer[], $6::jsonb[],
                                   $7::jsonb[]) WITH ORDINALITY AS u(id, t, sv, d, m, ord)
                 WHERE cur.v = $2
                 ORDER BY u.ord
                RETURNING position, event_id, event_type, schema_version
            ), outbox AS (
                INSERT INTO {s}.invariant_outbox (message_id, stream_id, message_type,
                    schema_version, position, data, metadata, created_at)
                SELECT r.id, r.stream, r.t, r.sv, r.position, r.d, r.m, $8
                  FROM (SELECT ins.event_id AS id, $1 AS stream, ins.event_type AS t,
                               ins.schema_version AS sv, ins.position, NULL::jsonb AS d,
                               NULL::jsonb AS m, 0 AS part, ins.position AS ord
                          FROM ins
                        UNION ALL
                        SELECT u.id, u.stream, u.t, u.sv, NULL, u.d, u.m, 1, u.ord
                          FROM cur, unnest($9::uuid[], $10::text[], $11::text[],
                                           $12::integer[], $13::jsonb[], $14::jsonb[])
                               WITH ORDINALITY AS u(id, stream, t, sv, d, m, ord)
                         WHERE cur.v = $2) AS r
                 ORDER BY r.part, r.ord
            ), spans AS (
                SELECT min(ins.position) AS first_p, max(ins.position) AS last_p FROM ins
            ), command AS (
                INSERT INTO {s}.invariant_commands (command_id, command_type, value,
                    position, versions, recorded_at)
                SELECT $15::uuid, $16::text, $17::jsonb, spans.last_p,
                       jsonb_build_object($1::text, cur.v + cardinality($3::uuid[])), $8
                  FROM cur, spans
                 WHERE $15::uuid IS NOT NULL AND cur.v = $2
            ), notified AS (
                SELECT pg_notify('{notify_channel(s)}', '') FROM spans
                 WHERE spans.last_p IS NOT NULL
            )
            SELECT cur.v, spans.first_p, spans.last_p, (SELECT count(*) FROM notified)
              FROM cur, spans"""
    sql_commit_many = f"""
            WITH locked AS (SELECT pg_advisory_xact_lock_shared({lock_key}) AS held),
            a AS (
                SELECT u.stream, u.expected, u.n, u.i,
                       coalesce(sum(u.n) OVER (ORDER BY u.i ROWS BETWEEN UNBOUNDED PRECEDING
                                               AND 1 PRECEDING), 0)::integer AS offs
                  FROM unnest($1::text[], $2::bigint[], $3::integer[])
                       WITH ORDINALITY AS u(stream, expected, n, i)
            ), cur AS (
                SELECT a.*, coalesce((SELECT max(e.version) FROM {s}.invariant_events e
                                       WHERE e.stream_id = a.stream), 0) AS v
                  FROM a, locked
            ), ok AS (
                SELECT bool_and(cur.v = cur.expected) AS good FROM cur
            ), ins AS (
                INSERT INTO {s}.invariant_events (event_id, stream_id, category, version,
                    event_type, schema_version, data, metadata, recorded_at)
                SELECT ($4::uuid[])[cur.offs + k], cur.stream, split_part(cur.stream, '-', 1),
                       cur.v + k, ($5::text[])[cur.offs + k], ($6::integer[])[cur.offs + k],
                       ($7::jsonb[])[cur.offs + k], ($8::jsonb[])[cur.offs + k], $9
                  FROM cur, ok, generate_series(1, cur.n) AS k
                 WHERE ok.good
                 ORDER BY cur.i, k
                RETURNING position, event_id, stream_id, event_type, schema_version
            ), outbox AS (
                INSERT INTO {s}.invariant_outbox (message_id, stream_id, message_type,
                    schema_version, position, data, metadata, created_at)
                SELECT r.id, r.stream, r.t, r.sv, r.position, r.d, r.m, $9
                  FROM (SELECT ins.event_id AS id, ins.stream_id AS stream,
                               ins.event_type AS t, ins.schema_version AS sv, ins.position,
                               NULL::jsonb AS d, NULL::jsonb AS m, 0 AS part,
                               ins.position AS ord
                          FROM ins
                        UNION ALL
                        SELECT u.id, u.stream, u.t, u.sv, NULL, u.d, u.m, 1, u.ord
                          FROM ok, unnest($10::uuid[], $11::text[], $12::text[],
                                          $13::integer[], $14::jsonb[], $15::jsonb[])
                               WITH ORDINALITY AS u(id, stream, t, sv, d, m, ord)
                         WHERE ok.good) AS r
                 ORDER BY r.part, r.ord
            ), spans AS (
                SELECT ins.stream_id, min(ins.position) AS first_p, max(ins.position) AS last_p
                  FROM ins GROUP BY ins.stream_id
            ), command AS (
                INSERT INTO {s}.invariant_commands (command_id, command_type, value,
                    position, versions, recorded_at)
                SELECT $16::uuid, $17::text, $18::jsonb, (SELECT max(last_p) FROM spans),
                       (SELECT jsonb_object_agg(cur.stream, cur.v + cur.n) FROM cur), $9
                  FROM ok
                 WHERE ok.good AND $16::uuid IS NOT NULL
            ), notified AS (
                SELECT pg_notify('{notify_channel(s)}', '') FROM ok WHERE ok.good
            )
            SELECT cur.v, spans.first_p, spans.last_p, (SELECT count(*) FROM notified)
              FROM cur LEFT JOIN spans ON spans.stream_id = cur.stream
             ORDER BY cur.i"""
    return AppendStatements(sql_append, sql_append_one, sql_batch, sql_commit_one,
                            sql_commit_many)


class PostgresWriter:
    """The writing side of :class:`~invariant.store.postgres.PostgresStorage`."""

    # Set up by the storage:
    schema: str
    _clock: Clock
    _group_commit: bool
    _max_batch: int
    _lock_key: int
    _pending: list[tuple[Commit, asyncio.Future[CommitResult]]]
    """Commits waiting for the batch in flight to return."""
    _flushing: bool
    _flush_task: asyncio.Task[None] | None
    _sql: AppendStatements
    _get_pool: Callable[[], Awaitable[asyncpg.Pool]]
    _fetch: Callable[..., Awaitable[list[asyncpg.Record]]]
    stream_version: Callable[[str], Awaitable[int]]

    async def commit(self, commit: Commit) -> CommitResult:
        for request in commit.appends:
            validate_append(request)
        result = await self._commit(commit)
        outbox.COMMITTED.wake()  # its events' (and messages') outbox rows
        return result

    async def _commit(self, commit: Commit) -> CommitResult:
        if self._group_commit and _batchable(commit):
            loop = asyncio.get_running_loop()
            if self._flushing:
                # A commit is on its way to the server: queue behind it, to go in a batch.
                future: asyncio.Future[CommitResult] = loop.create_future()
                self._pending.append((commit, future))
                return await future
            self._flushing = True
            try:
                return await self._commit_alone(commit)  # nothing in flight: go at once
            finally:
                if self._pending:
                    # Keep a reference: the loop holds tasks only weakly.
                    self._flush_task = loop.create_task(self._flush_pending())
                else:
                    self._flushing = False
        return await self._commit_direct(commit)

    async def _commit_alone(self, commit: Commit) -> CommitResult:
        """A batchable commit sent on its own: one statement either way. With a command
        record, the batch statement (its append and command in one round trip, instead of
        BEGIN, the append, the command's INSERT and COMMIT); without, the plain append."""
        if commit.command is None:
            return await self._commit_direct(commit)
        future: asyncio.Future[CommitResult] = asyncio.get_running_loop().create_future()
        await self._commit_batch([(commit, future)])
        return await future

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
        if len(batch) == 1 and batch[0][0].command is None:
            await _settle(batch[0][1], self._commit_direct(batch[0][0]))
            return
        now = self._clock()
        requests = [c.appends[0] for c, _ in batch]
        commands = [c.command for c, _ in batch]
        events = [e for r in requests for e in r.events]
        try:
            pool = await self._get_pool()
            rows = await pool.fetch(
                self._sql.batch,
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
        except CONNECTION_ERRORS as exc:
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
                    (StreamResult(request.stream_id, row[2], row[3], row[4]),), len(batch)
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
                    if _one_statement(commit):
                        return await self._commit_one_statement(conn, commit, now)
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
                if exc.sqlstate == WRONG_VERSION:
                    raise _wrong_version(commit, exc) from exc
                if not str(exc.sqlstate).startswith(("08", "57")):
                    raise StoreError(f"PostgreSQL refused the commit: {exc}") from exc
                raise StoreError(
                    f"PostgreSQL connection failed during commit: {exc}; the commit may or may "
                    "not have been applied (check the stream version before retrying)"
                ) from exc
            except CONNECTION_ERRORS as exc:
                raise StoreError(
                    f"PostgreSQL connection failed during commit: {exc}; the commit may or may "
                    "not have been applied (check the stream version before retrying)"
                ) from exc

    async def _append(self, conn: Conn, request: AppendRequest, now: datetime
                      ) -> StreamResult:
        exp = request.expected_version
        expected = -1 if exp is StreamState.ANY else 0 if exp is StreamState.NO_STREAM else exp
        events = request.events
        if expected >= 0 and len(events) == 1:
            e = events[0]
            row = await conn.fetchrow(
                self._sql.append_one, request.stream_id, expected, e.event_id, e.event_type,
                e.schema_version, e.data, e.metadata, now,
            )
            assert row is not None
            if row[1] is None:
                raise ConcurrencyError(request.stream_id, expected_number(exp), row[0])
            return StreamResult(request.stream_id, expected + 1, row[1], row[1])
        row = await conn.fetchrow(
            self._sql.append, request.stream_id, expected,
            [e.event_id for e in events], [e.event_type for e in events],
            [e.schema_version for e in events], [e.data for e in events],
            [e.metadata for e in events], now,
        )
        assert row is not None
        return StreamResult(request.stream_id, row[0], row[1], row[2])

    async def _commit_one_statement(self, conn: Conn, commit: Commit, now: datetime
                                    ) -> CommitResult:
        """A commit of appends with exact expectations to distinct streams, with its
        messages and its command record, in one statement: one round trip instead of BEGIN,
        an append per stream, the messages' and the command's INSERTs, and COMMIT."""
        appends, messages, c = commit.appends, commit.messages, commit.command
        expected = [r.expected_version if isinstance(r.expected_version, int) else 0
                    for r in appends]  # NO_STREAM is 0 (ANY takes the other path)
        events = [e for r in appends for e in r.events]
        if len(appends) == 1:
            head: tuple[Any, ...] = (self._sql.commit_one, appends[0].stream_id, expected[0])
        else:
            head = (self._sql.commit_many, [r.stream_id for r in appends], expected,
                    [len(r.events) for r in appends])
        rows = await conn.fetch(
            *head,
            [e.event_id for e in events], [e.event_type for e in events],
            [e.schema_version for e in events], [e.data for e in events],
            [e.metadata for e in events], now,
            [m.message_id for m in messages], [m.stream_id for m in messages],
            [m.message_type for m in messages], [m.schema_version for m in messages],
            [m.data for m in messages], [m.metadata for m in messages],
            None if c is None else c.command_id, None if c is None else c.command_type,
            None if c is None else c.value,
        )
        for request, wanted, row in zip(appends, expected, rows, strict=True):
            if row[0] != wanted:
                raise ConcurrencyError(request.stream_id,
                                       expected_number(request.expected_version), row[0])
        return CommitResult(tuple(
            StreamResult(r.stream_id, wanted + len(r.events), row[1], row[2])
            for r, wanted, row in zip(appends, expected, rows, strict=True)))

    async def _commit_in_transaction(self, conn: Conn, commit: Commit,
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
                outbox.insert_messages(f"{s}.", [f"${i}" for i in range(1, 8)]),
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


def _one_statement(commit: Commit) -> bool:
    """A commit :meth:`PostgresWriter._commit_one_statement` writes: appends (of at least
    one event each) with exact expectations to distinct streams, their messages and
    command, no snapshot."""
    appends = commit.appends
    return (bool(appends) and not commit.snapshots
            and all(r.events and r.expected_version is not StreamState.ANY for r in appends)
            and len({r.stream_id for r in appends}) == len(appends))


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
