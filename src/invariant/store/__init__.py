"""Event store: the port, its adapters, the codec, upcasting and the typed facade.

``PostgresStorage`` is imported on first use, so that importing this package does not
import PostgreSQL's driver (asyncpg) for applications that do not use it.
"""

from typing import TYPE_CHECKING, Any

from invariant.store.catalog import CategoryCount, StreamCatalog, StreamSummary
from invariant.store.codec import Codec
from invariant.store.event_store import DetailsNotLoaded, EventEnvelope, EventStore
from invariant.store.memory import MemoryStorage
from invariant.store.port import EventStorage, LogReader, SnapshotTailReader
from invariant.store.records import (
    AppendRequest,
    Commit,
    CommitResult,
    ExpectedVersion,
    LogRow,
    NewEvent,
    OutboxMessage,
    OutboxRecord,
    RecordedEvent,
    SnapshotRecord,
    SnapshotTail,
    StreamResult,
    StreamState,
    TypeLogRow,
    category_of,
)
from invariant.store.registry import EventRegistry
from invariant.store.sqlite import SQLiteStorage
from invariant.store.upcasting import Upcasters

if TYPE_CHECKING:
    from invariant.store.postgres import PostgresStorage


def __getattr__(name: str) -> Any:
    if name == "PostgresStorage":
        from invariant.store.postgres import PostgresStorage

        return PostgresStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AppendRequest",
    "CategoryCount",
    "Codec",
    "Commit",
    "CommitResult",
    "DetailsNotLoaded",
    "EventEnvelope",
    "EventRegistry",
    "EventStorage",
    "EventStore",
    "ExpectedVersion",
    "LogReader",
    "LogRow",
    "MemoryStorage",
    "NewEvent",
    "OutboxMessage",
    "OutboxRecord",
    "PostgresStorage",
    "RecordedEvent",
    "SQLiteStorage",
    "SnapshotRecord",
    "SnapshotTail",
    "SnapshotTailReader",
    "StreamCatalog",
    "StreamResult",
    "StreamState",
    "StreamSummary",
    "TypeLogRow",
    "Upcasters",
    "category_of",
]
