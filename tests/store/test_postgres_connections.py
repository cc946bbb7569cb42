"""Dropped PostgreSQL connections: a clear error for the commit in flight, then recovery."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from invariant.domain.errors import StoreError
from invariant.store import StreamState
from invariant.store.postgres import PostgresStorage
from invariant.testing.event_storage_contract import append, new_event
from tests.conftest import POSTGRES_DSN

pytestmark = pytest.mark.postgres


@pytest.fixture
async def storage(pg_schema: str) -> AsyncIterator[PostgresStorage]:
    storage = PostgresStorage(POSTGRES_DSN, schema=pg_schema, min_connections=2,
                              max_connections=4, application_name=f"inv-{pg_schema}")
    await storage.setup()
    yield storage
    await storage.close()


async def kill_backends(schema: str) -> int:
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        return int(await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1", f"inv-{schema}",
        ))
    finally:
        await admin.close()


async def test_the_store_recovers_after_its_connections_are_killed(
    storage: PostgresStorage, pg_schema: str
) -> None:
    await storage.commit(append("s-1", StreamState.NO_STREAM, new_event(1)))
    assert await kill_backends(pg_schema) >= 1
    outcomes = []
    for i in range(6):  # the pool replaces dead connections as it finds them
        try:
            await storage.commit(append("s-1", StreamState.ANY, new_event(i + 2)))
            outcomes.append("ok")
        except StoreError as exc:
            assert "PostgreSQL" in str(exc)
            outcomes.append("error")
    assert outcomes[-1] == "ok"
    versions = [e.stream_version for e in await storage.read_stream("s-1")]
    assert versions == list(range(1, len(versions) + 1))
    assert len(versions) == 1 + outcomes.count("ok")


async def test_an_unreachable_server_gives_an_actionable_error() -> None:
    storage = PostgresStorage("postgresql://nobody:secret@127.0.0.1:1/none", connect_timeout=2)
    with pytest.raises(StoreError) as caught:
        await storage.setup()
    message = str(caught.value)
    assert "cannot connect to PostgreSQL" in message and "INVARIANT_POSTGRES_DSN" in message
    assert "secret" not in message
