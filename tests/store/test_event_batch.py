"""EventBatch: a page of the log decoded for projections, with envelopes made on demand."""

from __future__ import annotations

import gc
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from invariant.domain import DomainEvent, SerializationError
from invariant.store import (
    AppendRequest,
    Commit,
    DetailsNotLoaded,
    EventRegistry,
    EventStore,
    NewEvent,
    StreamState,
    Upcasters,
)
from invariant.store.batch import EventBatch, decode_log_page
from tests.store.test_lean_log import Credited, Renamed


@dataclass(frozen=True)
class Closed(DomainEvent):
    reason: str
    schema_version = 2


def _store(storage: Any = None) -> EventStore:
    upcasters = Upcasters()
    upcasters.register("Renamed", 1, lambda d: {"name": d["title"]})
    # An old type that is now Closed: stored "Ended" v1 rows are read as Closed v2.
    upcasters.register("Ended", 1, lambda d: {"reason": d["why"]}, rename_to="Closed")
    return EventStore(storage, EventRegistry([Credited, Renamed, Closed]), upcasters)


def _new(event_type: str, version: int, data: dict[str, Any]) -> NewEvent:
    return NewEvent(uuid.uuid4(), event_type, version, data, {})


ROWS = [
    (1, "acct-1", "Credited", 1, '{"amount": 5}'),
    (2, "acct-1", "Renamed", 1, '{"title": "old"}'),
    (3, "acct-2", "Credited", 1, '{"amount": 7}'),
    (4, "acct-2", "Noise", 1, '{"x": 1}'),
    (5, "acct-3", "Ended", 1, '{"why": "moved"}'),
    (6, "acct-1", "Credited", 1, '{"amount": 11}'),
]


def test_columns_and_envelopes_describe_the_same_events() -> None:
    store = _store()
    batch = decode_log_page(store, ROWS[:3])
    assert batch.events == [Credited(5), Renamed("old"), Credited(7)]
    assert batch.stream_ids == ["acct-1", "acct-1", "acct-2"]
    assert batch.positions == [1, 2, 3]
    assert len(batch) == 3 and bool(batch)
    assert [(e.event, e.stream_id, e.position, e.event_type, e.schema_version,
             e.stored_schema_version) for e in batch] == [
        (Credited(5), "acct-1", 1, "Credited", 1, 1),
        (Renamed("old"), "acct-1", 2, "Renamed", 2, 1),  # upcast from v1
        (Credited(7), "acct-2", 3, "Credited", 1, 1),
    ]
    assert batch[1].event == Renamed("old") and batch[-1].position == 3
    assert [e.position for e in batch[1:]] == [2, 3]
    assert batch.envelopes is batch.envelopes  # made once
    assert list(batch) == store.log_envelopes(ROWS[:3])
    assert "positions 1..3" in repr(batch)


def test_envelopes_are_lean() -> None:
    [envelope] = decode_log_page(_store(), ROWS[:1])
    assert not envelope.has_details
    with pytest.raises(DetailsNotLoaded):
        _ = envelope.metadata


def test_handled_types_keep_their_rows_and_leave_the_others_undecoded() -> None:
    store = _store()
    # Noise is not registered at all: it is skipped without being decoded.
    batch = decode_log_page(store, ROWS, frozenset({"Credited", "Closed"}))
    assert batch.events == [Credited(5), Credited(7), Closed("moved"), Credited(11)]
    assert batch.positions == [1, 3, 5, 6]
    assert batch.stream_ids == ["acct-1", "acct-2", "acct-3", "acct-1"]
    assert [e.event_type for e in batch] == ["Credited", "Credited", "Closed", "Credited"]
    # an upcast into a type that is not handled is left out too
    only_renamed = decode_log_page(store, ROWS, frozenset({"Renamed"}))
    assert only_renamed.events == [Renamed("old")] and only_renamed.positions == [2]
    assert not decode_log_page(store, ROWS, frozenset({"Other"}))


