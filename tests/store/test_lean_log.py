"""The lean read of the global log (``read_log``) and its envelopes (``log_envelopes``):
what projections read when they catch up."""

from __future__ import annotations

import gc
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from invariant.domain import DomainEvent, InvariantError, SerializationError
from invariant.store import (
    AppendRequest,
    Commit,
    DetailsNotLoaded,
    EventEnvelope,
    EventRegistry,
    EventStore,
    LogReader,
    NewEvent,
    StreamState,
    Upcasters,
)


@dataclass(frozen=True)
class Credited(DomainEvent):
    amount: int


@dataclass(frozen=True)
class Renamed(DomainEvent):
    name: str
    schema_version = 2


def _event(event_type: str, version: int, data: dict[str, Any], meta: dict[str, Any] | None = None
           ) -> NewEvent:
    return NewEvent(uuid.uuid4(), event_type, version, data, meta or {})


async def _fill(storage: Any) -> None:
    await storage.commit(Commit(appends=(
        AppendRequest("acct-1", StreamState.NO_STREAM, (
            _event("Credited", 1, {"amount": 5}, {"correlation_id": "c-1"}),
            _event("Renamed", 1, {"title": "old"}),
        )),
        AppendRequest("acct-2", StreamState.NO_STREAM, (_event("Credited", 1, {"amount": 7}),)),
    )))
    await storage.commit(Commit(appends=(
        AppendRequest("other-1", StreamState.NO_STREAM, (_event("Noise", 1, {"x": [1, 2]}),)),
        AppendRequest("acct-1", 2, (_event("Credited", 1, {"amount": 11}),)),
    )))


def _data(value: Any) -> Any:
    import orjson

    return value if isinstance(value, dict) else orjson.loads(value)


async def test_read_log_returns_what_read_all_returns_lean(any_storage: Any) -> None:
    await _fill(any_storage)
    assert isinstance(any_storage, LogReader)
    for query in ({}, {"after_position": 2}, {"limit": 2}, {"after_position": 1, "limit": 3},
                  {"event_types": ["Credited"]}, {"event_types": ["Credited", "Noise"],
                                                  "after_position": 1, "limit": 2},
                  {"event_types": []}, {"after_position": 5}):
        records = await any_storage.read_all(**query)
        rows = await any_storage.read_log(**query)
        assert [(r[0], r[1], r[2], r[3], _data(r[4])) for r in rows] == [
            (r.position, r.stream_id, r.event_type, r.schema_version, r.data) for r in records
        ], query


async def test_read_type_log_returns_read_log_of_one_type_without_the_type(
    any_storage: Any,
) -> None:
    await _fill(any_storage)
    for event_type in ("Credited", "Renamed", "Noise", "Missing"):
        for query in ({}, {"after_position": 2}, {"limit": 1}, {"after_position": 1, "limit": 2},
                      {"after_position": 5}):
            rows = await any_storage.read_log(event_types=[event_type], **query)
            typed = await any_storage.read_type_log(event_type, **query)
            assert [(r[0], r[1], r[2], _data(r[3])) for r in typed] == [
                (r[0], r[1], r[3], _data(r[4])) for r in rows], (event_type, query)


async def test_read_log_data_cannot_change_what_is_stored(any_storage: Any) -> None:
    await _fill(any_storage)
    [row] = await any_storage.read_log(event_types=["Noise"])
    data = _data(row[4])
    data["x"].append(3)
    if isinstance(row[4], dict):
        row[4]["x"].append(4)
    [again] = await any_storage.read_log(event_types=["Noise"])
    assert _data(again[4]) == {"x": [1, 2]}


def _store(storage: Any = None) -> EventStore:
    upcasters = Upcasters()
    upcasters.register("Renamed", 1, lambda d: {"name": d["title"]})
    return EventStore(storage, EventRegistry([Credited, Renamed]), upcasters)


