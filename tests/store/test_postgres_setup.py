"""Setting up a PostgreSQL store that is already there runs no DDL: a process starting
(a second instance, a restart, a rebuild beside live writers) never waits for, or
deadlocks with, the appends of the others."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from invariant.store import StreamState
from invariant.store.postgres import PostgresStorage
from invariant.testing.event_storage_contract import append, new_event
from tests.conftest import POSTGRES_DSN

pytestmark = pytest.mark.postgres


def storage_in(schema: str) -> PostgresStorage:
    return PostgresStorage(POSTGRES_DSN, schema=schema, min_connections=1, max_connections=4)


async def test_a_second_setup_beside_a_writer_s_open_transaction_does_not_wait(
        pg_schema: str) -> None:
    first = storage_in(pg_schema)
    await first.setup()
    await first.commit(append("s-1", StreamState.NO_STREAM, new_event(1)))
    writer = await asyncpg.connect(POSTGRES_DSN)
    try:
        # What an append holds until it commits: CREATE INDEX (even IF NOT EXISTS) waits
        # for it, and two such waits in opposite order were the deadlock W5 hit.
        transaction = writer.transaction()
        await transaction.start()
        await writer.execute(
            f"LOCK TABLE {pg_schema}.invariant_events IN ROW EXCLUSIVE MODE")
        second = storage_in(pg_schema)
        try:
            await asyncio.wait_for(second.setup(), timeout=5)
            assert [e.stream_version for e in await second.read_stream("s-1")] == [1]
        finally:
            await second.close()
        await transaction.rollback()
    finally:
        await writer.close()
        await first.close()


async def test_setups_beside_live_appends_neither_fail_nor_lose_an_event(
        pg_schema: str) -> None:
    first = storage_in(pg_schema)
    await first.setup()
    stop = asyncio.Event()

    async def write(stream: str) -> int:
        n = 0
        while not stop.is_set():
            n += 1
            state = StreamState.NO_STREAM if n == 1 else n - 1
            await first.commit(append(stream, state, new_event(n)))
        return n

    writers = [asyncio.create_task(write(f"w-{i}")) for i in range(4)]
    try:
        for _ in range(10):  # processes starting while the others write
            other = storage_in(pg_schema)
            try:
                await asyncio.wait_for(other.setup(), timeout=10)
            finally:
                await other.close()
    finally:
        stop.set()
        written = await asyncio.gather(*writers)
    for i, n in enumerate(written):
        versions = [e.stream_version for e in await first.read_stream(f"w-{i}")]
        assert versions == list(range(1, n + 1))
    await first.close()


async def test_a_schema_made_by_other_statements_is_brought_up_to_date(pg_schema: str) -> None:
    first = storage_in(pg_schema)
    await first.setup()
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        # Another version of invariant made it: its marker differs, and an index it did
        # not have is missing.
        await conn.execute(f"COMMENT ON TABLE {pg_schema}.invariant_events IS 'older'")
        await conn.execute(f"DROP INDEX {pg_schema}.invariant_events_category")
        second = storage_in(pg_schema)
        await second.setup()
        await second.close()
        index = await conn.fetchval("SELECT to_regclass($1)",
                                    f"{pg_schema}.invariant_events_category")
        assert index is not None
    finally:
        await conn.close()
        await first.close()
