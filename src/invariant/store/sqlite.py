"""SQLite event storage: the embedded default.

* Durable by default: WAL journal with ``synchronous=FULL``.
* Writes are **group-committed**: the commits that reach the writer during one turn of the
  event loop are written in one transaction, so many concurrent commands share one fsync.
  Each commit checks its expected versions before it writes, so one refused commit never
  affects the others; the common one-event commits of a batch are inserted with a single
  ``executemany``.
* Reads run on the calling thread (SQLite reads take microseconds, less than a thread hop),
  in bounded keyset pages that yield to the event loop between pages.
* Positions come from SQLite's single-writer lock, so commit order is position order and a
  follower never skips an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from invariant.domain.errors import (
    ConcurrencyError,
    ConfigurationError,
    DuplicateCommandError,
    DuplicateEventError,
    InvariantError,
    StoreError,
)
from invariant.store.clock import Clock, from_micros, micros_of, to_micros, utc_now
from invariant.store.files import private_file
from invariant.store.ids import uuid_from_bytes
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
    category_of,
    check_expected,
    expected_number,
    validate_append,
)
from invariant.store.signal import CommitSignal, wait_for_head

# The outbox table, shared with the state-stored repository (invariant.state.outbox).
OUTBOX_DDL = (
    """CREATE TABLE IF NOT EXISTS invariant_outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id      BLOB    NOT NULL,
        stream_id       TEXT    NOT NULL,
        message_type    TEXT    NOT NULL,
        schema_version  INTEGER NOT NULL,
        position        INTEGER,
        data            TEXT,
        metadata        TEXT,
        created_at      INTEGER NOT NULL,
        published_at    INTEGER
    )""",
)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS invariant_events (
        position        INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id        BLOB    NOT NULL UNIQUE,
        stream_id       TEXT    NOT NULL,
        category        TEXT    NOT NULL,
        version         INTEGER NOT NULL,
        event_type      TEXT    NOT NULL,
        schema_version  INTEGER NOT NULL,
        data            TEXT    NOT NULL,
        metadata        TEXT    NOT NULL,
        recorded_at     INTEGER NOT NULL,
        UNIQUE (stream_id, version)
    )""",
    """CREATE INDEX IF NOT EXISTS invariant_events_category
        ON invariant_events (category, position)""",
    """CREATE TABLE IF NOT EXISTS invariant_snapshots (
        stream_id       TEXT    PRIMARY KEY,
        aggregate_type  TEXT    NOT NULL,
        version         INTEGER NOT NULL,
        schema_version  INTEGER NOT NULL,
        state           TEXT    NOT NULL,
        recorded_at     INTEGER NOT NULL
    )""",
    *OUTBOX_DDL,
    """CREATE TABLE IF NOT EXISTS invariant_commands (
        command_id      BLOB    PRIMARY KEY,
        command_type    TEXT    NOT NULL,
        value           TEXT    NOT NULL,
        position        INTEGER NOT NULL,
        versions        TEXT    NOT NULL,
        recorded_at     INTEGER NOT NULL
    )""",
    # No index on the outbox: published rows are deleted (the event log keeps the history,
    # AUTOINCREMENT never reuses an id), so pending rows are the table in id order. One page
    # fewer to write, and fsync, per commit.
    # Every stored event gets its outbox row from SQLite itself, in the same transaction.
    """CREATE TRIGGER IF NOT EXISTS invariant_events_to_outbox
        AFTER INSERT ON invariant_events
    BEGIN
        INSERT INTO invariant_outbox (message_id, stream_id, message_type, schema_version,
                                      position, created_at)
        VALUES (NEW.event_id, NEW.stream_id, NEW.event_type, NEW.schema_version,
                NEW.position, NEW.recorded_at);
    END""",
)

