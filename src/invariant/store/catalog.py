"""Browsing what the store holds, for operators: categories with their counts, streams
found by a part of their id, and the events of one flow (one correlation id).

Not part of :class:`~invariant.store.port.EventStorage`, which applications need: an adapter
offers it when it can answer these questions without reading the whole log into memory
(memory, SQLite and PostgreSQL do). The console's streams page reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from invariant.store.records import RecordedEvent

CORRELATION_KEY = "correlation_id"
"""The metadata key that ties the events of one flow together (set by the command bus)."""


@dataclass(frozen=True, slots=True)
class CategoryCount:
    """A category (the part of a stream id before its first ``-``), with how many streams
    and events it holds."""

    category: str
    streams: int
    events: int


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """A stream and its current version (its number of events)."""

    stream_id: str
    version: int


@runtime_checkable
class StreamCatalog(Protocol):
    """What an adapter tells about the streams it holds."""

    async def categories(self) -> list[CategoryCount]:
        """Every category, by name."""
        ...

    async def find_streams(self, text: str, *, limit: int = 50) -> list[StreamSummary]:
        """Streams whose id contains ``text`` (case-sensitively), by id, at most ``limit``."""
        ...

    async def read_correlated(self, correlation_id: str, *, limit: int = 100
                              ) -> list[RecordedEvent]:
        """The events whose metadata carries ``correlation_id``, in position order."""
        ...


def like_pattern(text: str) -> str:
    """A ``LIKE`` pattern (escape character ``\\``) matching ids that contain ``text``."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
