"""Reading PostgreSQL: the log up to the *safe head* (no commit can still land below it),
streams, snapshots, commands and the outbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from invariant.domain.errors import StoreError
from invariant.sql import outbox
from invariant.store.postgres.connection import DRIVER_ERRORS
from invariant.store.records import (
    LogRow,
    OutboxRecord,
    RecordedEvent,
    SnapshotRecord,
    SnapshotTail,
    StoredCommand,
    TypeLogRow,
)

EVENT_COLUMNS = (
    "event_id, stream_id, version, position, event_type, schema_version, data, metadata,"
    " recorded_at"
)


def read_statements(s: str) -> tuple[str, str, str, str, str]:
    """The statements of reads in schema ``s``: a stream's version, a page of the log, a
    page of one type's log, a stream's data, a stream's snapshot and the data after it."""
    sql_version = (
        f"SELECT coalesce(max(version), 0) FROM {s}.invariant_events WHERE stream_id = $1"
    )
    sql_read_log = (
        "SELECT position, stream_id, event_type, schema_version, data::text"
        f" FROM {s}.invariant_events WHERE position > $1 AND position <= $2"
        " AND ($3::text[] IS NULL OR event_type = ANY($3)) ORDER BY position LIMIT $4"
    )
    sql_read_type_log = (
        "SELECT position, stream_id, schema_version, data::text"
        f" FROM {s}.invariant_events WHERE position > $1 AND position <= $2"
        " AND event_type = $3 ORDER BY position LIMIT $4"
    )
    sql_stream_data = (
        f"SELECT event_type, schema_version, data::text FROM {s}.invariant_events"
        " WHERE stream_id = $1 AND version > $2 AND ($3::bigint IS NULL OR version <= $3)"
        " ORDER BY version"
    )
    # One round trip: the snapshot's row (its event columns null), then the events after
    # its version; the snapshot's row has the lowest version, so it comes first.
    sql_snapshot_tail = (
        "SELECT NULL::text AS event_type, s.schema_version, NULL::text AS data, s.version,"
        " s.aggregate_type, s.state, s.recorded_at"
        f" FROM {s}.invariant_snapshots s WHERE s.stream_id = $1"
        " UNION ALL"
        " SELECT e.event_type, e.schema_version, e.data::text, e.version, NULL, NULL, NULL"
        f" FROM {s}.invariant_events e WHERE e.stream_id = $1 AND e.version > coalesce("
        f"(SELECT version FROM {s}.invariant_snapshots WHERE stream_id = $1), 0)"
        " ORDER BY 4"
    )
    return sql_version, sql_read_log, sql_read_type_log, sql_stream_data, sql_snapshot_tail


def row_to_event(r: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])


class PostgresReads:
    """The reading side of :class:`~invariant.store.postgres.PostgresStorage`."""

    # Set up by the storage:
    schema: str
    _safe_head: int
    """The highest safe head seen (it never goes back)."""
    _sql_version: str
    _sql_read_log: str
    _sql_read_type_log: str
    _sql_stream_data: str
    _sql_snapshot_tail: str
    _get_pool: Callable[[], Awaitable[asyncpg.Pool]]
    _fetch: Callable[..., Awaitable[list[asyncpg.Record]]]

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
            f"SELECT {EVENT_COLUMNS} FROM {self.schema}.invariant_events"
            " WHERE stream_id = $1 AND version >= $2 AND ($3::bigint IS NULL OR version <= $3)"
            " AND ($4::timestamptz IS NULL OR recorded_at >= $4)"
            " AND ($5::timestamptz IS NULL OR recorded_at <= $5)"
            f" ORDER BY version {'DESC' if backwards else 'ASC'} LIMIT $6",
            stream_id, max(from_version, 1), to_version, recorded_from, recorded_until, limit,
        )
        return [row_to_event(r) for r in rows]

    async def read_stream_data(
        self, stream_id: str, *, after_version: int = 0, to_version: int | None = None
    ) -> list[tuple[str, int, dict[str, Any] | str | bytes]]:
        rows = await self._fetch(self._sql_stream_data, stream_id, after_version, to_version)
        return [(r[0], r[1], r[2]) for r in rows]

    async def read_snapshot_tail(self, stream_id: str) -> SnapshotTail:
        rows = await self._fetch(self._sql_snapshot_tail, stream_id)
        snapshot = None
        if rows and rows[0][4] is not None:
            r = rows[0]
            snapshot = SnapshotRecord(stream_id, r[4], r[3], r[1], r[5], r[6])
            rows = rows[1:]
        return SnapshotTail(snapshot, [(r[0], r[1], r[2]) for r in rows])

    async def head_position(self) -> int:
        pool = await self._get_pool()
        try:
            head = await pool.fetchval(f"SELECT {self.schema}.invariant_safe_head()")
        except DRIVER_ERRORS as exc:
            raise StoreError(f"PostgreSQL read failed: {exc}") from exc
        self._safe_head = max(self._safe_head, int(head))
        return self._safe_head

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
            f"SELECT {EVENT_COLUMNS} FROM {self.schema}.invariant_events"
            " WHERE position > $1 AND position <= $2"
            " AND ($3::text[] IS NULL OR event_type = ANY($3))"
            " AND ($4::text IS NULL OR category = $4)"
            " ORDER BY position LIMIT $5"
        )
        rows = await self._up_to_safe_head(
            after_position, limit,
            lambda after, head, n: self._fetch(sql, after, head, types, category, n),
        )
        return [row_to_event(r) for r in rows]

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

    async def read_type_log(
        self, event_type: str, *, after_position: int = 0, limit: int = 1000,
    ) -> list[TypeLogRow]:
        rows: list[Any] = await self._up_to_safe_head(
            after_position, limit,
            lambda after, head, n: self._fetch(self._sql_read_type_log, after, head,
                                               event_type, n),
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
        rows = await self._fetch(outbox.select_pending(f"{self.schema}.") + " LIMIT $1", limit)
        return [OutboxRecord(*r) for r in rows]
