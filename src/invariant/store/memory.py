"""In-memory event storage: the reference semantics, for tests and prototypes."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from invariant.clock import Clock, utc_now
from invariant.domain.errors import DuplicateCommandError, DuplicateEventError
from invariant.store.catalog import CORRELATION_KEY, CategoryCount, StreamSummary
from invariant.store.port import snapshot_tail_in_turn
from invariant.store.records import (
    Commit,
    CommitResult,
    LogRow,
    OutboxRecord,
    RecordedEvent,
    SnapshotRecord,
    SnapshotTail,
    StoredCommand,
    StreamResult,
    TypeLogRow,
    category_of,
    check_expected,
    validate_append,
)
from invariant.store.signal import CommitSignal, wait_for_head


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    # Round-trip through JSON so stored data is isolated from callers and JSON-only,
    # exactly as on the durable adapters.
    result: dict[str, Any] = orjson.loads(orjson.dumps(data))
    return result


def _detached(record: RecordedEvent) -> RecordedEvent:
    return record._replace(data=_copy(record.data), metadata=_copy(record.metadata))


class MemoryStorage:
    """Keeps everything in process memory; same guarantees as the durable adapters."""

    def __init__(self, *, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._log: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._ids: set[UUID] = set()
        self._snapshots: dict[str, SnapshotRecord] = {}
        self._outbox: dict[int, OutboxRecord] = {}
        self._outbox_ids = itertools.count(1)
        self._commands: dict[UUID, StoredCommand] = {}
        self._committed = CommitSignal()

    async def setup(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def commit(self, commit: Commit) -> CommitResult:
        # No await inside: the whole commit happens in one step of the event loop.
        for request in commit.appends:
            validate_append(request)
        if commit.command is not None and commit.command.command_id in self._commands:
            raise DuplicateCommandError(str(commit.command.command_id))
        new_ids = [e.event_id for r in commit.appends for e in r.events]
        dupes = [str(i) for i in new_ids if i in self._ids]
        if dupes or len(set(new_ids)) != len(new_ids):
            raise DuplicateEventError(dupes or ["(repeated within the commit)"])
        versions: dict[str, int] = {}
        for request in commit.appends:
            actual = versions.get(request.stream_id, len(self._streams.get(request.stream_id, ())))
            check_expected(request.stream_id, request.expected_version, actual)
            versions[request.stream_id] = actual + len(request.events)
        now = self._clock()
        results: list[StreamResult] = []
        for request in commit.appends:
            stream = self._streams.setdefault(request.stream_id, [])
            first = len(self._log) + 1
            for e in request.events:
                record = RecordedEvent(
                    e.event_id, request.stream_id, len(stream) + 1, len(self._log) + 1,
                    e.event_type, e.schema_version, _copy(e.data), _copy(e.metadata), now,
                )
                stream.append(record)
                self._log.append(record)
                self._ids.add(e.event_id)
                oid = next(self._outbox_ids)
                self._outbox[oid] = OutboxRecord(
                    oid, e.event_id, request.stream_id, e.event_type, e.schema_version,
                    record.position, record.data, record.metadata, now,
                )
            results.append(StreamResult(request.stream_id, len(stream), first, len(self._log)))
        for snap in commit.snapshots:
            self._snapshots[snap.stream_id] = replace(snap, state=_copy(snap.state),
                                                      recorded_at=now)
        result = CommitResult(tuple(results))
        if commit.command is not None:
            c = commit.command
            self._commands[c.command_id] = StoredCommand(
                c.command_id, c.command_type, orjson.loads(orjson.dumps(c.value)),
                result.position, result.versions, now,
            )
        for m in commit.messages:
            oid = next(self._outbox_ids)
            self._outbox[oid] = OutboxRecord(
                oid, m.message_id, m.stream_id, m.message_type, m.schema_version, None,
                _copy(m.data), _copy(m.metadata), now,
            )
        if commit.appends:
            self._committed.notify()
        return result

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
        stream = self._streams.get(stream_id, [])
        selected = stream[max(from_version, 1) - 1 : to_version]
        if recorded_from is not None:
            selected = [r for r in selected if r.recorded_at >= recorded_from]
        if recorded_until is not None:
            selected = [r for r in selected if r.recorded_at <= recorded_until]
        if backwards:
            selected = selected[::-1]
        if limit is not None:
            selected = selected[:limit]
        return [_detached(r) for r in selected]

    async def read_stream_data(
        self, stream_id: str, *, after_version: int = 0, to_version: int | None = None
    ) -> list[tuple[str, int, dict[str, Any] | str | bytes]]:
        stream = self._streams.get(stream_id, [])
        return [(r.event_type, r.schema_version, _copy(r.data))
                for r in stream[after_version:to_version]]

    async def read_snapshot_tail(self, stream_id: str) -> SnapshotTail:
        return await snapshot_tail_in_turn(self, stream_id)

    async def read_all(
        self,
        *,
        after_position: int = 0,
        limit: int = 1000,
        event_types: Sequence[str] | None = None,
        category: str | None = None,
    ) -> list[RecordedEvent]:
        start = bisect.bisect_right(self._log, after_position, key=lambda r: r.position)
        types = set(event_types) if event_types is not None else None
        out: list[RecordedEvent] = []
        for record in self._log[start:]:
            if types is not None and record.event_type not in types:
                continue
            if category is not None and category_of(record.stream_id) != category:
                continue
            out.append(_detached(record))
            if len(out) >= limit:
                break
        return out

    async def categories(self) -> list[CategoryCount]:
        counts: dict[str, list[int]] = {}
        for stream_id, events in self._streams.items():
            count = counts.setdefault(category_of(stream_id), [0, 0])
            count[0] += 1
            count[1] += len(events)
        return [CategoryCount(name, *count) for name, count in sorted(counts.items())]

    async def find_streams(self, text: str, *, limit: int = 50) -> list[StreamSummary]:
        found = sorted(s for s in self._streams if text in s)[:limit]
        return [StreamSummary(s, len(self._streams[s])) for s in found]

    async def read_correlated(self, correlation_id: str, *, limit: int = 100
                              ) -> list[RecordedEvent]:
        return [_detached(r) for r in self._log
                if r.metadata.get(CORRELATION_KEY) == correlation_id][:limit]

    async def read_log(
        self, *, after_position: int = 0, limit: int = 1000,
        event_types: Sequence[str] | None = None,
    ) -> list[LogRow]:
        return [(r.position, r.stream_id, r.event_type, r.schema_version, r.data)
                for r in await self.read_all(after_position=after_position, limit=limit,
                                             event_types=event_types)]

    async def read_type_log(
        self, event_type: str, *, after_position: int = 0, limit: int = 1000,
    ) -> list[TypeLogRow]:
        return [(r.position, r.stream_id, r.schema_version, r.data)
                for r in await self.read_all(after_position=after_position, limit=limit,
                                             event_types=[event_type])]

    async def head_position(self) -> int:
        return len(self._log)

    async def wait_for_commit(self, after_position: int, timeout: float) -> None:  # noqa: ASYNC109
        await wait_for_head(self.head_position, self._committed, after_position, timeout,
                            recheck=timeout)

    async def stream_version(self, stream_id: str) -> int:
        return len(self._streams.get(stream_id, ()))

    async def read_snapshot(self, stream_id: str) -> SnapshotRecord | None:
        return self._snapshots.get(stream_id)

    async def read_command(self, command_id: UUID) -> StoredCommand | None:
        return self._commands.get(command_id)

    async def read_outbox(self, *, limit: int = 100) -> list[OutboxRecord]:
        return [self._outbox[k] for k in sorted(self._outbox)[:limit]]

    async def mark_published(self, ids: Sequence[int]) -> None:
        for i in ids:
            self._outbox.pop(i, None)
