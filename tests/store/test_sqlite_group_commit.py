"""SQLite group commit: many commands share a durable transaction, each keeps its own outcome."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from invariant.domain.errors import ConcurrencyError, ConfigurationError, DuplicateEventError
from invariant.store import Commit, NewEvent, SQLiteStorage, StreamState
from invariant.store.sqlite import batch_insert
from invariant.store.sqlite import writer as writer_module
from invariant.store.sqlite.commits import Job
from invariant.testing.event_storage_contract import append, new_event


@pytest.fixture(autouse=True, params=["json", "no json"])
def version_check(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batched one-event commits check their streams' versions in one statement when
    SQLite has its JSON functions, else row by row: every test runs both ways."""
    monkeypatch.setattr(batch_insert, "_HAS_JSON",
                        request.param == "json" and batch_insert._HAS_JSON)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(tmp_path / "events.db")
    await storage.setup()
    yield storage
    await storage.close()


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the writer runs from now on."""
    sizes: list[int] = []
    original = writer_module._run_batch

    def counting(conn: sqlite3.Connection, batch: list[Job]) -> None:
        sizes.append(len(batch))
        original(conn, batch)

    monkeypatch.setattr(writer_module, "_run_batch", counting)
    return sizes


async def test_concurrent_commits_share_transactions(
    storage: SQLiteStorage, batch_sizes: list[int]
) -> None:
    batches = batch_sizes
    await asyncio.gather(
        *[storage.commit(append(f"s{i}-1", StreamState.NO_STREAM, new_event(i)))
          for i in range(64)]
    )
    assert sum(batches) == 64
    assert max(batches) > 1, "concurrent commits should have been grouped"
    assert len(await storage.read_all(limit=100)) == 64


async def test_a_refused_commit_in_a_batch_does_not_affect_the_others(
    storage: SQLiteStorage,
) -> None:
    await storage.commit(append("taken-1", StreamState.NO_STREAM, new_event(0)))
    results = await asyncio.gather(
        storage.commit(append("a-1", StreamState.NO_STREAM, new_event(1))),
        storage.commit(append("taken-1", StreamState.NO_STREAM, new_event(2))),
        storage.commit(append("b-1", StreamState.NO_STREAM, new_event(3))),
        return_exceptions=True,
    )
    assert isinstance(results[1], ConcurrencyError)
    assert (results[1].expected, results[1].actual) == (0, 1)
    assert not isinstance(results[0], BaseException)
    assert not isinstance(results[2], BaseException)
    assert [e.stream_id for e in await storage.read_all()] == ["taken-1", "a-1", "b-1"]


async def test_a_commit_failing_while_writing_is_isolated_from_its_batch(
    storage: SQLiteStorage,
) -> None:
    stored = new_event(0)
    await storage.commit(append("x-1", StreamState.NO_STREAM, stored))
    clash = NewEvent(stored.event_id, "Happened", 1, {"n": 9})
    results = await asyncio.gather(
        storage.commit(append("a-1", StreamState.NO_STREAM, new_event(1))),
        storage.commit(append("b-1", StreamState.NO_STREAM, new_event(2), clash)),
        storage.commit(append("c-1", StreamState.NO_STREAM, new_event(3))),
        return_exceptions=True,
    )
    assert isinstance(results[1], DuplicateEventError)
    assert str(stored.event_id) in str(results[1])
    assert [e.stream_id for e in await storage.read_all()] == ["x-1", "a-1", "c-1"]
    assert await storage.read_stream("b-1") == []
    assert len(await storage.read_outbox(limit=100)) == 3


async def test_durability_settings_are_wal_and_full_sync(storage: SQLiteStorage) -> None:
    conn = storage._reader()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


async def test_a_storage_is_bound_to_the_loop_it_commits_on(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "events.db")
    await storage.setup()
    other_loop_error: list[BaseException] = []

    def commit_from_another_loop() -> None:
        try:
            asyncio.run(storage.commit(append("s-1", 0, new_event(1))))
        except BaseException as exc:
            other_loop_error.append(exc)

    await asyncio.get_running_loop().run_in_executor(None, commit_from_another_loop)
    assert isinstance(other_loop_error[0], ConfigurationError)
    await storage.close()


def test_an_in_memory_sqlite_database_is_refused_with_advice() -> None:
    with pytest.raises(ConfigurationError, match="MemoryStorage"):
        SQLiteStorage(":memory:")


async def test_many_concurrent_commands_each_see_their_own_result(
    storage: SQLiteStorage,
) -> None:
    ids = [uuid.uuid4() for _ in range(200)]
    results = await asyncio.gather(*[
        storage.commit(append(f"s{i % 20}-1", StreamState.ANY,
                              NewEvent(ids[i], "Happened", 1, {"n": i})))
        for i in range(200)
    ])
    positions = [r.position for r in results]
    assert len(set(positions)) == 200
    stored = {e.event_id: e.position for e in await storage.read_all(limit=1000)}
    assert [stored[i] for i in ids] == positions


async def test_a_failing_flush_fails_its_commits_instead_of_stranding_them(
    storage: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invariant.domain.errors import StoreError

    def broken(conn: sqlite3.Connection, batch: list[Job]) -> None:
        raise RuntimeError("simulated bug in the writer")

    monkeypatch.setattr(writer_module, "_run_batch", broken)
    loop = asyncio.get_running_loop()
    handler_errors: list[object] = []
    loop.set_exception_handler(lambda _loop, context: handler_errors.append(context))
    outcomes = await asyncio.wait_for(asyncio.gather(
        *[storage.commit(append(f"s{i}-1", StreamState.NO_STREAM, new_event(i)))
          for i in range(3)], return_exceptions=True), timeout=5)
    assert all(isinstance(o, StoreError) and "simulated bug" in str(o) for o in outcomes)
    assert handler_errors, "the bug itself is reported to the loop, not swallowed"


# One-event commits with an exact expectation (the common command) are inserted together,
# in one executemany per batch; these attack that path.


async def _commit_all(storage: SQLiteStorage, commits: Sequence[Commit]) -> list[Any]:
    """Each commit's result, or the error it was refused with."""
    return await asyncio.gather(*[storage.commit(c) for c in commits], return_exceptions=True)


