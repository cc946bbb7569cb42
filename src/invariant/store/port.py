"""The event storage port: what every adapter (memory, SQLite, PostgreSQL, yours) provides."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable
from uuid import UUID

from invariant.store.records import (
    Commit,
    CommitResult,
    LogRow,
    OutboxRecord,
    RecordedEvent,
    SnapshotRecord,
    SnapshotTail,
    StoredCommand,
    StreamDataRow,
    TypeLogRow,
)


@runtime_checkable
class EventStorage(Protocol):
    """Durable, append-only storage of event streams, with snapshots and an outbox.

    Guarantees every adapter must keep (checked by
    :class:`invariant.testing.EventStorageContract`):

    * a :class:`Commit` is atomic: all of its appends, snapshots and outbox rows, or none;
    * an append whose expected version does not match raises
      :class:`~invariant.errors.ConcurrencyError` naming stream, expected and actual version;
    * an event id that is already stored is rejected with
      :class:`~invariant.errors.DuplicateEventError` (the whole commit is refused);
    * a commit carrying a command record whose id is already recorded is refused with
      :class:`~invariant.errors.DuplicateCommandError` (nothing of it is written);
    * global positions increase with commit order as seen by :meth:`read_all`: a reader that
      follows the log from its last position never skips an event committed later;
    * recorded times are UTC.
    """

    async def setup(self) -> None:
        """Create the tables (idempotent)."""

    async def close(self) -> None:
        """Release connections and threads."""

    async def commit(self, commit: Commit) -> CommitResult:
        """Write everything in ``commit`` in one transaction."""

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
        """Events of one stream in version order, within the bounds given (all inclusive).

        ``backwards`` starts at ``to_version`` (or the end) and walks down to ``from_version``;
        ``limit`` caps the number of events returned; ``recorded_from``/``recorded_until``
        select by recorded time (temporal queries)."""

    async def read_stream_data(
        self, stream_id: str, *, after_version: int = 0, to_version: int | None = None
    ) -> list[StreamDataRow]:
        """``(event_type, schema_version, data)`` of a stream's events after ``after_version``
        up to ``to_version``, in order: the lean path used to load aggregates. ``data`` is the
        decoded JSON object, or its JSON text (str or bytes) for the caller to parse."""

    async def read_all(
        self,
        *,
        after_position: int = 0,
        limit: int = 1000,
        event_types: Sequence[str] | None = None,
        category: str | None = None,
    ) -> list[RecordedEvent]:
        """The next events of the global log after ``after_position``, in position order.

        Returns only events whose position can no longer be preceded by an event still being
        committed, so a follower that continues from the last position it saw never skips one.
        """

    async def head_position(self) -> int:
        """The highest position :meth:`read_all` can currently return up to."""

    async def wait_for_commit(self, after_position: int, timeout: float) -> None:  # noqa: ASYNC109
        """Return as soon as :meth:`head_position` exceeds ``after_position``, or once
        ``timeout`` seconds have passed, whichever is first (followers wait here when idle
        instead of polling). It may return early; callers read the log again either way."""

    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version (0 when it has no events)."""

    async def read_snapshot(self, stream_id: str) -> SnapshotRecord | None:
        """The latest snapshot of a stream, if any."""

    async def read_command(self, command_id: UUID) -> StoredCommand | None:
        """The recorded outcome of a command committed with ``Commit.command``, if any."""

    async def read_outbox(self, *, limit: int = 100) -> list[OutboxRecord]:
        """Unpublished outbox rows, oldest first."""

    async def mark_published(self, ids: Sequence[int]) -> None:
        """Mark outbox rows as published."""


@runtime_checkable
class LogReader(Protocol):
    """An adapter that can also read the global log lean (memory, SQLite and PostgreSQL can).

    What projections read when catching up: only the columns most handlers need, with the
    event data left as JSON text for the caller's decoding loop. Adapters without it are
    read with :meth:`EventStorage.read_all`.
    """

    async def read_log(
        self, *, after_position: int = 0, limit: int = 1000,
        event_types: Sequence[str] | None = None,
    ) -> list[LogRow]:
        """``(position, stream_id, event_type, schema_version, data)`` of the events that
        :meth:`EventStorage.read_all` returns for the same arguments, in the same order
        (``data`` is the JSON object or its text, str or bytes)."""

    async def read_type_log(
        self, event_type: str, *, after_position: int = 0, limit: int = 1000,
    ) -> list[TypeLogRow]:
        """``(position, stream_id, schema_version, data)`` of the rows :meth:`read_log`
        returns with ``event_types=[event_type]``, in the same order: the event type is left
        out, since every row has it. What a projection that reads one stored type catches up
        with: each column of a page costs the driver a Python object per row."""


@runtime_checkable
class SnapshotTailReader(Protocol):
    """An adapter that reads a stream's snapshot and the events after it in one go (memory,
    SQLite and PostgreSQL can; PostgreSQL in one round trip instead of two).

    What the repository loads a snapshotted aggregate with; adapters without it are read
    with :meth:`EventStorage.read_snapshot`, then :meth:`EventStorage.read_stream_data`.
    """

    async def read_snapshot_tail(self, stream_id: str) -> SnapshotTail:
        """What :meth:`EventStorage.read_snapshot` returns for the stream, and the rows
        :meth:`EventStorage.read_stream_data` returns after the snapshot's version (after
        version 0 when there is no snapshot)."""


async def snapshot_tail_in_turn(storage: EventStorage, stream_id: str) -> SnapshotTail:
    """:meth:`SnapshotTailReader.read_snapshot_tail` as two reads in turn: the snapshot,
    then the events after it. What in-process adapters (memory, SQLite) answer with: they
    have no round trip to save by fusing the two."""
    snapshot = await storage.read_snapshot(stream_id)
    after = 0 if snapshot is None else snapshot.version
    return SnapshotTail(snapshot, await storage.read_stream_data(stream_id, after_version=after))
