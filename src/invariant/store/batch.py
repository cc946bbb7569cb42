"""A page of the global log as projections receive it: typed events, and envelopes on demand.

The projection runner reads the log a page at a time. :func:`decode_log_page` turns a page
of lean rows (:meth:`EventStorage.read_log`) into an :class:`EventBatch`: every event is
decoded and upcast at once (so a malformed one is found before anything is applied), but
the :class:`EventEnvelope` of each is only made when a handler iterates or indexes the
batch. Handlers that need no more than the events, their streams and positions read the
batch's columns instead, and no envelope is made at all::

    def apply_batch(self, batch: EventBatch, conn: Connection) -> None:
        totals: dict[str, int] = {}
        for stream_id, event in zip(batch.stream_ids, batch.events, strict=True):
            totals[stream_id] = totals.get(stream_id, 0) + event.amount
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

import orjson

from invariant.domain.events import DomainEvent
from invariant.store.records import LogRow, TypeLogRow

if TYPE_CHECKING:
    from invariant.store.event_store import EventEnvelope, EventStore


class EventBatch(Sequence["EventEnvelope"]):
    """A page of events in position order: a sequence of :class:`EventEnvelope`, and the
    columns :attr:`events`, :attr:`stream_ids` and :attr:`positions` (equal lengths).

    Envelopes of a lean read carry the event, stream id, position, type and schema versions;
    asking one for another field raises :class:`DetailsNotLoaded` (see there) and notes the
    field in :attr:`wanted`.
    """

    __slots__ = ("_envelopes", "_positions", "_rows", "_stream_ids", "_versions", "events",
                 "wanted")

    events: list[DomainEvent]
    """The typed events, upcast to their current schema."""
    wanted: list[str]
    """The fields asked of this batch's lean envelopes that they were not read with (empty
    while none was): the projection runner then rolls the page back and reads it again with
    every field, whether the handler let :class:`DetailsNotLoaded` through or caught it."""

    def __init__(self, events: list[DomainEvent], *,
                 rows: Sequence[LogRow] | Sequence[TypeLogRow] | None = None,
                 envelopes: list[EventEnvelope] | None = None,
                 stored_versions: bool = True) -> None:
        # Exactly one of ``rows`` (lean rows, aligned with ``events``) or ``envelopes``;
        # ``stored_versions``: the rows are LogRows (stored schema version at index 3), else
        # rows of any lean shape whose events were decoded at their stored version.
        self.events = events
        self._rows = rows
        self._versions = stored_versions
        self._envelopes = envelopes
        self._stream_ids: list[str] | None = None
        self._positions: list[int] | None = None
        self.wanted = []

    @classmethod
    def of(cls, envelopes: Iterable[EventEnvelope]) -> EventBatch:
        """A batch of envelopes already made (e.g. read with every field)."""
        envelopes = list(envelopes)
        return cls([e.event for e in envelopes], envelopes=envelopes)

    @property
    def stream_ids(self) -> list[str]:
        """The stream of each event."""
        if self._stream_ids is None:
            self._stream_ids = self._column(1, "stream_id")
        return self._stream_ids

    @property
    def positions(self) -> list[int]:
        """The global position of each event."""
        if self._positions is None:
            self._positions = self._column(0, "position")
        return self._positions

    def _column(self, index: int, field: str) -> list[Any]:
        if self._rows is not None:
            return [r[index] for r in self._rows]
        return [getattr(e, field) for e in self.envelopes]

    @property
    def envelopes(self) -> list[EventEnvelope]:
        """Every event's envelope (made once, on first use)."""
        if self._envelopes is None:
            self._envelopes = _lean_envelopes(self._rows or (), self.events, self.wanted,
                                              self._versions)
        return self._envelopes

    def __len__(self) -> int:
        return len(self.events)

    @overload
    def __getitem__(self, index: int) -> EventEnvelope: ...

    @overload
    def __getitem__(self, index: slice) -> list[EventEnvelope]: ...

    def __getitem__(self, index: int | slice) -> EventEnvelope | list[EventEnvelope]:
        return self.envelopes[index]

    def __iter__(self) -> Iterator[EventEnvelope]:
        return iter(self.envelopes)

    def __bool__(self) -> bool:
        return bool(self.events)

    def __repr__(self) -> str:
        positions = self.positions
        span = f"positions {positions[0]}..{positions[-1]}" if positions else "empty"
        return f"EventBatch({len(self)} events, {span})"


def _lean_envelopes(rows: Sequence[Any], events: list[DomainEvent], wanted: list[str],
                    stored_versions: bool) -> list[EventEnvelope]:
    from invariant.store.event_store import EventEnvelope

    new = object.__new__
    out: list[EventEnvelope] = []
    append = out.append
    for row, event in zip(rows, events, strict=True):
        envelope = new(EventEnvelope)
        envelope.event = event
        envelope.stream_id = row[1]
        envelope.position = row[0]
        envelope.event_type = event.event_type
        envelope.schema_version = event.schema_version
        envelope.stored_schema_version = (row[3] if stored_versions
                                          else event.schema_version)
        envelope._wanted = wanted
        append(envelope)
    return out