_INSERT_EVENT = (
    "INSERT INTO invariant_events (event_id, stream_id, category, version, event_type,"
    " schema_version, data, metadata, recorded_at) VALUES (?,?,?,?,?,?,?,?,?)"
)
_INSERT_ONE = _INSERT_EVENT + " RETURNING position"
_INSERT_CHECKED = (
    "INSERT INTO invariant_events (event_id, stream_id, category, version, event_type,"
    " schema_version, data, metadata, recorded_at) SELECT ?,?,?,?,?,?,?,?,?"
    " WHERE (SELECT coalesce(max(version), 0) FROM invariant_events WHERE stream_id = ?) = ?"
)
_INSERT_OUTBOX_MESSAGE = (
    "INSERT INTO invariant_outbox (message_id, stream_id, message_type, schema_version,"
    " data, metadata, created_at) VALUES (?,?,?,?,?,?,?)"
)
_UPSERT_SNAPSHOT = (
    "INSERT OR REPLACE INTO invariant_snapshots (stream_id, aggregate_type, version,"
    " schema_version, state, recorded_at) VALUES (?,?,?,?,?,?)"
)
_EVENT_COLUMNS = (
    "event_id, stream_id, version, position, event_type, schema_version, data, metadata,"
    " recorded_at"
)
_READ_LOG = (
    "SELECT position, stream_id, event_type, schema_version, data FROM invariant_events"
    " WHERE position > ? ORDER BY position LIMIT ?"
)
_READ_STREAM_DATA = (
    "SELECT event_type, schema_version, data FROM invariant_events"
    " WHERE stream_id = ? AND version > ? ORDER BY version LIMIT ?"
)
_READ_STREAM_DATA_TO = (
    "SELECT event_type, schema_version, data FROM invariant_events"
    " WHERE stream_id = ? AND version > ? AND version <= ? ORDER BY version LIMIT ?"
)
_PAGE = 5000
_EMPTY_JSON = "{}"


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _row_to_event(row: tuple[Any, ...]) -> RecordedEvent:
    meta = row[7]
    return RecordedEvent(
        uuid_from_bytes(row[0]), row[1], row[2], row[3], row[4], row[5], orjson.loads(row[6]),
        {} if meta == _EMPTY_JSON else orjson.loads(meta), from_micros(row[8]),
    )