async def _positions_by_event_id(storage: SQLiteStorage) -> dict[uuid.UUID, int]:
    return {e.event_id: e.position for e in await storage.read_all(limit=1000)}


async def test_batched_one_event_commits_each_get_the_position_of_their_own_event(
    storage: SQLiteStorage, batch_sizes: list[int]
) -> None:
    for i in range(30):
        await storage.commit(append(f"s{i}-1", StreamState.NO_STREAM, new_event(i)))
    batch_sizes.clear()
    events = [new_event(100 + i) for i in range(60)]
    commits = [append(f"s{i}-1", 1, events[i]) if i < 30
               else append(f"n{i}-1", StreamState.NO_STREAM, events[i]) for i in range(60)]
    results = await _commit_all(storage, commits)
    assert max(batch_sizes) == 60, "all sixty should have shared one batch"
    stored = await _positions_by_event_id(storage)
    for event, result in zip(events, results, strict=True):
        assert not isinstance(result, BaseException), result
        assert result.position == stored[event.event_id]
    assert [r.versions for r in results[:2]] == [{"s0-1": 2}, {"s1-1": 2}]
    assert len(await storage.read_outbox(limit=1000)) == 90


async def test_two_batched_commits_expecting_the_same_version_of_a_stream_one_wins(
    storage: SQLiteStorage,
) -> None:
    await storage.commit(append("hot-1", StreamState.NO_STREAM, new_event(0)))
    mine, theirs = new_event(1), new_event(2)
    others = [new_event(10 + i) for i in range(5)]
    results = await _commit_all(storage, [
        append("hot-1", 1, mine), *[append(f"o{i}-1", StreamState.NO_STREAM, e)
                                    for i, e in enumerate(others)],
        append("hot-1", 1, theirs),
    ])
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[-1], ConcurrencyError)
    assert (results[-1].stream_id, results[-1].expected, results[-1].actual) == ("hot-1", 1, 2)
    stored = await _positions_by_event_id(storage)
    assert theirs.event_id not in stored
    assert [e.event_id for e in await storage.read_stream("hot-1")][1] == mine.event_id
    for event, result in zip(others, results[1:-1], strict=True):
        assert result.position == stored[event.event_id]


@pytest.mark.parametrize("clash", ["stale expectation", "expectation ahead of the stream",
                                   "duplicate event id"])
async def test_one_failing_commit_in_a_batch_of_one_event_commits_fails_alone(
    storage: SQLiteStorage, clash: str
) -> None:
    stored_event = new_event(0)
    await storage.commit(append("x-1", StreamState.NO_STREAM, stored_event))
    bad = {
        "stale expectation": append("x-1", StreamState.NO_STREAM, new_event(1)),
        # version 5 of a stream at version 1: no row is in its way, only the check
        "expectation ahead of the stream": append("x-1", 4, new_event(1)),
        "duplicate event id": append("y-1", StreamState.NO_STREAM,
                                     NewEvent(stored_event.event_id, "Happened", 1, {"n": 1})),
    }[clash]
    good = [new_event(10 + i) for i in range(6)]
    commits = [append(f"g{i}-1", StreamState.NO_STREAM, e) for i, e in enumerate(good)]
    results = await _commit_all(storage, [*commits[:3], bad, *commits[3:]])
    expected_error = DuplicateEventError if clash == "duplicate event id" else ConcurrencyError
    assert isinstance(results[3], expected_error)
    assert await storage.stream_version("x-1") == 1
    stored = await _positions_by_event_id(storage)
    assert len(stored) == 7
    for event, result in zip(good, [*results[:3], *results[4:]], strict=True):
        assert result.position == stored[event.event_id]
    assert len(await storage.read_outbox(limit=100)) == 7


