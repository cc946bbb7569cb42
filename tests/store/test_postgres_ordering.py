"""A follower of the PostgreSQL global log never skips an event committed out of order."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest

from invariant.store import StreamState
from invariant.store.postgres import PostgresStorage
from invariant.testing.event_storage_contract import append, follow_log, new_event
from tests.conftest import POSTGRES_DSN

pytestmark = pytest.mark.postgres


@pytest.fixture
async def storage(pg_schema: str) -> AsyncIterator[PostgresStorage]:
    storage = PostgresStorage(POSTGRES_DSN, schema=pg_schema, max_connections=30)
    await storage.setup()
    yield storage
    await storage.close()


async def open_append(conn: asyncpg.Connection, schema: str, stream: str) -> int:
    """Start a transaction that draws a position and stays open (not committed yet)."""
    await conn.execute("BEGIN")
    row = await conn.fetchrow(
        f"SELECT * FROM {schema}.invariant_append($1, -1, $2, $3, $4, $5::text[]::jsonb[],"
        " $6::text[]::jsonb[], now())",
        stream, [uuid.uuid4()], ["Happened"], [1], [orjson.dumps({"n": 1}).decode()], ["{}"],
    )
    assert row is not None
    return int(row[2])


async def test_a_position_committed_late_is_not_skipped(
    storage: PostgresStorage, pg_schema: str
) -> None:
    slow = await asyncpg.connect(POSTGRES_DSN)
    try:
        early = await open_append(slow, pg_schema, "slow-1")
        fast = await storage.commit(append("fast-1", StreamState.NO_STREAM, new_event(2)))
        assert fast.position > early  # the later position is committed first

        # A naive follower reading by position now sees only the later event, and moving its
        # checkpoint past it would lose the earlier one for good: the hazard is real.
        naive = await storage._fetch(
            f"SELECT position FROM {pg_schema}.invariant_events WHERE position > 0"
            " ORDER BY position"
        )
        assert [r[0] for r in naive] == [fast.position]

        follower = asyncio.create_task(storage.read_all(after_position=0))
        await asyncio.sleep(0.3)
        assert not follower.done(), "the follower must wait for the open append"
        await slow.execute("COMMIT")
        seen = await asyncio.wait_for(follower, 5)
        assert [e.position for e in seen] == [early, fast.position]
    finally:
        await slow.close()


async def test_a_rolled_back_position_does_not_block_or_confuse_the_follower(
    storage: PostgresStorage, pg_schema: str
) -> None:
    slow = await asyncpg.connect(POSTGRES_DSN)
    try:
        await open_append(slow, pg_schema, "slow-1")
        fast = await storage.commit(append("fast-1", StreamState.NO_STREAM, new_event(2)))
        follower = asyncio.create_task(storage.read_all(after_position=0))
        await asyncio.sleep(0.2)
        await slow.execute("ROLLBACK")
        seen = await asyncio.wait_for(follower, 5)
        assert [e.position for e in seen] == [fast.position]
        assert await storage.head_position() == fast.position
    finally:
        await slow.close()


async def test_followers_see_every_commit_exactly_once_under_out_of_order_commits(
    storage: PostgresStorage, pg_schema: str
) -> None:
    rng = random.Random(7)
    writers, appends_each = 12, 15
    stop = asyncio.Event()

    async def writer(w: int) -> None:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            for _ in range(appends_each):
                await open_append(conn, pg_schema, f"w{w}-1")
                await asyncio.sleep(rng.uniform(0, 0.015))  # hold the position, commit late
                await conn.execute("ROLLBACK" if rng.random() < 0.1 else "COMMIT")
        finally:
            await conn.close()

    task = asyncio.create_task(follow_log(storage, stop, page=5, idle=0.001))
    await asyncio.gather(*[writer(w) for w in range(writers)])
    stop.set()
    seen = await task
    committed = [r[0] for r in await storage._fetch(
        f"SELECT position FROM {pg_schema}.invariant_events ORDER BY position"
    )]
    assert len(committed) > writers * appends_each * 0.6
    assert seen == committed


async def test_each_caller_sees_its_own_commit_while_others_read_the_head(
    storage: PostgresStorage,
) -> None:
    """Read your own writes under load: right after its commit, each of many writers reads
    a safe head at or past its own event, while readers keep head reads under way."""
    stop = asyncio.Event()

    async def reader() -> None:
        while not stop.is_set():
            await storage.head_position()

    async def writer(i: int) -> list[tuple[int, int]]:
        seen = []
        for k in range(5):
            result = await storage.commit(
                append(f"w{i}-{k}", StreamState.NO_STREAM, new_event(k)))
            seen.append((result.position, await storage.head_position()))
        return seen

    readers = [asyncio.create_task(reader()) for _ in range(4)]
    try:
        results = await asyncio.wait_for(asyncio.gather(*(writer(i) for i in range(20))), 60)
    finally:
        stop.set()
        await asyncio.gather(*readers)
    pairs = [p for r in results for p in r]
    assert len(pairs) == 100
    late = [(position, head) for position, head in pairs if head < position]
    assert not late, f"a writer read a head below its own commit: {late[:5]}"
