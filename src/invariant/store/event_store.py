"""The typed event store: domain events in, envelopes out, upcasting on every read path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import orjson

from invariant.domain.events import DomainEvent
from invariant.store.ids import new_uuid
from invariant.store.port import EventStorage
from invariant.store.records import (
    AppendRequest,
    Commit,
    CommitResult,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StreamState,
)
from invariant.store.registry import EventRegistry
from invariant.store.upcasting import Upcasters


class EventEnvelope(NamedTuple):
    """A domain event with everything the store knows about it (immutable)."""

    event: DomainEvent
    event_id: UUID
    stream_id: str
    stream_version: int
    position: int
    event_type: str
    schema_version: int
    stored_schema_version: int
    metadata: dict[str, Any]
    recorded_at: datetime

    @property
    def correlation_id(self) -> str | None:
        value = self.metadata.get("correlation_id")
        return None if value is None else str(value)

    @property
    def causation_id(self) -> str | None:
        value = self.metadata.get("causation_id")
        return None if value is None else str(value)


class EventStore:
    """Appends and reads domain events through an :class:`EventStorage` adapter."""

    def __init__(
        self,
        storage: EventStorage,
        registry: EventRegistry,
        upcasters: Upcasters | None = None,
    ) -> None:
        self.storage = storage
        self.registry = registry
        self.upcasters = upcasters or Upcasters()

    # -- writing -------------------------------------------------------------------------

    def new_events(
        self, events: Sequence[DomainEvent], metadata: Mapping[str, Any] | None = None
    ) -> list[NewEvent]:
        """Serialize domain events for an append (fresh event ids, shared metadata)."""
        meta = dict(metadata) if metadata else {}
        encode = self.registry.encode
        return [
            NewEvent(new_uuid(), e.event_type, e.schema_version, encode(e), meta)
            for e in events
        ]

    async def append(
        self,
        stream_id: str,
        events: Sequence[DomainEvent],
        expected_version: ExpectedVersion = StreamState.ANY,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> CommitResult:
        """Append events to one stream atomically (with their outbox rows)."""
        request = AppendRequest(stream_id, expected_version, self.new_events(events, metadata))
        return await self.storage.commit(Commit(appends=(request,)))

    # -- reading -------------------------------------------------------------------------

    def decode_event(self, record: RecordedEvent) -> DomainEvent:
        """The domain event of a record, upcast to the current schema."""
        event_type, version, data = record.event_type, record.schema_version, record.data
        if version <= self.upcasters.highest_from.get(event_type, 0):
            event_type, version, data = self.upcasters.upcast(event_type, version, data)
        return self.registry.decode(event_type, version, data)

    def decode_rows(
        self, rows: Iterable[tuple[str, int, dict[str, Any] | str | bytes]]
    ) -> list[DomainEvent]:
        """Domain events from ``(event_type, schema_version, data)`` rows, upcast as needed."""
        events: list[DomainEvent] = []
        self.decode_into(rows, events.append)
        return events

    def decode_into(
        self,
        rows: Iterable[tuple[str, int, dict[str, Any] | str | bytes]],
        consume: Callable[[DomainEvent], object],
    ) -> int:
        """Decode rows and hand each event to ``consume`` (e.g. an aggregate's ``apply``).

        The hot path of aggregate loading: one decoder lookup per run of equal types, no
        intermediate list. Returns the number of events consumed.
        """
        highest_from = self.upcasters.highest_from
        decoders: dict[tuple[str, int], Callable[[dict[str, Any]], DomainEvent]] = {}

        def decoder_for(event_type: str, version: int) -> Callable[[dict[str, Any]], DomainEvent]:
            found = decoders.get((event_type, version))
            if found is None:
                found = decoders[(event_type, version)] = self.registry.decoder_for(
                    event_type, version
                )
            return found

        loads = orjson.loads
        last_type: str | None = None
        last_version = 0
        upcast = False
        decoder = None
        count = 0
        for count, (event_type, version, stored) in enumerate(rows, 1):  # noqa: B007
            data = stored if type(stored) is dict else loads(stored)  # type: ignore[arg-type]
            if event_type != last_type or version != last_version:
                last_type, last_version = event_type, version
                upcast = version <= highest_from.get(event_type, 0)
                decoder = None if upcast else decoder_for(event_type, version)
            if upcast:
                new_type, new_version, data = self.upcasters.upcast(event_type, version, data)
                event = self._decode_one(decoder_for(new_type, new_version), new_type,
                                         new_version, data)
            else:
                try:
                    event = decoder(data)  # type: ignore[misc]
                except Exception:
                    event = self._decode_one(None, event_type, version, data)
            consume(event)
        return count

    def _decode_one(
        self,
        decoder: Callable[[dict[str, Any]], DomainEvent] | None,
        event_type: str,
        version: int,
        data: dict[str, Any],
    ) -> DomainEvent:
        if decoder is not None:
            try:
                return decoder(data)
            except Exception:
                pass
        # The careful path reports malformed data precisely (field names, upcaster advice).
        return self.registry.decode(event_type, version, data)

    def envelope(self, record: RecordedEvent) -> EventEnvelope:
        event = self.decode_event(record)
        return EventEnvelope(
            event=event,
            event_id=record.event_id,
            stream_id=record.stream_id,
            stream_version=record.stream_version,
            position=record.position,
            event_type=event.event_type,
            schema_version=event.schema_version,
            stored_schema_version=record.schema_version,
            metadata=record.metadata,
            recorded_at=record.recorded_at,
        )

    async def read_stream(self, stream_id: str, **bounds: Any) -> list[EventEnvelope]:
        """Envelopes of one stream; takes the bounds of :meth:`EventStorage.read_stream`."""
        records = await self.storage.read_stream(stream_id, **bounds)
        return [self.envelope(r) for r in records]

    async def read_all(self, **query: Any) -> list[EventEnvelope]:
        """One batch of the global log; takes the arguments of :meth:`EventStorage.read_all`."""
        records = await self.storage.read_all(**query)
        return [self.envelope(r) for r in records]

    async def iterate_all(
        self,
        *,
        after_position: int = 0,
        batch_size: int = 1000,
        event_types: Sequence[str] | None = None,
        category: str | None = None,
    ) -> AsyncIterator[EventEnvelope]:
        """Every event after ``after_position`` up to the current head, batch by batch."""
        position = after_position
        while True:
            batch = await self.storage.read_all(
                after_position=position, limit=batch_size, event_types=event_types,
                category=category,
            )
            if not batch:
                return
            for record in batch:
                yield self.envelope(record)
            position = batch[-1].position
            if len(batch) < batch_size:
                return

    async def history_between(
        self, stream_id: str, start: datetime, end: datetime
    ) -> list[EventEnvelope]:
        """Events of a stream recorded in ``[start, end]`` (a temporal query)."""
        records = await self.storage.read_stream(
            stream_id, recorded_from=start, recorded_until=end
        )
        return [self.envelope(r) for r in records]