async def test_one_event_commits_batch_with_other_kinds_of_commit(
    storage: SQLiteStorage,
) -> None:
    from invariant.store import OutboxMessage, SnapshotRecord

    await storage.commit(append("acc-1", StreamState.NO_STREAM, new_event(0)))
    single = [new_event(1 + i) for i in range(4)]
    pair = [new_event(20), new_event(21)]
    snapshot = SnapshotRecord("acc-1", "Account", 2, 1, {"n": 1})
    message = OutboxMessage(uuid.uuid4(), "AccountNoted", 1, {"n": 1}, stream_id="acc-1")
    commits = [
        append("a-1", StreamState.NO_STREAM, single[0]),
        append("b-1", StreamState.NO_STREAM, *pair),
        append("c-1", StreamState.NO_STREAM, single[1]),
        Commit(appends=(append("acc-1", 1, single[2]).appends[0],), snapshots=(snapshot,),
               messages=(message,)),
        append("d-1", StreamState.NO_STREAM, single[3]),
    ]
    results = await _commit_all(storage, commits)
    assert not any(isinstance(r, BaseException) for r in results), results
    stored = await _positions_by_event_id(storage)
    for event, result in zip(single, [results[0], results[2], results[3], results[4]],
                             strict=True):
        assert result.position == stored[event.event_id]
    assert results[1].position == stored[pair[1].event_id]
    assert (await storage.read_snapshot("acc-1")) is not None
    assert len(await storage.read_outbox(limit=100)) == 8


async def test_a_lone_commit_is_flushed_at_once_and_a_bug_there_still_fails_it(
    storage: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invariant.domain.errors import StoreError

    await storage.commit(append("warm-1", StreamState.NO_STREAM, new_event(0)))
    scheduled: list[object] = []
    loop = asyncio.get_running_loop()
    original_call_soon = loop.call_soon

    def recording_call_soon(callback: Any, *args: Any, **kwargs: Any) -> Any:
        scheduled.append(callback)
        return original_call_soon(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon", recording_call_soon)
    await storage.commit(append("a-1", StreamState.NO_STREAM, new_event(1)))
    writer = storage._writer
    assert not any(getattr(cb, "__self__", None) is writer for cb in scheduled), \
        "nothing else was queued: the flush should not have waited for a turn of the loop"

    def broken(conn: sqlite3.Connection, batch: list[Job]) -> None:
        raise RuntimeError("simulated bug in the writer")

    monkeypatch.setattr(writer_module, "_run_batch", broken)
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    with pytest.raises(StoreError, match="simulated bug"):
        await storage.commit(append("b-1", StreamState.NO_STREAM, new_event(2)))
    assert reported and isinstance(reported[0]["exception"], RuntimeError)


async def test_a_sequential_writer_still_lets_timers_and_io_run(storage: SQLiteStorage) -> None:
    # Lone commits are flushed without a turn of the loop, but not forever: a task waiting
    # on a timer must get to run while another commits one command after the other.
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.002)
    before = ticks
    for i in range(400):
        await storage.commit(append(f"s{i}-1", StreamState.NO_STREAM, new_event(i)))
    during = ticks - before
    done = True
    await task
    assert during >= 5, f"the timer task ran {during} times during 400 sequential commits"


async def test_batched_commits_to_streams_with_quotes_and_unicode_are_checked_right(
    storage: SQLiteStorage,
) -> None:
    # The batch's stream ids travel as one JSON array (json_each): any text must match.
    names = ['quo"te-1', "apo'strophe-1", "ünïcødé-1", "back\\slash-1", "emoji-🙂"]
    for name in names:
        await storage.commit(append(name, StreamState.NO_STREAM, new_event(0)))
    results = await _commit_all(storage, [append(n, 1, new_event(1)) for n in names]
                                + [append(names[0], StreamState.NO_STREAM, new_event(2))])
    assert [r.version_of(n) for r, n in zip(results, names, strict=False)] == [2] * 5
    assert isinstance(results[-1], ConcurrencyError)
    for name in names:
        assert await storage.stream_version(name) == 2