def decode_log_page(store: EventStore, rows: Sequence[LogRow],
                    handled: frozenset[str] | None = None) -> EventBatch:
    """The events of ``rows`` (lean rows of :meth:`EventStorage.read_log`), upcast as
    needed, keeping only those whose (upcast) type is in ``handled`` when it is given.

    One decoder lookup per run of rows of equal stored type and schema version; rows of a
    type that is neither handled nor upcast are skipped undecoded. Malformed data raises
    what :meth:`EventStore.decode_event` raises.
    """
    registry = store.registry
    upcasters = store.upcasters
    highest_from = upcasters.highest_from
    loads = orjson.loads
    # Adapters hand out JSON text or decoded objects; the first row says which (a row of
    # the other kind fails the fast path and is decoded on the careful one).
    text = bool(rows) and type(rows[0][4]) is not dict
    if text:
        uniform = _decode_uniform(store, rows, handled)
        if uniform is not None:
            return EventBatch(uniform, rows=rows)
    events: list[DomainEvent] = []
    append = events.append
    kept: list[LogRow] | None = None  # the rows of ``events``, once some are left out
    decoders: dict[tuple[str, int], Any] = {}
    last_type: str | None = None
    last_version = 0
    decode = True  # the current run is decoded as it is (no upcast, not skipped)
    decoder: Any = None
    for row in rows:
        stored_type = row[2]
        stored_version = row[3]
        if stored_type != last_type or stored_version != last_version:
            last_type, last_version = stored_type, stored_version
            decode = stored_version > highest_from.get(stored_type, 0) and (
                handled is None or stored_type in handled)
            if decode:
                decoder = decoders.get((stored_type, stored_version))
                if decoder is None:
                    decoder = decoders[(stored_type, stored_version)] = (
                        registry.text_decoder_for(stored_type, stored_version) if text
                        else registry.decoder_for(stored_type, stored_version))
        if decode:
            stored = row[4]
            try:
                event = decoder(stored)
            except Exception:
                # The careful path reports malformed data precisely.
                data = stored if isinstance(stored, dict) else loads(stored)
                event = registry.decode(stored_type, stored_version, data)
        else:
            event = _decode_other(store, row, handled)
            if event is None:
                if kept is None:
                    kept = list(rows[:len(events)])  # every row before this one was kept
                continue
        if kept is not None:
            kept.append(row)
        append(event)
    return EventBatch(events, rows=rows if kept is None else kept)


def decode_type_page(store: EventStore, event_type: str, rows: Sequence[TypeLogRow],
                     handled: frozenset[str] | None = None) -> EventBatch:
    """As :func:`decode_log_page`, for rows of :meth:`LogReader.read_type_log` (every one
    of stored type ``event_type``): a page whose rows all have one schema version, which
    is decoded as it is, takes one pass of the type's decoder; any other page (an upcast,
    a type that is not handled, a row that does not decode) is decoded row by row as
    :func:`decode_log_page` does it, with the same results and errors."""
    if rows and type(rows[0][3]) is not dict:  # JSON text (the decoders' input)
        version = rows[0][2]
        if (version > store.upcasters.highest_from.get(event_type, 0)
                and (handled is None or event_type in handled)
                and list(map(_TYPE_VERSION, rows)).count(version) == len(rows)):
            try:
                decode = store.registry.text_decoder_for(event_type, version)
                events = list(map(decode, map(_TYPE_DATA, rows)))
            except Exception:
                pass  # decoded again below, where malformed data is reported precisely
            else:
                return EventBatch(events, rows=rows, stored_versions=False)
    return decode_log_page(store, [(p, s, event_type, v, d) for p, s, v, d in rows], handled)


def _decode_uniform(store: EventStore, rows: Sequence[LogRow],
                    handled: frozenset[str] | None) -> list[DomainEvent] | None:
    """The events of a page whose rows are all of one stored type and schema version, in
    one pass of the type's decoder (the common page: no per-row checks); None for any
    other page, or when a row does not decode, so that the careful loop takes it."""
    stored_type, stored_version = rows[0][2], rows[0][3]
    if stored_version <= store.upcasters.highest_from.get(stored_type, 0) or (
            handled is not None and stored_type not in handled):
        return None
    for row in rows:
        if row[2] != stored_type or row[3] != stored_version:
            return None
    try:
        decode = store.registry.text_decoder_for(stored_type, stored_version)
        return list(map(decode, map(_DATA, rows)))
    except Exception:
        return None


_DATA = operator.itemgetter(4)
_TYPE_VERSION = operator.itemgetter(2)
_TYPE_DATA = operator.itemgetter(3)


def _decode_other(store: EventStore, row: LogRow, handled: frozenset[str] | None
                  ) -> DomainEvent | None:
    """A row that is upcast, or left out (None) because its type is not handled."""
    stored_type, stored_version, stored = row[2], row[3], row[4]
    if stored_version > store.upcasters.highest_from.get(stored_type, 0):
        return None  # not upcast, so not handled
    data: dict[str, Any] = stored if isinstance(stored, dict) else orjson.loads(stored)
    event_type, version, data = store.upcasters.upcast(stored_type, stored_version, data)
    if handled is not None and event_type not in handled:
        return None
    return store.registry.decode(event_type, version, data)


__all__ = ["EventBatch", "decode_log_page", "decode_type_page"]
