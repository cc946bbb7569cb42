"""Event store: the port, its adapters, the codec, upcasting and the typed facade."""

from invariant.store.codec import Codec
from invariant.store.event_store import DetailsNotLoaded, EventEnvelope, EventStore
from invariant.store.memory import MemoryStorage
from invariant.store.port import EventStorage, LogReader
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
    StreamResult,
    StreamState,
    category_of,
)
from invariant.store.registry import EventRegistry
from invariant.store.sqlite import SQLiteStorage
from invariant.store.upcasting import Upcasters

__all__ = [
    "AppendRequest",
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
    "RecordedEvent",
    "SQLiteStorage",
    "SnapshotRecord",
    "StreamResult",
    "StreamState",
    "Upcasters",
    "category_of",
]
