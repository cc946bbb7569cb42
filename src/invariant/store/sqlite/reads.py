"""Reading the SQLite event store: on the calling thread (SQLite reads take microseconds,
less than a thread hop), one connection per thread, in bounded keyset pages that yield to
the event loop between pages.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from invariant.clock import from_micros, to_micros
from invariant.domain.errors import StoreError
from invariant.sql import outbox
from invariant.store.ids import uuid_from_bytes
from invariant.store.port import snapshot_tail_in_turn
from invariant.store.records import (
    LogRow,
    OutboxRecord,
    RecordedEvent,
    SnapshotRecord,
    SnapshotTail,
    StoredCommand,
    TypeLogRow,
)
from invariant.store.sqlite.schema import EMPTY_JSON

EVENT_COLUMNS = (
    "event_id, stream_id, version, position, event_type, schema_version, data, metadata,"
    " recorded_at"
)
_READ_LOG = (
    "SELECT position, stream_id, event_type, schema_version, data FROM invariant_events"
    " WHERE position > ? ORDER BY position LIMIT ?"
)
_READ_TYPE_LOG = (
    "SELECT position, stream_id, schema_version, data FROM invariant_events"
    " WHERE position > ? AND event_type = ? ORDER BY position LIMIT ?"
)
_READ_STREAM_DATA = (
    "SELECT event_type, schema_version, data FROM invariant_events"
    " WHERE stream_id = ? AND version > ? ORDER BY version LIMIT ?"
)
_READ_STREAM_DATA_TO = (
    "SELECT event_type, schema_version, data FROM invariant_events"
    " WHERE stream_id = ? AND version > ? AND version <= ? ORDER BY version LIMIT ?"
)
_READ_SNAPSHOT = (
    "SELECT aggregate_type, version, schema_version, state, recorded_at"
    " FROM invariant_snapshots WHERE stream_id = ?"
)
_READ_OUTBOX = outbox.select_pending() + " LIMIT ?"
_PAGE = 5000


def row_to_event(row: tuple[Any, ...]) -> RecordedEvent:
    meta = row[7]
    return RecordedEvent(
        uuid_from_bytes(row[0]), row[1], row[2], row[3], row[4], row[5], orjson.loads(row[6]),
        {} if meta == EMPTY_JSON else orjson.loads(meta), from_micros(row[8]),
    )


class SQLiteReads:
    """The reading side of :class:`~invariant.store.sqlite.SQLiteStorage`."""

    _local: threading.local
    """This thread's reading connection, as ``conn`` (set up by the storage)."""
    _connect: Callable[[], sqlite3.Connection]
    """Opens a connection (the storage's)."""

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
                f"SELECT {EVENT_COLUMNS} FROM invariant_events WHERE "
                + " AND ".join(where + bounds)
                + f" ORDER BY version {'DESC' if backwards else 'ASC'} LIMIT ?"
            )
            rows = self._query(sql, [*params, *bparams, page])
            out.extend(row_to_event(r) for r in rows)
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
            f"SELECT {EVENT_COLUMNS} FROM invariant_events WHERE {' AND '.join(where)}"
            " ORDER BY position LIMIT ?",
            [*params, limit],
        )
        return [row_to_event(r) for r in rows]

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

    async def read_type_log(
        self, event_type: str, *, after_position: int = 0, limit: int = 1000,
    ) -> list[TypeLogRow]:
        return self._query(_READ_TYPE_LOG, (after_position, event_type, limit))

    async def head_position(self) -> int:
        row = self._query("SELECT coalesce(max(position), 0) FROM invariant_events")
        return int(row[0][0])

    async def stream_version(self, stream_id: str) -> int:
        row = self._query(
            "SELECT coalesce(max(version), 0) FROM invariant_events WHERE stream_id = ?",
            (stream_id,),
        )
        return int(row[0][0])

    async def read_snapshot(self, stream_id: str) -> SnapshotRecord | None:
        rows = self._query(_READ_SNAPSHOT, (stream_id,))
        if not rows:
            return None
        r = rows[0]
        return SnapshotRecord(stream_id, r[0], r[1], r[2], orjson.loads(r[3]), from_micros(r[4]))

    async def read_snapshot_tail(self, stream_id: str) -> SnapshotTail:
        return await snapshot_tail_in_turn(self, stream_id)  # type: ignore[arg-type]

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
        rows = self._query(_READ_OUTBOX, (limit,))
        return [
            OutboxRecord(r[0], UUID(bytes=r[1]), r[2], r[3], r[4], r[5], orjson.loads(r[6]),
                         orjson.loads(r[7]), from_micros(r[8]))
            for r in rows
        ]
