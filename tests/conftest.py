"""Shared fixtures. Server-backed tests skip outside CI only; under CI=true a missing
server fails the run."""

from __future__ import annotations

import contextlib
import gc
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

POSTGRES_DSN = os.environ.get("INVARIANT_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_server(name: str, error: BaseException) -> None:
    """Skip (locally) or fail (CI) when a server the test needs is not reachable."""
    message = f"{name} is not reachable: {error}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: server-backed tests must run)")
    pytest.skip(message)


@contextlib.asynccontextmanager
async def fresh_pg_schema() -> AsyncIterator[str]:
    """Create a PostgreSQL schema, hand it out, drop it afterwards."""
    import asyncpg

    try:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        require_server("PostgreSQL", exc)
        raise
    schema = f"t_{uuid.uuid4().hex[:12]}"
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


@pytest.fixture
def quick_first_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first WAL checkpoint after 5 ms of commits instead of 50 (tests of
    :mod:`invariant.sqlite_wal`'s users, which wait for it)."""
    from invariant import sqlite_wal

    monkeypatch.setattr(sqlite_wal, "FIRST_WAIT", 0.005)


@pytest.fixture
def gc_state() -> Iterator[None]:
    """Restores the garbage collector's on/off state after the test."""
    enabled = gc.isenabled()
    yield
    (gc.enable if enabled else gc.disable)()


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    async with fresh_pg_schema() as schema:
        yield schema


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def any_storage(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[object]:
    """The same test on every shipped adapter (PostgreSQL in a fresh schema)."""
    from pathlib import Path

    from invariant.store import MemoryStorage, PostgresStorage, SQLiteStorage
    from invariant.testing import ManualClock

    clock = ManualClock()
    async with contextlib.AsyncExitStack() as stack:
        storage: object
        if request.param == "memory":
            storage = MemoryStorage(clock=clock)
        elif request.param == "sqlite":
            assert isinstance(tmp_path, Path)
            storage = SQLiteStorage(tmp_path / "events.db", clock=clock)
        else:
            schema = await stack.enter_async_context(fresh_pg_schema())
            storage = PostgresStorage(POSTGRES_DSN, schema=schema, clock=clock)
        await storage.setup()  # type: ignore[attr-defined]
        storage.clock = clock  # type: ignore[attr-defined]
        try:
            yield storage
        finally:
            await storage.close()  # type: ignore[attr-defined]
