"""The typed event store: domain events in, envelopes out, upcasting on every read path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from invariant.domain.errors import InvariantError, ValidationError
from invariant.domain.events import DomainEvent
from invariant.store.ids import new_uuid
from invariant.store.port import EventStorage
from invariant.store.records import (
    AppendRequest,
    Commit,
    CommitResult,
    ExpectedVersion,
    LogRow,
    NewEvent,
    RecordedEvent,
    StreamState,
)
from invariant.store.registry import EventRegistry
from invariant.store.upcasting import Upcasters
from invariant.telemetry import commits as telemetry


class DetailsNotLoaded(InvariantError):
    """An envelope read on the lean path was asked for a field it was not read with.

    Raised by :attr:`EventEnvelope.event_id`, ``stream_version``, ``metadata`` and
    ``recorded_at`` of envelopes made by :meth:`EventStore.log_envelopes`. The projection
    runner does not depend on seeing it: the page the envelope belongs to notes the field
    asked for (:attr:`EventBatch.wanted`), and the runner rolls that page back and reads the
    projection's pages with every field from then on, also when a handler's
    ``except Exception`` caught the error.
    """


_NOT_LOADED: Any = type("_NotLoaded", (), {"__repr__": lambda self: "<not loaded>"})()


class EventEnvelope:
    """A domain event with everything the store knows about it (immutable).

    Envelopes of the projection runner's lean reads carry the event, its stream, position,
    type and schema versions; asking one of them for ``event_id``, ``stream_version``,
    ``metadata`` or ``recorded_at`` raises :class:`DetailsNotLoaded` (see there).
    """

    __slots__ = ("_event_id", "_metadata", "_recorded_at", "_stream_version", "_wanted",
                 "event", "event_type", "position", "schema_version", "stored_schema_version",
                 "stream_id")
    __match_args__ = ("event", "event_id", "stream_id", "stream_version", "position",
                      "event_type", "schema_version", "stored_schema_version", "metadata",
                      "recorded_at")

    event: DomainEvent
    stream_id: str
    position: int
    event_type: str
    schema_version: int
    stored_schema_version: int
    _event_id: UUID
    _stream_version: int
    _metadata: dict[str, Any]
    _recorded_at: datetime
    _wanted: list[str]
    """Of a lean envelope: its page's note of the fields asked for that it lacks."""

    def __init__(
        self,
        event: DomainEvent,
        event_id: UUID,
        stream_id: str,
        stream_version: int,
        position: int,
        event_type: str,
        schema_version: int,
        stored_schema_version: int,
        metadata: dict[str, Any],
        recorded_at: datetime,
    ) -> None:
        self.event = event
        self._event_id = event_id
        self.stream_id = stream_id
        self._stream_version = stream_version
        self.position = position
        self.event_type = event_type
        self.schema_version = schema_version
        self.stored_schema_version = stored_schema_version
        self._metadata = metadata
        self._recorded_at = recorded_at

    @property
    def event_id(self) -> UUID:
        try:
            return self._event_id
        except AttributeError:
            raise self._not_loaded("event_id") from None

    @property
    def stream_version(self) -> int:
        try:
            return self._stream_version
        except AttributeError:
            raise self._not_loaded("stream_version") from None

    @property
    def metadata(self) -> dict[str, Any]:
        try:
            return self._metadata
        except AttributeError:
            raise self._not_loaded("metadata") from None

    @property
    def recorded_at(self) -> datetime:
        try:
            return self._recorded_at
        except AttributeError:
            raise self._not_loaded("recorded_at") from None

    def _not_loaded(self, *fields: str) -> DetailsNotLoaded:
        """The error for ``fields`` asked of a lean envelope, noted on its page first."""
        wanted = getattr(self, "_wanted", None)
        if wanted is not None:
            wanted.extend(fields)
        return DetailsNotLoaded(", ".join(fields))

    @property
    def correlation_id(self) -> str | None:
        value = self.metadata.get("correlation_id")
        return None if value is None else str(value)

    @property
    def causation_id(self) -> str | None:
        value = self.metadata.get("causation_id")
        return None if value is None else str(value)

    @property
    def has_details(self) -> bool:
        """False for envelopes of a lean read (see :class:`DetailsNotLoaded`)."""
        return hasattr(self, "_event_id")

    def _fields(self) -> tuple[Any, ...]:
        """Every field, in order (``_NOT_LOADED`` for the details of a lean envelope)."""
        return (self.event, getattr(self, "_event_id", _NOT_LOADED), self.stream_id,
                getattr(self, "_stream_version", _NOT_LOADED), self.position, self.event_type,
                self.schema_version, self.stored_schema_version,
                getattr(self, "_metadata", _NOT_LOADED),
                getattr(self, "_recorded_at", _NOT_LOADED))

    def _replace(self, **changes: Any) -> EventEnvelope:
        """A copy with ``changes`` (as a named tuple's ``_replace``); all fields needed."""
        values = dict(zip(self.__match_args__, self._fields(), strict=True))
        unknown = changes.keys() - values.keys()
        if unknown:
            raise ValueError(f"EventEnvelope has no field(s) {sorted(unknown)}")
        values.update(changes)
        missing = [k for k, v in values.items() if v is _NOT_LOADED]
        if missing:
            raise self._not_loaded(*missing)
        return EventEnvelope(**values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventEnvelope):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((self.position, self.stream_id, self.event_type))

    def __repr__(self) -> str:
        if not self.has_details:
            return (f"EventEnvelope(event={self.event!r}, stream_id={self.stream_id!r}, "
                    f"position={self.position!r}, event_type={self.event_type!r}, "
                    "details not loaded)")
        inner = ", ".join(f"{k}={v!r}" for k, v in zip(self.__match_args__, self._fields(),
                                                         strict=True))
        return f"EventEnvelope({inner})"


