"""SQLite group commit: many commands share a durable transaction, each keeps its own outcome."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from invariant.domain.errors import ConcurrencyError, ConfigurationError, DuplicateEventError
from invariant.store import NewEvent, SQLiteStorage, StreamState
from invariant.store import sqlite as sqlite_module
from invariant.testing.event_storage_contract import append, new_event


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(tmp_path / "events.db")
    await storage.setup()
    yield storage
    await storage.close()


async def test_concurrent_commits_share_transactions(
    storage: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    original = sqlite_module._run_batch

    def counting(conn: sqlite3.Connection, batch: list[sqlite_module._Job]) -> None:
        batches.append(len(batch))
        original(conn, batch)

    monkeypatch.setattr(sqlite_module, "_run_batch", counting)
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

    def broken(conn: sqlite3.Connection, batch: list[sqlite_module._Job]) -> None:
        raise RuntimeError("simulated bug in the writer")

    monkeypatch.setattr(sqlite_module, "_run_batch", broken)
    loop = asyncio.get_running_loop()
    handler_errors: list[object] = []
    loop.set_exception_handler(lambda _loop, context: handler_errors.append(context))
    outcomes = await asyncio.wait_for(asyncio.gather(
        *[storage.commit(append(f"s{i}-1", StreamState.NO_STREAM, new_event(i)))
          for i in range(3)], return_exceptions=True), timeout=5)
    assert all(isinstance(o, StoreError) and "simulated bug" in str(o) for o in outcomes)
    assert handler_errors, "the bug itself is reported to the loop, not swallowed"
