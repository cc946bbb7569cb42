"""The records the event store port speaks in: plain data, no domain classes."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from invariant.domain.errors import ConcurrencyError, ValidationError

JsonObject = dict[str, Any]

LogRow = tuple[int, str, str, int, dict[str, Any] | str | bytes]
"""A lean row of the global log: ``(position, stream_id, event_type, schema_version, data)``,
``data`` being the decoded JSON object or its JSON text (see ``EventStorage.read_log``)."""

TypeLogRow = tuple[int, str, int, dict[str, Any] | str | bytes]
"""A lean row of one stored type's events: ``(position, stream_id, schema_version, data)``,
a :data:`LogRow` without its event type, which the read named (see
``LogReader.read_type_log``)."""


StreamDataRow = tuple[str, int, dict[str, Any] | str | bytes]
"""A lean row of one stream: ``(event_type, schema_version, data)`` (see
``EventStorage.read_stream_data``)."""


class StreamState(enum.Enum):
    """Expected-version wildcards for appends."""

    ANY = "any"
    """Append whatever the stream's version is."""
    NO_STREAM = "no_stream"
    """The stream must not exist yet (same as expecting version 0)."""


ExpectedVersion = int | StreamState


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append, already serialized."""

    event_id: UUID
    event_type: str
    schema_version: int
    data: JsonObject
    metadata: JsonObject = field(default_factory=dict)


class RecordedEvent(NamedTuple):
    """A stored event exactly as the store holds it (before upcasting).

    Immutable; a named tuple because logs are read by the hundred thousand.
    """

    event_id: UUID
    stream_id: str
    stream_version: int
    position: int
    event_type: str
    schema_version: int
    data: JsonObject
    metadata: JsonObject
    recorded_at: datetime

    @property
    def category(self) -> str:
        return category_of(self.stream_id)


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """Append ``events`` to ``stream_id`` if its version matches ``expected_version``."""

    stream_id: str
    expected_version: ExpectedVersion
    events: Sequence[NewEvent]


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """An aggregate's state at ``version`` of its stream, in the snapshot schema it was made in.

    ``aggregate_type`` is the aggregate's ``category`` (snapshots written before it was
    hold the class name; the repository still reads those while the class keeps it).
    """

    stream_id: str
    aggregate_type: str
    version: int
    schema_version: int
    state: JsonObject
    recorded_at: datetime | None = None


class SnapshotTail(NamedTuple):
    """A stream's latest snapshot and the events after it, read together (see
    ``SnapshotTailReader``)."""

    snapshot: SnapshotRecord | None
    """None when the stream has no snapshot."""
    rows: list[StreamDataRow]
    """The events after the snapshot's version (every event without one), in order."""


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message that is not a stored event (e.g. an integration event) to publish later."""

    message_id: UUID
    message_type: str
    schema_version: int
    data: JsonObject
    metadata: JsonObject = field(default_factory=dict)
    stream_id: str = ""


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """A row of the outbox: a stored event (``position`` set) or a standalone message."""

    id: int
    message_id: UUID
    stream_id: str
    message_type: str
    schema_version: int
    position: int | None
    data: JsonObject
    metadata: JsonObject
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """Marks a commit as the outcome of one command, so that the command id is handled once.

    ``value`` is what the handler returned (JSON-compatible); the store adds the commit's
    position and stream versions when it writes the record.
    """

    command_id: UUID
    command_type: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class StoredCommand:
    """The recorded outcome of a handled command."""

    command_id: UUID
    command_type: str
    value: Any
    position: int
    versions: dict[str, int]
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything one unit of work writes, in one transaction.

    Every appended event also gets an outbox row, in the same transaction.
    """

    appends: Sequence[AppendRequest]
    snapshots: Sequence[SnapshotRecord] = ()
    messages: Sequence[OutboxMessage] = ()
    command: CommandRecord | None = None


@dataclass(frozen=True, slots=True)
class StreamResult:
    stream_id: str
    version: int
    first_position: int
    last_position: int


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What a client needs for read-your-writes: new versions and the last global position."""

    streams: tuple[StreamResult, ...]
    batch_size: int = 1
    """How many commits were written in the same transaction as this one (group commit)."""

    @property
    def position(self) -> int:
        """The highest global position written (0 when nothing was appended)."""
        return max((s.last_position for s in self.streams), default=0)

    @property
    def versions(self) -> dict[str, int]:
        return {s.stream_id: s.version for s in self.streams}

    def version_of(self, stream_id: str) -> int:
        for s in self.streams:
            if s.stream_id == stream_id:
                return s.version
        raise KeyError(stream_id)


def category_of(stream_id: str) -> str:
    """``"account-42"`` → ``"account"``; a stream id without ``-`` is its own category."""
    head, _, _ = stream_id.partition("-")
    return head


def expected_number(expected: ExpectedVersion) -> int | None:
    """``expected`` as :class:`ConcurrencyError` reports it: the version (``NO_STREAM`` is 0,
    which means the same), or None for ``ANY``."""
    if expected is StreamState.ANY:
        return None
    return 0 if expected is StreamState.NO_STREAM else expected


def check_expected(stream_id: str, expected: ExpectedVersion, actual: int) -> None:
    """Raise :class:`ConcurrencyError` unless ``actual`` satisfies ``expected``."""
    if expected is StreamState.ANY:
        return
    want = 0 if expected is StreamState.NO_STREAM else expected
    if want != actual:
        raise ConcurrencyError(stream_id, expected_number(expected), actual)


def validate_append(request: AppendRequest) -> None:
    """Reject malformed appends before any storage is touched."""
    if not isinstance(request.stream_id, str) or not request.stream_id:
        raise ValidationError.single("stream_id", "must be a non-empty string", "invalid_stream")
    exp = request.expected_version
    if not isinstance(exp, StreamState) and (
        not isinstance(exp, int) or isinstance(exp, bool) or exp < 0
    ):
        raise ValidationError.single(
            "expected_version",
            f"must be an int >= 0, StreamState.ANY or StreamState.NO_STREAM, got {exp!r}",
            "invalid_expected_version",
        )
    if not request.events:
        raise ValidationError.single("events", "an append needs at least one event", "empty")
    if len(request.events) == 1:
        return
    seen: set[UUID] = set()
    for e in request.events:
        if e.event_id in seen:
            raise ValidationError.single(
                "event_id", f"event id {e.event_id} appears twice in one append", "duplicate"
            )
        seen.add(e.event_id)


def metadata_view(metadata: Mapping[str, Any] | None) -> JsonObject:
    return dict(metadata) if metadata else {}