def _before_first_run(data: Any) -> DomainEvent:
    raise AssertionError("decode_into sets a decoder at the first row")


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
        return await telemetry.commit(self.storage, Commit(appends=(request,)))

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
        consumer_for: Callable[[type[DomainEvent]], Callable[[DomainEvent], object]]
        | None = None,
    ) -> int:
        """Decode rows and hand each event to ``consume`` (e.g. an aggregate's ``apply``).

        The hot path of aggregate loading, with no intermediate list. Rows come in runs of
        one event type and schema version: per run the decoder is looked up once and, given
        ``consumer_for`` (e.g. an aggregate's ``applier_for``), so is the consumer of that
        run's event class (events of upcast rows go to ``consume``). Returns the number of
        events consumed.
        """
        history = rows if isinstance(rows, list | tuple) else list(rows)
        highest_from = self.upcasters.highest_from
        registry = self.registry
        decoders: dict[tuple[str, int], Callable[[dict[str, Any]], DomainEvent]] = {}
        text_decoders: dict[tuple[str, int], Callable[[str | bytes], DomainEvent]] = {}
        sinks: dict[str, Callable[[DomainEvent], object]] = {}

        def decoder_for(event_type: str, version: int) -> Callable[[dict[str, Any]], DomainEvent]:
            found = decoders.get((event_type, version))
            if found is None:
                found = decoders[(event_type, version)] = registry.decoder_for(
                    event_type, version
                )
            return found

        def text_decoder_for(event_type: str, version: int
                             ) -> Callable[[str | bytes], DomainEvent]:
            found = text_decoders.get((event_type, version))
            if found is None:
                found = text_decoders[(event_type, version)] = registry.text_decoder_for(
                    event_type, version
                )
            return found

        def upcast_decoder(event_type: str, version: int
                           ) -> Callable[[dict[str, Any]], DomainEvent]:
            upcast = self.upcasters.upcast

            def decode(data: dict[str, Any]) -> DomainEvent:
                new_type, new_version, new_data = upcast(event_type, version, data)
                return self._decode_one(decoder_for(new_type, new_version), new_type,
                                        new_version, new_data)

            return decode

        loads = orjson.loads
        event_type = ""
        version = 0  # no stored schema version: the first row starts a run
        upcasting = text = parse = False
        decoder: Callable[[Any], DomainEvent] = _before_first_run
        sink = consume
        for stored_type, stored_version, stored in history:
            if stored_version != version or stored_type != event_type:
                event_type, version = stored_type, stored_version
                text = type(stored) is not dict
                upcasting = version <= highest_from.get(event_type, 0)
                parse = text and upcasting  # upcasters work on data; the rest reads the text
                if upcasting:
                    decoder, sink = upcast_decoder(event_type, version), consume
                else:
                    decoder = (text_decoder_for if text else decoder_for)(event_type, version)
                    if consumer_for is None:
                        sink = consume
                    else:
                        found = sinks.get(event_type)
                        if found is None:
                            found = sinks[event_type] = consumer_for(
                                registry.class_for(event_type))
                        sink = found
            try:
                event = decoder(loads(stored) if parse else stored)  # type: ignore[arg-type]
            except Exception:
                if upcasting and text is (type(stored) is not dict):
                    raise  # the upcaster's or the careful decoder's own error
                # Malformed data (loads raises its own error here), or a row of another kind
                # than the run's first: the careful path reports malformed data precisely.
                data = stored if type(stored) is dict else loads(stored)  # type: ignore[arg-type]
                event = decoder(data) if upcasting else self._decode_one(
                    None, event_type, version, data)
            sink(event)
        return len(history)

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

    def log_envelopes(self, rows: Sequence[LogRow]) -> list[EventEnvelope]:
        """Lean envelopes of ``rows`` of :meth:`EventStorage.read_log`, upcast as needed.

        They carry the event, stream id, position, type and schema versions only: the other
        fields raise :class:`DetailsNotLoaded` (the projection runner reads those pages
        again with :meth:`EventStorage.read_all` then). Decoded as the runner decodes its
        pages (:func:`invariant.store.batch.decode_log_page`); malformed data raises what
        :meth:`decode_event` raises.
        """
        from invariant.store.batch import decode_log_page

        return decode_log_page(self, rows).envelopes

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
        """Events of a stream recorded in ``[start, end]``, both bounds included, upcast
        (a temporal query). The bounds must be timezone-aware: a naive time would mean UTC
        to one adapter and local time to another."""
        for name, moment in (("start", start), ("end", end)):
            if moment.tzinfo is None or moment.utcoffset() is None:
                raise ValidationError.single(
                    name, "must be timezone-aware (UTC recommended)", "naive_datetime"
                )
        if start > end:
            raise ValidationError.single(
                "end", f"must not be before start ({start.isoformat()})", "invalid_range"
            )
        records = await self.storage.read_stream(
            stream_id, recorded_from=start, recorded_until=end
        )
        return [self.envelope(r) for r in records]