def test_rows_with_decoded_objects_are_taken_as_they_are() -> None:
    rows = [(1, "acct-1", "Credited", 1, {"amount": 5}), (2, "acct-1", "Renamed", 1,
                                                         {"title": "t"})]
    assert decode_log_page(_store(), rows).events == [Credited(5), Renamed("t")]
    # a page whose rows are of both kinds decodes every row all the same
    mixed = [(1, "acct-1", "Credited", 1, '{"amount": 5}'), (2, "acct-1", "Credited", 1,
                                                            {"amount": 6})]
    assert decode_log_page(_store(), mixed).events == [Credited(5), Credited(6)]
    assert decode_log_page(_store(), mixed[::-1]).events == [Credited(6), Credited(5)]


def test_malformed_or_unknown_events_fail_precisely() -> None:
    store = _store()
    with pytest.raises(SerializationError, match="lacks"):
        decode_log_page(store, [(1, "acct-1", "Credited", 1, '{"other": 3}')])
    with pytest.raises(SerializationError, match="unknown event type"):
        decode_log_page(store, [(1, "acct-1", "Nope", 1, "{}")])
    with pytest.raises(SerializationError, match="v3"):
        decode_log_page(store, [(1, "acct-1", "Renamed", 3, '{"name": "x"}')])


def test_a_page_of_one_type_with_one_malformed_row_fails_as_a_mixed_page_does() -> None:
    # Such a page is decoded in one pass of its type's decoder; a row that fails it sends
    # the whole page to the careful loop, which names the problem.
    rows = [(p, "acct-1", "Credited", 1, f'{{"amount": {p}}}') for p in range(1, 6)]
    assert decode_log_page(_store(), rows).events == [Credited(p) for p in range(1, 6)]
    rows[3] = (4, "acct-1", "Credited", 1, '{"sum": 4}')
    with pytest.raises(SerializationError, match="Credited data lacks field"):
        decode_log_page(_store(), rows)
    rows[3] = (4, "acct-1", "Credited", 1, '{"amount": 4')
    with pytest.raises(orjson.JSONDecodeError):
        decode_log_page(_store(), rows)


@pytest.mark.usefixtures("gc_state")
def test_decoding_and_envelopes_leave_the_collector_as_it_was() -> None:
    gc.enable()
    batch = decode_log_page(_store(), ROWS[:3])
    list(batch)
    assert gc.isenabled()
    with pytest.raises(SerializationError):
        decode_log_page(_store(), [(1, "acct-1", "Credited", 1, "{}")])
    assert gc.isenabled()


def test_a_batch_of_full_envelopes_has_the_same_columns() -> None:
    full = [_store().envelope(r) for r in _records()]
    batch = EventBatch.of(full)
    assert batch.events == [Credited(5), Credited(7)]
    assert batch.stream_ids == ["acct-1", "acct-2"] and batch.positions == [1, 2]
    assert list(batch) == full and all(e.has_details for e in batch)
    assert repr(EventBatch.of([])) == "EventBatch(0 events, empty)"


def _records() -> list[Any]:
    from datetime import UTC, datetime

    from invariant.store import RecordedEvent

    now = datetime.now(UTC)
    return [RecordedEvent(uuid.uuid4(), "acct-1", 1, 1, "Credited", 1, {"amount": 5}, {}, now),
            RecordedEvent(uuid.uuid4(), "acct-2", 1, 2, "Credited", 1, {"amount": 7}, {}, now)]


async def test_pages_read_from_every_adapter_decode_alike(any_storage: Any) -> None:
    await any_storage.commit(Commit(appends=(
        AppendRequest("acct-1", StreamState.NO_STREAM, (
            _new("Credited", 1, {"amount": 5}), _new("Renamed", 1, {"title": "old"}),
            _new("Ended", 1, {"why": "w"}))),
        AppendRequest("acct-2", StreamState.NO_STREAM, (_new("Noise", 1, {"x": 1}),)),
    )))
    store = _store(any_storage)
    rows = await any_storage.read_log()
    batch = decode_log_page(store, rows, frozenset({"Credited", "Renamed", "Closed"}))
    assert batch.events == [Credited(5), Renamed("old"), Closed("w")]
    assert batch.stream_ids == ["acct-1"] * 3
    full = [store.envelope(r) for r in await any_storage.read_all()
            if r.event_type != "Noise"]
    assert batch.positions == [e.position for e in full]
