"""``EventStore.history_between``: a stream's events recorded between two times, on every
adapter, bounds included, upcast, and refused bounds that could mean two things."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from examples.bank.domain import AccountOpened, MoneyDeposited, MoneyWithdrawn
from examples.bank.wiring import bank_store
from invariant.domain import ValidationError
from invariant.store import AppendRequest, Commit, EventStore, NewEvent
from tests.money import usd

STREAM = "account-ACC-H"


async def seed(storage: Any) -> tuple[EventStore, list[datetime]]:
    """Three events of STREAM ten minutes apart (and one of another stream between them):
    the store and the three recording times."""
    store, clock = bank_store(storage), storage.clock
    times = []
    for event in (AccountOpened("USER-H", usd(100)), MoneyDeposited(usd(50)),
                  MoneyWithdrawn(usd(30))):
        await store.append(STREAM, [event])
        times.append(clock())
        clock.advance(minutes=5)
        await store.append("account-OTHER", [MoneyDeposited(usd(1))])
        clock.advance(minutes=5)
    return store, times


def kinds(history: list[Any]) -> list[str]:
    return [type(e.event).__name__ for e in history]


async def test_only_events_recorded_between_the_bounds_are_returned(any_storage: Any) -> None:
    store, (t1, t2, _t3) = await seed(any_storage)

    history = await store.history_between(STREAM, t1 + timedelta(minutes=1),
                                          t2 + timedelta(minutes=1))

    assert kinds(history) == ["MoneyDeposited"]
    assert [e.stream_id for e in history] == [STREAM]
    assert history[0].recorded_at == t2


async def test_both_bounds_are_included(any_storage: Any) -> None:
    store, (t1, t2, t3) = await seed(any_storage)

    assert kinds(await store.history_between(STREAM, t2, t3)) == [
        "MoneyDeposited", "MoneyWithdrawn"]
    assert kinds(await store.history_between(STREAM, t1, t1)) == ["AccountOpened"]


async def test_bounds_in_another_timezone_mean_the_same_instants(any_storage: Any) -> None:
    store, (t1, t2, _t3) = await seed(any_storage)
    plus_two = timezone(timedelta(hours=2))

    history = await store.history_between(STREAM, t1.astimezone(plus_two),
                                          t2.astimezone(plus_two))

    assert kinds(history) == ["AccountOpened", "MoneyDeposited"]


async def test_a_range_with_nothing_in_it_is_empty(any_storage: Any) -> None:
    store, (_t1, _t2, t3) = await seed(any_storage)

    assert await store.history_between(STREAM, t3 + timedelta(seconds=1),
                                       t3 + timedelta(days=1)) == []
    assert await store.history_between("account-NOBODY", t3 - timedelta(days=1), t3) == []


async def test_stored_events_of_an_older_schema_are_upcast(any_storage: Any) -> None:
    store, (t1, _t2, _t3) = await seed(any_storage)
    legacy = NewEvent(uuid.uuid4(), "MoneyDeposited", 1, {"amount": 700})
    await any_storage.commit(Commit(appends=(AppendRequest(STREAM, 3, (legacy,)),)))

    history = await store.history_between(STREAM, t1, any_storage.clock())

    assert history[-1].event == MoneyDeposited(usd(700))
    assert history[-1].schema_version == 2


@pytest.mark.parametrize("which", ["start", "end"])
async def test_a_naive_bound_is_refused_naming_it(any_storage: Any, which: str) -> None:
    store, (t1, t2, _t3) = await seed(any_storage)
    bounds = {"start": t1, "end": t2}
    bounds[which] = bounds[which].replace(tzinfo=None)

    with pytest.raises(ValidationError) as caught:
        await store.history_between(STREAM, bounds["start"], bounds["end"])

    assert [(e.field, e.code) for e in caught.value.errors] == [(which, "naive_datetime")]


async def test_an_end_before_the_start_is_refused(any_storage: Any) -> None:
    store, (t1, t2, _t3) = await seed(any_storage)

    with pytest.raises(ValidationError, match="must not be before start"):
        await store.history_between(STREAM, t2, t1)

