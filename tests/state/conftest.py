"""Each state-repository test runs on SQLite and on PostgreSQL (in a fresh schema), on a
database migrated with the example's committed migrations."""

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

    def repository(self, **options: object) -> StateStoredRepository[User]:
        return StateStoredRepository(
            self.engine, User, UserProfile, id_type=UserId, **options  # type: ignore[arg-type]
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
    name: str, stack: contextlib.AsyncExitStack, tmp_path: Path
) -> Backend:
    """A migrated database of kind ``name``, closed (and dropped) with ``stack``."""
    if name == "sqlite":
        path = tmp_path / "users.db"
        found = Backend("sqlite", create_engine(f"sqlite:///{path}"), sqlite_path=path)
    else:
        schema = await stack.enter_async_context(fresh_pg_schema())
        found = Backend("postgres", create_engine(POSTGRES_DSN, schema=schema), schema=schema)
    stack.push_async_callback(found.engine.dispose)
    await run_sync(found.engine, upgrade, MIGRATIONS)
    return found


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with contextlib.AsyncExitStack() as stack:
        yield await open_backend(request.param, stack, tmp_path)


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[Backend]:
    """PostgreSQL only (SQLite writers take the write lock first: already serializable)."""
    async with contextlib.AsyncExitStack() as stack:
        yield await open_backend("postgres", stack, tmp_path)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def users(backend: Backend, clock: ManualClock) -> StateStoredRepository[User]:
    repository = backend.repository(clock=clock)
    await repository.setup()
    return repository
