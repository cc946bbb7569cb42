"""The stream catalog operators browse: categories with their counts, streams found by a
part of their id (``%`` and ``_`` taken literally), and the events of one flow, on every
adapter."""

from __future__ import annotations

import uuid
from typing import Any

from invariant.store import (
    AppendRequest,
    CategoryCount,
    Commit,
    NewEvent,
    StreamCatalog,
    StreamState,
    StreamSummary,
)


def event(correlation: str | None = None) -> NewEvent:
    meta = {} if correlation is None else {"correlation_id": correlation}
    return NewEvent(uuid.uuid4(), "Happened", 1, {"n": 1}, meta)


async def append(storage: Any, stream: str, *events: NewEvent) -> None:
    await storage.commit(Commit(appends=[AppendRequest(stream, StreamState.ANY, list(events))]))


async def test_categories_count_their_streams_and_events(any_storage: Any) -> None:
    await append(any_storage, "order-1", event(), event())
    await append(any_storage, "order-2", event())
    await append(any_storage, "cart-9", event())
    assert isinstance(any_storage, StreamCatalog)
    assert await any_storage.categories() == [CategoryCount("cart", 1, 1),
                                              CategoryCount("order", 2, 3)]


async def test_streams_are_found_by_a_part_of_their_id_with_wildcards_taken_literally(
        any_storage: Any) -> None:
    for stream in ("order-a_1", "order-ab1", "order-a%1", "cart-a_1x"):
        await append(any_storage, stream, event())
    await append(any_storage, "order-a_1", event())
    assert await any_storage.find_streams("a_1") == [StreamSummary("cart-a_1x", 1),
                                                     StreamSummary("order-a_1", 2)]
    assert await any_storage.find_streams("a%") == [StreamSummary("order-a%1", 1)]
    assert await any_storage.find_streams("order", limit=2) == [
        StreamSummary("order-a%1", 1), StreamSummary("order-a_1", 2)]


async def test_a_flow_is_every_event_carrying_its_correlation_id_in_order(
        any_storage: Any) -> None:
    await append(any_storage, "order-1", event("flow-1"), event("flow-2"))
    await append(any_storage, "payment-1", event("flow-1"))
    await append(any_storage, "order-1", event())
    flow = await any_storage.read_correlated("flow-1")
    assert [(e.stream_id, e.stream_version) for e in flow] == [("order-1", 1), ("payment-1", 1)]
    assert [e.position for e in flow] == sorted(e.position for e in flow)
    assert await any_storage.read_correlated("flow-9") == []