async def test_lean_envelopes_carry_the_decoded_event_and_its_place_in_the_log(
    any_storage: Any,
) -> None:
    await _fill(any_storage)
    store = _store(any_storage)
    rows = await any_storage.read_log(event_types=["Credited", "Renamed"])
    lean = store.log_envelopes(rows)
    full = [store.envelope(r)
            for r in await any_storage.read_all(event_types=["Credited", "Renamed"])]
    assert [(e.event, e.stream_id, e.position, e.event_type, e.schema_version,
             e.stored_schema_version) for e in lean] == [
        (e.event, e.stream_id, e.position, e.event_type, e.schema_version,
         e.stored_schema_version) for e in full
    ]
    # the upcast one: stored as Renamed v1 {"title"}, read as Renamed v2 {"name"}
    assert lean[1].event == Renamed("old") and lean[1].stored_schema_version == 1
    assert all(e.has_details for e in full) and not any(e.has_details for e in lean)


@pytest.mark.parametrize("field", ["event_id", "stream_version", "metadata", "recorded_at",
                                   "correlation_id", "causation_id"])
def test_a_lean_envelope_refuses_the_fields_it_was_not_read_with(field: str) -> None:
    [envelope] = _store().log_envelopes([(1, "acct-1", "Credited", 1, '{"amount": 3}')])
    assert envelope.event == Credited(3)
    with pytest.raises(DetailsNotLoaded, match="metadata" if "tion" in field else field):
        getattr(envelope, field)
    # one of invariant's errors; a handler's `except Exception` that swallows it changes
    # nothing (tests/projections/test_lean_pages.py: the page is read again all the same)
    assert issubclass(DetailsNotLoaded, InvariantError)


def test_lean_envelopes_compare_and_print_without_their_details() -> None:
    store = _store()
    a, b = store.log_envelopes([(1, "acct-1", "Credited", 1, '{"amount": 3}')] * 2)
    assert a == b and a is not b and hash(a) == hash(b)
    assert "details not loaded" in repr(a)
    with pytest.raises(DetailsNotLoaded):
        a._replace(position=2)


def test_full_envelopes_behave_as_the_named_tuple_they_were() -> None:
    from datetime import UTC, datetime

    when = datetime.now(UTC)
    event_id = uuid.uuid4()
    e = EventEnvelope(Credited(1), event_id, "acct-1", 3, 9, "Credited", 1, 1,
                      {"causation_id": "x"}, when)
    assert (e.event_id, e.stream_version, e.recorded_at, e.causation_id) == (event_id, 3,
                                                                             when, "x")
    moved = e._replace(stream_id="acct-2")
    assert moved.stream_id == "acct-2" and moved.position == 9 and moved != e
    assert moved == EventEnvelope(Credited(1), event_id, "acct-2", 3, 9, "Credited", 1, 1,
                                  {"causation_id": "x"}, when)
    with pytest.raises(ValueError, match="nope"):
        e._replace(nope=1)
    match e:
        case EventEnvelope(Credited(amount=1), _, "acct-1"):
            pass
        case _:
            pytest.fail("positional patterns match as on the named tuple")
    assert "stream_version=3" in repr(e)


def _type_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(p, s, v, d) for p, s, _, v, d in rows]


@pytest.mark.parametrize("rows", [
    [(1, "acct-1", "Credited", 1, '{"amount": 3}'), (4, "acct-2", "Credited", 1, '{"amount": 4}')],
    [(1, "acct-1", "Renamed", 2, '{"name": "a"}'), (2, "acct-1", "Renamed", 1, '{"title": "b"}')],
    [(1, "acct-1", "Renamed", 1, '{"title": "b"}')],
    [],
], ids=["uniform", "one-upcast", "all-upcast", "empty"])
@pytest.mark.parametrize("handled", [None, frozenset({"Credited", "Renamed"}),
                                     frozenset({"Other"})])
