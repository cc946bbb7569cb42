"""A commit as the SQLite writer runs it: serialized on the caller's thread, checked (expected
versions, a repeated command) before anything is written, then inserted; and the writer's
unit of work, a :class:`Job`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson

from invariant.domain.errors import (
    ConcurrencyError,
    DuplicateCommandError,
    DuplicateEventError,
    InvariantError,
    StoreError,
)
from invariant.sql import outbox
from invariant.store.records import (
    AppendRequest,
    Commit,
    CommitResult,
    StreamResult,
    StreamState,
    category_of,
    check_expected,
    expected_number,
)
from invariant.store.sqlite.schema import EMPTY_JSON

# The statements of a commit. INSERT_EVENT and INSERT_CHECKED (which inserts nothing when
# the stream is not at the expected version) also serve the batch insert.
INSERT_EVENT = (
    "INSERT INTO invariant_events (event_id, stream_id, category, version, event_type,"
    " schema_version, data, metadata, recorded_at) VALUES (?,?,?,?,?,?,?,?,?)"
)
_INSERT_ONE = INSERT_EVENT + " RETURNING position"
INSERT_CHECKED = (
    "INSERT INTO invariant_events (event_id, stream_id, category, version, event_type,"
    " schema_version, data, metadata, recorded_at) SELECT ?,?,?,?,?,?,?,?,?"
    " WHERE (SELECT coalesce(max(version), 0) FROM invariant_events WHERE stream_id = ?) = ?"
)
_INSERT_OUTBOX_MESSAGE = outbox.insert_messages("", ["?"] * len(outbox.MESSAGE_COLUMNS))
_UPSERT_SNAPSHOT = (
    "INSERT OR REPLACE INTO invariant_snapshots (stream_id, aggregate_type, version,"
    " schema_version, state, recorded_at) VALUES (?,?,?,?,?,?)"
)
_MAX_VERSION = "SELECT max(version) FROM invariant_events WHERE stream_id = ?"


def dumps(value: Any) -> str:
    """JSON text, as the tables store it."""
    return orjson.dumps(value).decode()


class Refused(Exception):
    """A job refused itself before writing anything (safe to commit the rest of a batch)."""

    def __init__(self, error: InvariantError) -> None:
        super().__init__(str(error))
        self.error = error


class PreparedCommit:
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
                            e.event_type, e.schema_version, dumps(e.data),
                            dumps(e.metadata) if e.metadata else EMPTY_JSON, now,
                            sid, expected)
                return
        self.appends = [
            (request, [(e.event_id.bytes, e.event_type, e.schema_version, dumps(e.data),
                        dumps(e.metadata) if e.metadata else EMPTY_JSON)
                       for e in request.events])
            for request in commit.appends
        ]
        self.snapshots = [
            (s.stream_id, s.aggregate_type, s.version, s.schema_version, dumps(s.state), now)
            for s in commit.snapshots
        ]
        self.messages = [
            (m.message_id.bytes, m.stream_id, m.message_type, m.schema_version, dumps(m.data),
             dumps(m.metadata), now)
            for m in commit.messages
        ]
        self.command = commit.command
        self.command_value = dumps(commit.command.value) if commit.command else ""

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
            cursor = conn.execute(INSERT_CHECKED, row)
        except sqlite3.IntegrityError as exc:
            raise _integrity(conn, exc, [row]) from exc
        if cursor.rowcount == 0:
            actual = conn.execute(_MAX_VERSION, (row[1],)).fetchone()[0] or 0
            raise Refused(self.conflict(actual))
        # The event's rowid (the outbox row the trigger inserts does not change it).
        return self.result_at(cursor.lastrowid)  # type: ignore[arg-type]

    def _work_general(self, conn: sqlite3.Connection) -> CommitResult:
        try:
            starts = self._check(conn)
        except (ConcurrencyError, DuplicateCommandError) as exc:
            raise Refused(exc) from exc
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
                 result.position, dumps(result.versions), self.now),
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
                    INSERT_EVENT,
                    [(r[0], sid, cat, actual + i, r[1], r[2], r[3], r[4], now)
                     for i, r in enumerate(rows, 1)],
                )
                last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        except sqlite3.IntegrityError as exc:
            raise _integrity(conn, exc, rows) from exc
        return StreamResult(sid, actual + len(rows), last - len(rows) + 1, last)


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


@dataclass(slots=True)
class Job:
    """What the writer runs: ``work`` in a transaction; its caller awaits ``future``."""

    work: Callable[[sqlite3.Connection], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    commit: PreparedCommit | None = None  # set when the job is a commit
    result: Any = None
    error: BaseException | None = field(default=None)
