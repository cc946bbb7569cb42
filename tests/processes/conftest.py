"""Order fulfilment on SQLite and PostgreSQL, with processes in the event store's database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from examples.orders.wiring import Fulfilment, fulfilment
from invariant.projections import ReadModelDatabase
from invariant.store.port import EventStorage
from invariant.store.postgres import PostgresStorage
from invariant.store.sqlite import SQLiteStorage
from invariant.testing import ManualClock
from tests.conftest import POSTGRES_DSN, fresh_pg_schema


@dataclass
class Env:
    backend: str
    storage: EventStorage
    database: ReadModelDatabase
    clock: ManualClock
    app: Fulfilment
    target: str  # SQLite path or PostgreSQL schema

    def another_worker(self, **options: Any) -> Fulfilment:
        """A second worker on the same database (as after a restart)."""
        return fulfilment(self.storage, self.database, clock=self.clock, **options)


async def _no_sleep(_: float) -> None:
    return None


@contextlib.asynccontextmanager
async def open_env(backend: str, tmp_path: Path) -> AsyncIterator[Env]:
    clock = ManualClock()
    async with contextlib.AsyncExitStack() as stack:
        storage: EventStorage
        if backend == "sqlite":
            path = tmp_path / "orders.db"
            storage = SQLiteStorage(path, clock=clock)
            database = ReadModelDatabase.for_url(f"sqlite:///{path}")
            target = str(path)
        else:
            target = await stack.enter_async_context(fresh_pg_schema())
            storage = PostgresStorage(POSTGRES_DSN, schema=target, clock=clock)
            database = ReadModelDatabase.for_url(POSTGRES_DSN, schema=target)
        await storage.setup()
        stack.push_async_callback(storage.close)
        stack.push_async_callback(database.close)
        app = fulfilment(storage, database, clock=clock, sleep=_no_sleep)
        await app.setup()
        yield Env(backend, storage, database, clock, app, target)


@pytest.fixture(params=["sqlite", "postgres"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with open_env(request.param, tmp_path) as e:
        yield e


@pytest.fixture
async def sqlite_env(tmp_path: Path) -> AsyncIterator[Env]:
    async with open_env("sqlite", tmp_path) as e:
        yield e