@dataclass(slots=True)
class _Job:
    work: Callable[[sqlite3.Connection], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    commit: _PreparedCommit | None = None  # set when the job is a commit
    result: Any = None
    error: BaseException | None = field(default=None)


def _run_batch(conn: sqlite3.Connection, batch: list[_Job]) -> None:
    """Run every job of ``batch`` in one transaction (one fsync for all of them).

    Jobs check everything that can refuse them (expected versions) before they write, so a
    refused job leaves nothing behind and the others commit as usual. If a job fails while
    writing, or the transaction itself fails, the batch is rolled back and its jobs are run
    again one transaction each, so every job gets its own outcome.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        for job in _insert_singles(conn, batch) if len(batch) > 1 else batch:
            try:
                job.result = job.work(conn)
                job.error = None
            except _Refused as refusal:  # raised before the job wrote anything
                job.error = refusal.error
        conn.execute("COMMIT")
    except Exception:
        _rollback(conn)
        if len(batch) == 1:
            _run_alone(conn, batch[0])
        else:
            for job in batch:
                _run_alone(conn, job)


def _insert_singles(conn: sqlite3.Connection, batch: list[_Job]) -> list[_Job]:
    """Insert the batch's one-event commits with one ``executemany``; the jobs left to run.

    The streams' versions are read in one statement first (SQLite's JSON functions give the
    list of streams as one parameter); a commit whose expectation does not hold is refused
    on the spot, the others are inserted in order, one position after another. Without the
    JSON functions each row checks its own version and the rows inserted count how many
    held. If anything fails (a duplicate event id), the transaction starts over and every
    job runs on its own, to get its own outcome.
    """
    # (job, its commit, the row to insert)
    singles: list[tuple[_Job, _PreparedCommit, tuple[Any, ...]]] = []
    rest: list[_Job] = []
    streams: set[str] = set()
    for job in batch:
        prepared = job.commit
        row = None if prepared is None else prepared.row
        # One row per stream: a second one for the same stream is a conflict in the making
        # (both expected the same version); it runs on its own, after, to be refused there.
        if prepared is None or row is None or row[1] in streams:
            rest.append(job)
            continue
        streams.add(row[1])
        singles.append((job, prepared, row))
    if len(singles) < 2:
        return batch
    if _HAS_JSON:
        # Every stream's version in one statement, then plain inserts for the commits whose
        # expectation held; the others are refused right here.
        versions = dict(conn.execute(_MAX_VERSIONS, (_dumps(list(streams)),)).fetchall())
        held: list[tuple[_Job, _PreparedCommit, tuple[Any, ...]]] = []
        for job, prepared, row in singles:
            actual = versions.get(row[1]) or 0
            if actual == row[10]:
                held.append((job, prepared, row[:9]))
            else:
                job.error = prepared.conflict(actual)
        singles = held
        statement = _INSERT_EVENT
    else:  # each row checks its own version: the rows inserted count how many held
        statement = _INSERT_CHECKED
    rows = [row for _, _, row in singles]
    try:
        inserted = conn.executemany(statement, rows).rowcount
    except sqlite3.IntegrityError:  # a duplicate event id: find whose, one by one
        inserted = -1
    if inserted != len(rows):
        conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        for job in batch:
            job.error = None
        return batch
    position = conn.execute("SELECT last_insert_rowid()").fetchone()[0] - len(rows)
    for job, prepared, _ in singles:
        position += 1
        job.result = prepared.result_at(position)
    return rest


class _Refused(Exception):
    """A job refused itself before writing anything (safe to commit the rest of a batch)."""

    def __init__(self, error: InvariantError) -> None:
        super().__init__(str(error))
        self.error = error


def _run_alone(conn: sqlite3.Connection, job: _Job) -> None:
    try:
        conn.execute("BEGIN IMMEDIATE")
        job.result = job.work(conn)
        job.error = None
        conn.execute("COMMIT")
    except Exception as exc:
        _rollback(conn)
        job.result = None
        job.error = exc.error if isinstance(exc, _Refused) else _translate(exc)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, InvariantError):
        return exc
    if isinstance(exc, sqlite3.Error):
        err = StoreError(f"SQLite failed: {exc}")
        err.__cause__ = exc
        return err
    return exc


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)


class _LoopWriter:
    """Group commit on the event loop thread.

    A commit enqueues its job and schedules one flush with ``call_soon``; every command
    that reaches its commit during the same loop iteration joins that flush, so they share
    one transaction and one fsync, with no thread hop at all. The loop is blocked for the
    duration of that fsync.

    When nothing else is queued on the loop (asyncio's ``_ready`` is empty), no command can
    join a flush scheduled now, so a lone commit is flushed at once and its command goes on
    without waiting for a turn of the loop. At most ``_DIRECT_STREAK`` in a row: then a
    flush is scheduled again, so that a sequential writer still lets I/O and timers run.
    """

    _DIRECT_STREAK = 16

    def __init__(self, conn: sqlite3.Connection, max_batch: int) -> None:
        self._conn = conn
        self._max_batch = max_batch
        self._pending: list[_Job] = []
        self._scheduled = False
        self._direct = 0

    def submit(self, job: _Job) -> None:
        self._pending.append(job)
        if self._scheduled:
            return
        loop = job.loop
        ready = getattr(loop, "_ready", None)  # other loops (uvloop) always schedule
        if type(ready) is deque and not ready and self._direct < self._DIRECT_STREAK:
            self._direct += 1
            try:
                self._flush()
            except Exception as exc:  # the job has its error; report the bug as a flush would
                loop.call_exception_handler({"message": "SQLite commit failed unexpectedly",
                                             "exception": exc})
            return
        self._direct = 0
        self._scheduled = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        batch = self._pending[: self._max_batch]
        del self._pending[: self._max_batch]
        if self._pending:
            batch[0].loop.call_soon(self._flush)
        else:
            self._scheduled = False
        try:
            _run_batch(self._conn, batch)
        except BaseException as exc:  # a bug here must not leave a command waiting forever
            for job in batch:
                if job.error is None and job.result is None:
                    job.error = StoreError(f"SQLite commit failed unexpectedly: {exc!r}")
            raise
        finally:
            _settle(batch)

    def close(self) -> None:
        self._conn.close()


_STOP = object()


class _ThreadWriter(threading.Thread):
    """Group commit on a dedicated thread: the loop never blocks, each batch costs a hop."""

    def __init__(self, conn_factory: Callable[[], sqlite3.Connection], max_batch: int) -> None:
        super().__init__(name="invariant-sqlite-writer", daemon=True)
        self._connect = conn_factory
        self._max_batch = max_batch
        self.jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.start_error: BaseException | None = None

    def submit(self, job: _Job) -> None:
        self.jobs.put(job)

    def run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to the caller
            self.start_error = exc
            self.ready.set()
            return
        self.ready.set()
        try:
            stop = False
            while not stop:
                first = self.jobs.get()
                if first is _STOP:
                    return
                batch: list[_Job] = [first]  # type: ignore[list-item]
                while len(batch) < self._max_batch:
                    try:
                        nxt = self.jobs.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    batch.append(nxt)  # type: ignore[arg-type]
                _run_batch(conn, batch)
                by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
                for job in batch:
                    by_loop.setdefault(job.loop, []).append(job)
                for loop, jobs in by_loop.items():
                    # RuntimeError: that loop closed, so nobody waits for these jobs.
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(_settle, jobs)
        finally:
            conn.close()

    def close(self) -> None:
        self.jobs.put(_STOP)
        self.join()


_MAX_VERSION = "SELECT max(version) FROM invariant_events WHERE stream_id = ?"
_MAX_VERSIONS = (
    "SELECT s.value, (SELECT max(version) FROM invariant_events WHERE stream_id = s.value)"
    " FROM json_each(?) AS s"
)


def _json_available() -> bool:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("SELECT value FROM json_each('[1]')").fetchall()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return True


_HAS_JSON = _json_available()  # built into SQLite since 3.38; optional before


class _PreparedCommit:
    """A commit serialized on the caller's thread; the writer only runs :meth:`work`.

    Everything that can refuse the commit is checked before anything is written, so a
    refused commit leaves nothing behind and needs no savepoint inside a group-commit batch.
    """

    row: tuple[Any, ...] | None = None
    """The INSERT parameters of a one-event commit with an exact expectation (the common
    command); ``None`` for any other commit."""

    def __init__(self, commit: Commit, now: int) -> None:
        self.now = now
        appends = commit.appends
        if (len(appends) == 1 and commit.command is None and not commit.snapshots
                and not commit.messages):
            request = appends[0]
            exp = request.expected_version
            if len(request.events) == 1 and exp is not StreamState.ANY:
                e, sid = request.events[0], request.stream_id
                expected = 0 if isinstance(exp, StreamState) else exp  # NO_STREAM
                self.request = request
                # The insert's values, then the stream and expected version the checked
                # INSERT compares with (no row is inserted when the check fails).
                self.row = (e.event_id.bytes, sid, category_of(sid), expected + 1,
                            e.event_type, e.schema_version, _dumps(e.data),
                            _dumps(e.metadata) if e.metadata else _EMPTY_JSON, now,
                            sid, expected)
                return
        self.appends = [
            (request, [(e.event_id.bytes, e.event_type, e.schema_version, _dumps(e.data),
                        _dumps(e.metadata) if e.metadata else _EMPTY_JSON)
                       for e in request.events])
            for request in commit.appends
        ]
        self.snapshots = [
            (s.stream_id, s.aggregate_type, s.version, s.schema_version, _dumps(s.state), now)
            for s in commit.snapshots
        ]
        self.messages = [
            (m.message_id.bytes, m.stream_id, m.message_type, m.schema_version, _dumps(m.data),
             _dumps(m.metadata), now)
            for m in commit.messages
        ]
        self.command = commit.command
        self.command_value = _dumps(commit.command.value) if commit.command else ""

    @property
    def work(self) -> Callable[[sqlite3.Connection], CommitResult]:
        """The writer's job. Not stored on the instance: a bound method kept by its own
        object is a reference cycle, and the collector then has to free every commit."""
        return self._work_general if self.row is None else self._work_single

    def conflict(self, actual: int) -> ConcurrencyError:
        """The refusal of a one-event commit whose stream is at version ``actual``."""
        row = self.row
        assert row is not None
        return ConcurrencyError(row[1], expected_number(self.request.expected_version), actual)

    def result_at(self, position: int) -> CommitResult:
        """The outcome of a one-event commit whose event got ``position``."""
        row = self.row
        assert row is not None
        return CommitResult((StreamResult(row[1], row[3], position, position),))

    def _work_single(self, conn: sqlite3.Connection) -> CommitResult:
        row = self.row
        assert row is not None
        try:
            cursor = conn.execute(_INSERT_CHECKED, row)
        except sqlite3.IntegrityError as exc:
            raise _integrity(conn, exc, [row]) from exc
        if cursor.rowcount == 0:
            actual = conn.execute(_MAX_VERSION, (row[1],)).fetchone()[0] or 0
            raise _Refused(self.conflict(actual))
        # The event's rowid (the outbox row the trigger inserts does not change it).
        return self.result_at(cursor.lastrowid)  # type: ignore[arg-type]

    def _work_general(self, conn: sqlite3.Connection) -> CommitResult:
        try:
            starts = self._check(conn)
        except (ConcurrencyError, DuplicateCommandError) as exc:
            raise _Refused(exc) from exc
        results = tuple(self._insert(conn, request, rows, actual)
                        for (request, rows), actual in zip(self.appends, starts, strict=True))
        if self.snapshots:
            conn.executemany(_UPSERT_SNAPSHOT, self.snapshots)
        if self.messages:
            conn.executemany(_INSERT_OUTBOX_MESSAGE, self.messages)
        result = CommitResult(results)
        if self.command is not None:
            conn.execute(
                "INSERT INTO invariant_commands (command_id, command_type, value, position,"
                " versions, recorded_at) VALUES (?,?,?,?,?,?)",
                (self.command.command_id.bytes, self.command.command_type, self.command_value,
                 result.position, _dumps(result.versions), self.now),
            )
        return result

    def _check(self, conn: sqlite3.Connection) -> list[int]:
        """The version each append starts from; raises if any expectation fails."""
        command = self.command
        if command is not None and conn.execute(
            "SELECT 1 FROM invariant_commands WHERE command_id = ?", (command.command_id.bytes,)
        ).fetchone():
            raise DuplicateCommandError(str(command.command_id))
        versions: dict[str, int] = {}
        starts: list[int] = []
        for request, _ in self.appends:
            sid = request.stream_id
            actual = versions.get(sid)
            if actual is None:
                actual = conn.execute(_MAX_VERSION, (sid,)).fetchone()[0] or 0
            check_expected(sid, request.expected_version, actual)
            starts.append(actual)
            versions[sid] = actual + len(request.events)
        return starts

    def _insert(self, conn: sqlite3.Connection, request: AppendRequest,
                rows: list[tuple[Any, ...]], actual: int) -> StreamResult:
        sid, cat, now = request.stream_id, category_of(request.stream_id), self.now
        try:
            if len(rows) == 1:
                r = rows[0]
                last = conn.execute(
                    _INSERT_ONE, (r[0], sid, cat, actual + 1, r[1], r[2], r[3], r[4], now)
                ).fetchone()[0]
            else:
                conn.executemany(
                    _INSERT_EVENT,
                    [(r[0], sid, cat, actual + i, r[1], r[2], r[3], r[4], now)
                     for i, r in enumerate(rows, 1)],
                )
                last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        except sqlite3.IntegrityError as exc:
            raise _integrity(conn, exc, rows) from exc
        return StreamResult(sid, actual + len(rows), last - len(rows) + 1, last)


class SQLiteStorage:
    """Event storage in one SQLite file (``":memory:"`` is refused: use MemoryStorage)."""

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock = utc_now,
        synchronous: str = "FULL",
        max_batch: int = 512,
        busy_timeout_ms: int = 10_000,
        commit_in_thread: bool = False,
    ) -> None:
        if str(path) == ":memory:":
            raise ConfigurationError(
                "SQLiteStorage needs a file (readers and the writer share it); "
                "use MemoryStorage for an in-memory store"
            )
        if synchronous.upper() not in ("FULL", "EXTRA", "NORMAL", "OFF"):
            raise ConfigurationError(f"unknown SQLite synchronous mode {synchronous!r}")
        self.path = Path(path)
        self._now = micros_of(clock)
        self._synchronous = synchronous.upper()
        self._max_batch = max_batch
        self._busy_timeout_ms = busy_timeout_ms
        self._commit_in_thread = commit_in_thread
        self._writer: _LoopWriter | _ThreadWriter | None = None
        self._writer_loop: asyncio.AbstractEventLoop | None = None
        self._local = threading.local()
        self._committed = CommitSignal()

    # -- lifecycle -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"could not switch {self.path} to WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    async def setup(self) -> None:
        private_file(self.path)  # 0600 (and 0700 directories) before SQLite creates it

        def create(conn: sqlite3.Connection) -> None:
            for statement in _SCHEMA:
                conn.execute(statement)

        await self._write(create)

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if isinstance(writer, _ThreadWriter):
            await asyncio.get_running_loop().run_in_executor(None, writer.close)
        elif writer is not None:
            writer.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _ensure_writer(self, loop: asyncio.AbstractEventLoop) -> _LoopWriter | _ThreadWriter:
        writer = self._writer
        if writer is None:
            if self._commit_in_thread:
                thread = _ThreadWriter(self._connect, self._max_batch)
                thread.start()
                thread.ready.wait()
                if thread.start_error is not None:
                    raise StoreError(
                        f"cannot open SQLite database {self.path}: {thread.start_error}"
                    ) from thread.start_error
                writer = thread
            else:
                try:
                    writer = _LoopWriter(self._connect(), self._max_batch)
                except sqlite3.Error as exc:
                    raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
            self._writer, self._writer_loop = writer, loop
        elif loop is not self._writer_loop and not self._commit_in_thread:
            raise ConfigurationError(
                "this SQLiteStorage commits on the event loop it was first used on; create one "
                "storage per event loop, or pass commit_in_thread=True"
            )
        return writer

    async def _write(self, work: Callable[[sqlite3.Connection], Any],
                     commit: _PreparedCommit | None = None) -> Any:
        """Run ``work`` in the next group-commit transaction; resolves once it is durable."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._ensure_writer(loop).submit(_Job(work, loop, future, commit))
        return await future

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite read failed: {exc}") from exc

    # -- writing ---------------------------------------------------------------------------

    async def commit(self, commit: Commit) -> CommitResult:
        for request in commit.appends:
            validate_append(request)
        prepared = _PreparedCommit(commit, self._now())
        result: CommitResult = await self._write(prepared.work, prepared)
        self._committed.notify()
        return result

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
        where = ["stream_id = ?"]
        params: list[Any] = [stream_id]
        if recorded_from is not None:
            where.append("recorded_at >= ?")
            params.append(to_micros(recorded_from))
        if recorded_until is not None:
            where.append("recorded_at <= ?")
            params.append(to_micros(recorded_until))
        low, high = max(from_version, 1), to_version
        out: list[RecordedEvent] = []
        while True:
            page = _PAGE if limit is None else min(_PAGE, limit - len(out))
            bounds = ["version >= ?"]
            bparams: list[Any] = [low]
            if high is not None:
                bounds.append("version <= ?")
                bparams.append(high)
            sql = (
                f"SELECT {_EVENT_COLUMNS} FROM invariant_events WHERE "
                + " AND ".join(where + bounds)
                + f" ORDER BY version {'DESC' if backwards else 'ASC'} LIMIT ?"
            )
            rows = self._query(sql, [*params, *bparams, page])
            out.extend(_row_to_event(r) for r in rows)
            if len(rows) < page or (limit is not None and len(out) >= limit):
                return out
            if backwards:
                high = rows[-1][2] - 1
            else:
                low = rows[-1][2] + 1
            await asyncio.sleep(0)

    async def read_stream_data(
        self, stream_id: str, *, after_version: int = 0, to_version: int | None = None
    ) -> list[tuple[str, int, dict[str, Any] | str | bytes]]:
        # Rows carry the JSON text; EventStore.decode_into parses it in its own loop.
        out: list[Any] = []
        low = after_version
        while True:
            if to_version is None:
                rows = self._query(_READ_STREAM_DATA, (stream_id, low, _PAGE))
            else:  # both bounds on the index: an OR on the upper one scans to the stream's end
                rows = self._query(_READ_STREAM_DATA_TO, (stream_id, low, to_version, _PAGE))
            out.extend(rows)
            if len(rows) < _PAGE:
                return out
            low += len(rows)  # versions of a stream are contiguous
            await asyncio.sleep(0)

    async def read_all(
        self,
        *,
        after_position: int = 0,
        limit: int = 1000,
        event_types: Sequence[str] | None = None,
        category: str | None = None,
    ) -> list[RecordedEvent]:
        where = ["position > ?"]
        params: list[Any] = [after_position]
        if category is not None:
            where.append("category = ?")
            params.append(category)
        if event_types is not None:
            if not event_types:
                return []
            where.append(f"event_type IN ({','.join('?' * len(event_types))})")
            params.extend(event_types)
        rows = self._query(
            f"SELECT {_EVENT_COLUMNS} FROM invariant_events WHERE {' AND '.join(where)}"
            " ORDER BY position LIMIT ?",
            [*params, limit],
        )
        return [_row_to_event(r) for r in rows]

    async def read_log(
        self, *, after_position: int = 0, limit: int = 1000,
        event_types: Sequence[str] | None = None,
    ) -> list[LogRow]:
        # The rows as SQLite returns them: no conversion at all, data stays JSON text.
        if event_types is None:
            return self._query(_READ_LOG, (after_position, limit))
        if not event_types:
            return []
        return self._query(
            "SELECT position, stream_id, event_type, schema_version, data FROM invariant_events"
            f" WHERE position > ? AND event_type IN ({','.join('?' * len(event_types))})"
            " ORDER BY position LIMIT ?",
            [after_position, *event_types, limit],
        )

    async def head_position(self) -> int:
        row = self._query("SELECT coalesce(max(position), 0) FROM invariant_events")
        return int(row[0][0])

    # Commits of other processes wake nobody here: they are seen by the periodic re-check.
    commit_recheck_seconds = 2.0

    async def wait_for_commit(self, after_position: int, timeout: float) -> None:  # noqa: ASYNC109
        await wait_for_head(self.head_position, self._committed, after_position, timeout,
                            recheck=self.commit_recheck_seconds)

    async def stream_version(self, stream_id: str) -> int:
        row = self._query(
            "SELECT coalesce(max(version), 0) FROM invariant_events WHERE stream_id = ?",
            (stream_id,),
        )
        return int(row[0][0])

    async def read_snapshot(self, stream_id: str) -> SnapshotRecord | None:
        rows = self._query(
            "SELECT aggregate_type, version, schema_version, state, recorded_at"
            " FROM invariant_snapshots WHERE stream_id = ?",
            (stream_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return SnapshotRecord(stream_id, r[0], r[1], r[2], orjson.loads(r[3]), from_micros(r[4]))

    async def read_command(self, command_id: UUID) -> StoredCommand | None:
        rows = self._query(
            "SELECT command_type, value, position, versions, recorded_at"
            " FROM invariant_commands WHERE command_id = ?",
            (command_id.bytes,),
        )
        if not rows:
            return None
        r = rows[0]
        return StoredCommand(command_id, r[0], orjson.loads(r[1]), r[2], orjson.loads(r[3]),
                             from_micros(r[4]))

    async def read_outbox(self, *, limit: int = 100) -> list[OutboxRecord]:
        rows = self._query(
            "SELECT o.id, o.message_id, o.stream_id, o.message_type, o.schema_version,"
            " o.position, coalesce(o.data, e.data), coalesce(o.metadata, e.metadata),"
            " o.created_at FROM invariant_outbox o"
            " LEFT JOIN invariant_events e ON e.position = o.position"
            " WHERE o.published_at IS NULL ORDER BY o.id LIMIT ?",
            (limit,),
        )
        return [
            OutboxRecord(r[0], UUID(bytes=r[1]), r[2], r[3], r[4], r[5], orjson.loads(r[6]),
                         orjson.loads(r[7]), from_micros(r[8]))
            for r in rows
        ]

    async def mark_published(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        await self._write(
            lambda conn: conn.executemany(
                "DELETE FROM invariant_outbox WHERE id = ?", [(i,) for i in ids]
            )
        )


def _integrity(
    conn: sqlite3.Connection, exc: sqlite3.IntegrityError, rows: list[tuple[Any, ...]]
) -> InvariantError:
    # (command ids are checked before writing; a racing duplicate fails its INSERT and the
    # batch is re-run job by job, where the check then refuses it cleanly)
    if "event_id" in str(exc):
        ids = [r[0] for r in rows]
        found = conn.execute(
            f"SELECT event_id FROM invariant_events WHERE event_id IN ({','.join('?' * len(ids))})",
            ids,
        ).fetchall()
        return DuplicateEventError([str(UUID(bytes=f[0])) for f in found] or ["(unknown)"])
    return StoreError(f"SQLite refused the append: {exc}")
