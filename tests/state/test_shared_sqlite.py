"""One SQLite file, two writers in one process: the event store (which commits synchronously
on the event loop's thread) and state-stored repositories.

On an async SQLite engine a repository transaction holds the write lock across ``await``
points while the event store's writer blocks the loop waiting for that lock: neither can
go on until the busy timeout, then "database is locked". On the ReadModelDatabase path no
transaction ever waits for the loop, so both writers interleave freely.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest

from examples.users.contracts import UserProfile
from examples.users.domain import User, UserId
from invariant.domain import StoreError
from invariant.projections import SQLiteReadModels
from invariant.state import StateStoredRepository
from invariant.store import SQLiteStorage
from invariant.store.records import AppendRequest, Commit, NewEvent, StreamState
from tests.state.conftest import Backend, open_backend

BUSY_TIMEOUT_MS = 1_000
"""Short, so that a regression fails fast instead of hanging for the default 10 s."""
USERS = 40
APPENDS = 40
WRITERS = 4


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[tuple[Backend, SQLiteStorage]]:
    """The users database (migrated) and an event store writing the same file."""
    async with contextlib.AsyncExitStack() as stack:
        backend = await open_backend("sqlite", stack, tmp_path)
        assert backend.sqlite_path is not None
        storage = SQLiteStorage(backend.sqlite_path, busy_timeout_ms=BUSY_TIMEOUT_MS)
        await storage.setup()
        stack.push_async_callback(storage.close)
        yield backend, storage


def profile(n: int) -> dict[str, object]:
    return {"email": f"user{n}@example.com", "status": "active", "age": 30 + n % 50}


async def append(storage: SQLiteStorage, n: int) -> None:
    await storage.commit(Commit(appends=(AppendRequest(
        f"ledger-{n}", StreamState.NO_STREAM,
        (NewEvent(uuid4(), "Entry", 1, {"n": n}),)),)))


@pytest.mark.parametrize("in_thread", [False, True], ids=["on-loop", "in-thread"])
async def test_event_store_appends_and_repository_writes_interleave_on_one_file(
    shared: tuple[Backend, SQLiteStorage], in_thread: bool,
) -> None:
    backend, storage = shared
    assert backend.sqlite_path is not None
    database = SQLiteReadModels(backend.sqlite_path, busy_timeout_ms=BUSY_TIMEOUT_MS,
                                in_thread=in_thread)
    try:
        users = StateStoredRepository(database, User, UserProfile, id_type=UserId)
        await users.setup()

        async def suspend_later(user: User) -> None:
            await asyncio.sleep(0)  # the loop runs other writers while the change waits
            user.suspend()

        async def register_and_change(n: int) -> None:
            await users.save(User.register(UserId(f"u-{n}"), profile(n)))
            await users.update(f"u-{n}", lambda u: u.change_email(f"new{n}@example.com"))
            await users.update(f"u-{n}", suspend_later)

        async def event_store_writer(first: int) -> None:
            # One commit at a time, all along the repository's work.
            for n in range(first, APPENDS, WRITERS):
                await append(storage, n)
                await asyncio.sleep(0)

        work = [register_and_change(n) for n in range(USERS)]
        work += [event_store_writer(k) for k in range(WRITERS)]
        outcomes = await asyncio.wait_for(
            asyncio.gather(*work, return_exceptions=True), timeout=60)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert errors == []

        assert await storage.head_position() == APPENDS
        for n in range(USERS):
            user = await users.get(f"u-{n}")
            assert user.version == 3
            assert (user.state.email, user.state.status) == (
                f"new{n}@example.com", "suspended")
        outbox = await backend.outbox()
        assert len(outbox) == APPENDS + 3 * USERS  # every event and every user change
    finally:
        await database.close()


async def test_the_hazard_itself_an_async_engine_holds_the_lock_across_awaits(
    shared: tuple[Backend, SQLiteStorage],
) -> None:
    """Why the database path exists: on the async engine, a change that awaits the event
    store while its transaction holds the write lock is "database is locked"."""
    backend, storage = shared
    users = backend.repository()  # the aiosqlite engine
    await users.setup()
    await users.save(User.register(UserId("u-1"), profile(1)))

    async def append_then_suspend(user: User) -> None:
        await append(storage, 1)  # the loop blocks on the lock this transaction holds
        user.suspend()

    with pytest.raises(StoreError, match="locked"):
        await asyncio.wait_for(users.update("u-1", append_then_suspend), timeout=30)

    assert backend.sqlite_path is not None
    database = SQLiteReadModels(backend.sqlite_path, busy_timeout_ms=BUSY_TIMEOUT_MS)
    try:
        on_database = StateStoredRepository(database, User, UserProfile, id_type=UserId)
        suspended = await on_database.update("u-1", append_then_suspend)
    finally:
        await database.close()
    assert suspended.version == 2 and suspended.state.status == "suspended"
    assert await storage.head_position() == 1
