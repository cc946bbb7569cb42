"""Each state-repository test runs on SQLite and on PostgreSQL (in a fresh schema), on a
database migrated with the example's committed migrations, and on both of the repository's
paths: an async engine, and the synchronous one-transaction runner (ReadModelDatabase)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine

from examples.users.contracts import UserProfile
from examples.users.domain import User, UserId
from invariant.contracts.migrations import Migrations, run_sync, upgrade
from invariant.projections import ReadModelDatabase
from invariant.state import StateStoredRepository, create_engine, outbox_table
from invariant.testing import ManualClock
from tests.conftest import POSTGRES_DSN, fresh_pg_schema

MIGRATIONS = Migrations(Path(__file__).resolve().parents[2] / "examples/users/migrations")


@dataclass
class Backend:
    """One database the repository runs on."""

    name: str
    engine: AsyncEngine
    sqlite_path: Path | None = None
    schema: str | None = None
    database: ReadModelDatabase | None = None
    """Set: repositories run on this database instead of the engine."""

    def repository(self, **options: object) -> StateStoredRepository[User]:
        runner = self.database if self.database is not None else self.engine
        return StateStoredRepository(
            runner, User, UserProfile, id_type=UserId, **options  # type: ignore[arg-type]
        )

    async def outbox(self) -> list[tuple[str, str, dict[str, object]]]:
        """(stream, type, data) of every outbox row, in insertion order."""
        table = outbox_table(MetaData())
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(table.c.stream_id, table.c.message_type, table.c.data).order_by(table.c.id)
            )
            return [(r[0], r[1], r[2]) for r in rows]


async def open_backend(
    name: str, stack: contextlib.AsyncExitStack, tmp_path: Path, *, path: str = "engine"
) -> Backend:
    """A migrated database of kind ``name``, closed (and dropped) with ``stack``; its
    repositories run on the async engine (``path="engine"``) or on a ReadModelDatabase
    (``path="database"``)."""
    if name == "sqlite":
        file = tmp_path / "users.db"
        url = f"sqlite:///{file}"
        found = Backend("sqlite", create_engine(url), sqlite_path=file)
        database = ReadModelDatabase.for_url(url) if path == "database" else None
    else:
        schema = await stack.enter_async_context(fresh_pg_schema())
        found = Backend("postgres", create_engine(POSTGRES_DSN, schema=schema), schema=schema)
        database = (ReadModelDatabase.for_url(POSTGRES_DSN, schema=schema)
                    if path == "database" else None)
    stack.push_async_callback(found.engine.dispose)
    await run_sync(found.engine, upgrade, MIGRATIONS)
    if database is not None:
        stack.push_async_callback(database.close)
        found.database = database
    return found


@pytest.fixture(params=["sqlite-engine", "sqlite-database", "postgres-engine",
                        "postgres-database"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    name, path = request.param.split("-")
    async with contextlib.AsyncExitStack() as stack:
        yield await open_backend(name, stack, tmp_path, path=path)


@pytest.fixture(params=["engine", "database"])
async def pg(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """PostgreSQL only (SQLite writers take the write lock first: already serializable)."""
    async with contextlib.AsyncExitStack() as stack:
        yield await open_backend("postgres", stack, tmp_path, path=request.param)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def users(backend: Backend, clock: ManualClock) -> StateStoredRepository[User]:
    repository = backend.repository(clock=clock)
    await repository.setup()
    return repository