def test_a_page_of_one_type_decodes_as_the_same_page_with_its_type(
    rows: list[tuple[Any, ...]], handled: frozenset[str] | None,
) -> None:
    from invariant.store.batch import decode_log_page, decode_type_page

    store = _store()
    event_type = rows[0][2] if rows else "Credited"
    typed = decode_type_page(store, event_type, _type_rows(rows), handled)
    full = decode_log_page(store, rows, handled)
    assert typed.events == full.events
    assert (typed.positions, typed.stream_ids) == (full.positions, full.stream_ids)
    assert [(e.event, e.position, e.stream_id, e.event_type, e.schema_version,
             e.stored_schema_version) for e in typed] == [
        (e.event, e.position, e.stream_id, e.event_type, e.schema_version,
         e.stored_schema_version) for e in full]


@pytest.mark.parametrize(("bad", "error"), [
    ((3, "acct-1", "Credited", 1, '{"other": 3}'), "lacks"),
    ((3, "acct-1", "Credited", 1, "not json"), "invalid literal"),
    ((3, "acct-1", "Credited", 4, '{"amount": 3}'), "v4"),
])
def test_a_bad_row_of_a_one_type_page_fails_as_it_fails_with_its_type(
    bad: tuple[Any, ...], error: str,
) -> None:
    from invariant.store.batch import decode_log_page, decode_type_page

    store = _store()
    rows = [(1, "acct-1", "Credited", 1, '{"amount": 3}'), bad,
            (5, "acct-1", "Credited", 1, '{"amount": 5}')]
    with pytest.raises(Exception, match=error) as full:
        decode_log_page(store, rows)
    with pytest.raises(type(full.value)) as typed:
        decode_type_page(store, "Credited", _type_rows(rows))
    assert str(typed.value) == str(full.value)


def test_malformed_or_unknown_events_fail_as_decode_event_fails() -> None:
    store = _store()
    with pytest.raises(SerializationError, match="lacks"):
        store.log_envelopes([(1, "acct-1", "Credited", 1, '{"other": 3}')])
    with pytest.raises(SerializationError, match="unknown event type"):
        store.log_envelopes([(1, "acct-1", "Nope", 1, "{}")])
    with pytest.raises(SerializationError, match="v3"):
        store.log_envelopes([(1, "acct-1", "Renamed", 3, '{"name": "x"}')])


@pytest.mark.usefixtures("gc_state")
def test_decoding_leaves_the_garbage_collector_as_it_was_even_on_errors() -> None:
    store = _store()
    gc.enable()
    store.log_envelopes([(1, "acct-1", "Credited", 1, '{"amount": 3}')])
    assert gc.isenabled()
    with pytest.raises(SerializationError):
        store.log_envelopes([(1, "acct-1", "Credited", 1, "{}")])
    assert gc.isenabled()
    gc.disable()  # an application that runs without it keeps it off
    store.log_envelopes([(1, "acct-1", "Credited", 1, '{"amount": 3}')])
    assert not gc.isenabled()


@pytest.mark.postgres
async def test_postgres_reads_see_what_was_committed_before_they_were_asked(
    pg_schema: str,
) -> None:
    from invariant.store.postgres import PostgresStorage
    from tests.conftest import POSTGRES_DSN

    reader = PostgresStorage(POSTGRES_DSN, schema=pg_schema)
    writer = PostgresStorage(POSTGRES_DSN, schema=pg_schema)
    await reader.setup()
    try:
        await _fill(writer)
        assert len(await reader.read_all()) == 5  # the reader now knows a safe head of 5
        await writer.commit(Commit(appends=(AppendRequest(
            "acct-3", StreamState.NO_STREAM, (_event("Credited", 1, {"amount": 1}),)),)))

        assert [r.position for r in await reader.read_all(after_position=2)] == [3, 4, 5, 6]
        assert [r[0] for r in await reader.read_log(after_position=2)] == [3, 4, 5, 6]
        assert [r[0] for r in await reader.read_log(after_position=2, limit=2)] == [3, 4]
        assert await reader.read_log(limit=0) == []
        assert [r[0] for r in await reader.read_type_log("Credited", after_position=2)] == [
            3, 5, 6]
    finally:
        await reader.close()
        await writer.close()
